"""Shared test plumbing: the agent as a real process, and 'needs X' that fails in CI instead of skipping."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.need import need
from tests.helpers.servers import PostgresCluster, ServerProcess, postgres_bin, start_postgres
from tests.helpers.xdisplay import XDisplay, start_xvfb, tools_missing


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
