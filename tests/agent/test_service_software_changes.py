"""The service loop and install events, in process, with a real dpkg: what an event runs, what it
sends, and the scheduled inventory as the safety net when no event came."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.service import AgentService
from tests.helpers.agent_service import Clock, service
from tests.helpers.need import need
from tests.helpers.packages import build_package, dpkg, dpkg_available, purge, unique_name

pytestmark = pytest.mark.machine_wide  # installs real packages: the dpkg database is the machine's


@pytest.fixture
def package_name() -> Iterator[str]:
    need(os.geteuid() == 0 and dpkg_available(), "installs real packages with dpkg: run as root on Debian")
    name = unique_name()
    try:
        yield name
    finally:
        purge(name)


def queued_reports(state: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(state / "outbox.sqlite3") as db:
        rows = db.execute("SELECT body FROM outbox WHERE kind = 'report' ORDER BY seq").fetchall()
    return [json.loads(row[0]) for row in rows]


def named(items: list[dict[str, str]]) -> set[str]:
    return {item["name"] for item in items}


def started(state_dir: Path) -> tuple[AgentService, Clock]:
    clock = Clock()
    loop = service(state_dir, clock)
    first = loop.cycle(send=False)
    assert first.reported
    assert "software_changes" not in queued_reports(state_dir)[0], "nothing to compare the first with"
    return loop, clock


def test_an_install_event_reruns_the_software_check_alone_and_reports_what_changed(
    state_dir: Path, package_name: str, tmp_path: Path
) -> None:
    loop, clock = started(state_dir)
    before = {result.id: result for result in loop._last_run[0]} if loop._last_run else {}
    last_check = loop.schedule.last_check_at
    dpkg("-i", str(build_package(tmp_path, package_name)))
    clock.advance(5)
    loop.installs_changed()
    assert loop.wake.is_set(), "the loop is woken, not left to its 5 s tick"
    after = loop.cycle(send=False)
    assert after.checked and after.reported
    report = queued_reports(state_dir)[-1]
    assert named(report["software_changes"]["added"]) >= {package_name}
    assert report["software_changes"]["seen_by"] == "watch"
    results = {result["id"]: result for result in report["results"]}
    assert set(results) == set(before), "every requirement is still in the report"
    again = {result.id: result for result in loop._last_run[0]} if loop._last_run else {}
    for check_id, result in before.items():
        if check_id != "software":
            assert again[check_id] is result, f"{check_id} was not run again for a software change"
    assert again["software"] is not before["software"]
    assert loop.schedule.last_check_at == last_check, "the hourly schedule is not moved by an event"


def test_an_event_that_changed_nothing_sends_nothing(state_dir: Path, package_name: str) -> None:
    loop, clock = started(state_dir)
    clock.advance(5)
    loop.installs_changed()
    quiet = loop.cycle(send=False)
    assert quiet.checked and not quiet.reported
    assert len(queued_reports(state_dir)) == 1


def test_without_an_event_the_scheduled_inventory_finds_and_reports_the_change(
    state_dir: Path, package_name: str, tmp_path: Path
) -> None:
    loop, clock = started(state_dir)
    dpkg("-i", str(build_package(tmp_path, package_name)))
    clock.advance(60)
    assert not loop.cycle(send=False).checked, "no event, not due: nothing yet"
    clock.advance(3600)
    hourly = loop.cycle(send=False)
    assert hourly.checked and hourly.reported
    report = queued_reports(state_dir)[-1]
    assert named(report["software_changes"]["added"]) >= {package_name}
    assert report["software_changes"]["seen_by"] == "schedule"

    dpkg("--purge", package_name)
    restarted = service(state_dir, clock)  # the kept inventory outlives a restart
    clock.advance(3600)
    assert restarted.cycle(send=False).reported
    assert package_name in named(queued_reports(state_dir)[-1]["software_changes"]["removed"])
