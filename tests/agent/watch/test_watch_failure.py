"""An install watch that cannot start is logged, and the service goes on: checks, reports, and the
full inventory still finds the install (the schedule's check, asked for at once by "Check now").

The failure is the kernel's own: the service runs in a user namespace of its own whose inotify
instance limit is 0 (/proc/sys/user/max_inotify_instances is per user namespace since Linux 5.11),
so watchdog's inotify_init fails with EMFILE exactly as on a laptop where other programs used up
the limit — without touching this machine's limit for anyone else.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from agent.desktop.handoff import write_entry
from tests.helpers.need import need
from tests.helpers.packages import build_package, dpkg, dpkg_available, purge, unique_name
from tests.helpers.watched_laptop import WatchedLaptop, watched_laptop

NO_INOTIFY = (
    "unshare",
    "--user",
    "--map-root-user",
    "sh",
    "-c",
    'echo 0 > /proc/sys/user/max_inotify_instances && exec "$@"',
    "no-inotify",
)


def user_namespaces_work() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    done = subprocess.run(
        [*NO_INOTIFY, "cat", "/proc/sys/user/max_inotify_instances"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode == 0 and done.stdout.strip() == "0"


pytestmark = pytest.mark.machine_wide  # installs real packages: the dpkg database is the machine's


@pytest.fixture
def package_name() -> Iterator[str]:
    name = unique_name()
    try:
        yield name
    finally:
        purge(name)


@pytest.fixture
def laptop(tmp_path: Path) -> Iterator[WatchedLaptop]:
    need(dpkg_available(), "installs a real package with dpkg")
    need(
        user_namespaces_work(), "needs root and unshare --user (a per-namespace inotify limit, Linux >= 5.11)"
    )
    with watched_laptop(tmp_path, launcher=NO_INOTIFY) as running:
        yield running


def test_a_watch_refused_by_the_inotify_limit_leaves_the_service_on_its_schedule(
    laptop: WatchedLaptop, package_name: str, tmp_path: Path
) -> None:
    log = laptop.log_text()
    assert (
        "install watch: the install watcher could not start: [Errno 24] inotify instance limit reached" in log
    )
    assert "installs there are seen at the scheduled check" in log
    assert "install watch: watching nothing (threads" in log
    first = len(laptop.reports())
    assert first == 1, "the first scheduled check ran and reached the server"

    dpkg("-i", str(build_package(tmp_path, package_name)))
    installed_at = datetime.now(timezone.utc)
    time.sleep(3)
    assert laptop.change_received(package_name, "added", installed_at) is None, "no watch, no event"

    write_entry(laptop.state / "inbox", "check_now", uuid.uuid4().hex, {"user": "root"})
    received = laptop.wait_for_change(package_name, "added", installed_at, timeout=30)
    report = next(body for at, body in laptop.reports() if at == received)
    assert report["software_changes"]["seen_by"] == "schedule", "the full inventory is the safety net"
    laptop.alive()
    assert "Traceback" not in laptop.log_text()
