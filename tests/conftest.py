"""Shared test plumbing: the agent as a real process, and 'needs X' that fails in CI instead of skipping.

The suite runs on pytest-xdist workers (./scripts/test passes -n; pyproject's addopts say
`--dist loadfile`, so each module's tests stay on one worker, in order, and a module-scoped
fixture starts once). Every test marked `live` or `machine_wide` (firewall config, the dpkg
database, /etc) runs holding one lock file, so they run one at a time whichever worker has them.
The slowest modules are handed out first (SLOWEST_FIRST), so the run does not end on one worker
still busy with a long module while the others have nothing left.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.artifacts import ARTIFACTS, saved_since
from tests.helpers.need import need
from tests.helpers.servers import (
    InitialisedDatabases,
    PostgresCluster,
    ServerProcess,
    postgres_bin,
    start_postgres,
)
from tests.helpers.xdisplay import XDisplay, start_xvfb, tools_missing

MACHINE_WIDE_LOCK = Path("/tmp/homeroom-tests-machine-wide.lock")

# The modules that keep a worker longest, slowest first (summed from `--durations=120` of a full
# run on 2 cores; add a module here when it shows up near the top). xdist's loadfile hands modules
# out in collection order (pyproject's addopts turn off its own reordering, which goes by the
# number of tests, not their time); the rest follow in their usual order and fill in at the end.
SLOWEST_FIRST = (
    "tests/server/test_lost_cases.py",
    "tests/installer/test_deb.py",
    "tests/end_to_end/test_agent_and_server.py",
    "tests/server/test_software_list.py",
    "tests/server/test_signoffs.py",
    "tests/server/test_lost_notifications.py",
    "tests/server/test_enrolment_claims.py",
    "tests/server/console/test_admin_api.py",
    "tests/server/test_cli_output.py",
    "tests/server/test_approvals.py",
    "tests/agent/test_service.py",
    "tests/end_to_end/test_signoff.py",
    "tests/end_to_end/test_bad_local_state.py",
    "tests/end_to_end/test_records_that_matter.py",
    "tests/server/console/test_lost_pages.py",
    "tests/end_to_end/test_server_trust.py",
    "tests/server/test_backup.py",
    "tests/server/test_agent_api.py",
    "tests/end_to_end/test_lost_mode.py",
    "tests/server/test_cli_devices.py",
    "tests/end_to_end/test_approvals.py",
    "tests/server/console/test_signoff_coverage.py",
    "tests/agent/test_cli_messages.py",
    "tests/server/console/test_records_pages.py",
    "tests/server/test_answer_signing.py",
    "tests/server/test_not_reporting.py",
    "tests/server/test_api_fuzz.py",
    "tests/agent/test_inbox_attacks.py",
    "tests/end_to_end/test_reenrol.py",
    "tests/server/console/test_users_cli.py",
    "tests/server/test_behind_nginx.py",
    "tests/server/console/test_console_browser.py",
    "tests/end_to_end/test_what_is_sent.py",
    "tests/server/console/test_roles.py",
)


_RUN_STARTED = time.time()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Where this run's screenshots and saved logs are (a test's own print is swallowed by xdist)."""
    lines = saved_since(ARTIFACTS, _RUN_STARTED)
    if lines:
        terminalreporter.section("saved for people to look at")
        for line in lines:
            terminalreporter.write_line(line)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slowest modules first, each module's tests still together and in their order (a stable
    sort on the module alone); every worker sorts the same collection the same way."""
    rank = {module: place for place, module in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    """A `live` or `machine_wide` test runs holding one lock file, whichever worker has it: two dpkg
    installs at once fail on dpkg's own lock, and two tests flipping the firewall see each other.
    Setup and teardown are inside the lock too, so a module fixture that installs is covered."""
    if not (item.get_closest_marker("live") or item.get_closest_marker("machine_wide")):
        yield
        return
    with MACHINE_WIDE_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


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
