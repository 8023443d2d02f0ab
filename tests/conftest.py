"""Shared test plumbing: the agent as a real process, and 'needs X' that fails in CI instead of skipping.

The suite runs on pytest-xdist workers (./scripts/test passes -n; pyproject's addopts say
`--dist loadgroup`). `pytest_collection_modifyitems` below keeps together what must not be split:
- every test marked `live` or `machine_wide` (firewall config, the dpkg database, /etc) in one
  xdist group, so they run one at a time, on one worker;
- the tests of a module that uses a module- or class-scoped fixture (a tray desktop, a fuzzing
  server, a `homeroom-agent run` laptop) on one worker, so the fixture starts once and its tests
  see it in the order they are written.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.need import need
from tests.helpers.servers import (
    InitialisedDatabases,
    PostgresCluster,
    ServerProcess,
    postgres_bin,
    start_postgres,
)
from tests.helpers.xdisplay import XDisplay, start_xvfb, tools_missing

MACHINE_WIDE_GROUP = "machine-wide"
SHARED_SCOPES = {"module", "class", "package"}


def _uses_a_shared_fixture(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(
        definition.scope in SHARED_SCOPES
        for definitions in info.name2fixturedefs.values()
        for definition in definitions
    )


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the xdist_group marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Puts each test in its xdist group (see the module's docstring); a group of its own wins."""
    for item in items:
        if item.get_closest_marker("xdist_group"):
            continue
        if item.get_closest_marker("live") or item.get_closest_marker("machine_wide"):
            item.add_marker(pytest.mark.xdist_group(MACHINE_WIDE_GROUP))
        elif _uses_a_shared_fixture(item):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))


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


@pytest.fixture(scope="session")
def initialised_databases(tmp_path_factory: pytest.TempPathFactory) -> InitialisedDatabases:
    """What `homeroom-server init` makes, once per database kind on this worker (see the class)."""
    return InitialisedDatabases(tmp_path_factory.mktemp("initialised"))


@pytest.fixture
def server(
    request: pytest.FixtureRequest,
    database_url: str,
    tmp_path: Path,
    initialised_databases: InitialisedDatabases,
) -> Iterator[ServerProcess]:
    """A real `homeroom-server serve` process on loopback, on a fresh copy of an initialised database."""
    process = ServerProcess(database_url, tmp_path)
    on_sqlite = database_url.startswith("sqlite:")
    cluster: PostgresCluster | None = None if on_sqlite else request.getfixturevalue("postgres")
    initialised_databases.copy_into(database_url, cluster)
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
