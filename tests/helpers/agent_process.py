"""The agent as a real process, started the way a person or the service manager would."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers.cli_forks import fork_server, forks_enabled
from tests.helpers.paths import ROOT


def agent(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `homeroom-agent` as a separate process, as a person or the service manager would: forked
    from this worker's fork server for agent.cli (tests/helpers/cli_forks.py), which has done the
    imports already, in this environment plus `env`."""
    environment = {**os.environ, **(env or {})}
    if forks_enabled():
        return fork_server("agent.cli").run(list(args), ROOT, timeout=timeout, env=environment)
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
