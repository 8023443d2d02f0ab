"""A real `dpkg -i` and `dpkg --purge` on this machine, seen by a real `homeroom-agent run` through
its install watch, and on a real server within seconds: not at the next hourly check.

The service's check interval is the default hour, and its first report is in before the package is
installed, so only the watch can have told the server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.helpers.need import need
from tests.helpers.packages import build_package, dpkg, dpkg_available, purge, unique_name
from tests.helpers.watched_laptop import WatchedLaptop, watched_laptop

pytestmark = pytest.mark.machine_wide  # installs real packages: the dpkg database is the machine's

SEEN_WITHIN = timedelta(seconds=5)


@pytest.fixture
def laptop(tmp_path: Path) -> Iterator[WatchedLaptop]:
    need(os.geteuid() == 0 and dpkg_available(), "installs real packages with dpkg: run as root on Debian")
    with watched_laptop(tmp_path) as running:
        yield running


@pytest.fixture
def package_name() -> Iterator[str]:
    name = unique_name()
    try:
        yield name
    finally:
        purge(name)


def test_an_install_and_a_removal_reach_the_server_within_seconds(
    laptop: WatchedLaptop, package_name: str, tmp_path: Path
) -> None:
    deb = build_package(tmp_path, package_name, "1.0")
    dpkg("-i", str(deb))
    installed_at = datetime.now(timezone.utc)
    received = laptop.wait_for_change(package_name, "added", installed_at - timedelta(seconds=1))
    assert received - installed_at <= SEEN_WITHIN

    report = next(body for at, body in laptop.reports() if at == received)
    changes = report["software_changes"]
    assert changes["seen_by"] == "watch"
    added = next(item for item in changes["added"] if item["name"] == package_name)
    assert added == {
        "name": package_name,
        "version": "1.0",
        "publisher": "Homeroom tests <tests@homeroom.invalid>",
        "source": "dpkg",
        "judged": True,  # installed by hand with dpkg -i: a person chose it
        "basis": added["basis"],
    }
    assert "manual" in added["basis"]
    # The full inventory goes too; the server keeps it once per device, not in the stored report.
    software = next(result for result in report["results"] if result["id"] == "software")
    assert software["evidence"]["items_seen"] == report["software_items"], "the software result is new"

    dpkg("--purge", package_name)
    removed_at = datetime.now(timezone.utc)
    received = laptop.wait_for_change(package_name, "removed", removed_at - timedelta(seconds=1))
    assert received - removed_at <= SEEN_WITHIN
    laptop.alive()
