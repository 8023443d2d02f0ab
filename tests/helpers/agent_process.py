"""The agent as a real process, started the way a person or the service manager would."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers.paths import ROOT


def agent(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `homeroom-agent` as a separate process, as a person or the service manager would."""
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
