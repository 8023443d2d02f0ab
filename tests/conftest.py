"""Shared test plumbing: the agent as a real process, and 'needs X' that fails in CI instead of skipping."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.consent_helpers.xdisplay import XDisplay, start_xvfb, tools_missing
from tests.servers import PostgresCluster, ServerProcess, postgres_bin, start_postgres

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def need(condition: bool, reason: str) -> None:
    """Skip on a developer's machine that lacks something; in CI the lack is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI must provide this: {reason}")
    pytest.skip(reason)


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


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    need(os.geteuid() == 0, "PostgreSQL tests start a throwaway cluster as the postgres user: run as root")
    need(postgres_bin() is not None, "PostgreSQL is not installed (./scripts/test installs it as root)")
    yield from start_postgres()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'var' / 'homeroom.db'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.new_database()


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A real `homeroom-server serve` process on loopback, its database initialised."""
    process = ServerProcess(database_url, tmp_path)
    process.init()
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def display() -> Iterator[XDisplay]:
    """A private Xvfb for one test module (the tray tests start a whole desktop of their own)."""
    missing = tools_missing()
    need(not missing, f"install {' '.join(missing)} (./scripts/test installs them as root)")
    screen = start_xvfb()
    try:
        yield screen
    finally:
        screen.stop()
