"""The root service reports screen lock however the tray is doing: its reading, or unknown and why."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from agent.desktop.handoff import write_entry
from tests.helpers.agent_service import Clock, service

LOCK = {
    "id": "screen_lock",
    "title": "Screen lock",
    "status": "pass",
    "summary": "locks after 5 minutes idle",
    "evidence": {},
    "remediation": None,
    "duration_ms": 40,
}


def reports(state_dir: Path, clock: Clock) -> list[dict[str, Any]]:
    """Every queued report, oldest first, read from the outbox file (the sender takes one at a time)."""
    with sqlite3.connect(state_dir / "outbox.sqlite3") as db:
        rows = db.execute("SELECT body FROM outbox WHERE kind = 'report' ORDER BY seq").fetchall()
    return [json.loads(body) for (body,) in rows]


def screen_lock_of(body: dict[str, Any]) -> dict[str, Any]:
    (lock,) = [r for r in body["results"] if r["id"] == "screen_lock"]
    return lock


def test_no_tray_yet_is_unknown_with_the_reason(state_dir: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr("agent.service.logged_in_users", lambda: set())
    clock = Clock()
    loop = service(state_dir, clock)
    assert loop.cycle(send=False).reported
    (body,) = reports(state_dir, clock)
    lock = screen_lock_of(body)
    assert lock["status"] == "unknown" and lock["summary"] == "no user has signed in since enrolment"
    assert {r["id"] for r in body["results"]} == {
        "disk_encryption",
        "firewall",
        "power_on_password",
        "antivirus",
        "screen_lock",
        "software",
    }
    assert loop.schedule.last_overall in ("unknown", "fail")


def test_a_tray_reading_goes_out_in_the_same_cycle_and_a_stale_one_says_how_old(state_dir: Path) -> None:
    clock = Clock()
    loop = service(state_dir, clock)
    assert loop.cycle(send=False).reported
    clock.advance(60)  # the hourly check is far off
    write_entry(loop.inbox, "user_results", "aa11bb22", {"user": "root", "results": [LOCK]})
    prompt = loop.cycle(send=False)
    assert prompt.checked and prompt.reported, "the tray's reading is reported in this cycle"
    assert screen_lock_of(reports(state_dir, clock)[-1])["status"] == "pass"
    clock.advance(60)
    write_entry(loop.inbox, "user_results", "cc33dd44", {"user": "root", "results": [LOCK]})
    assert not loop.cycle(send=False).checked, "the same reading again costs no new check run"
    clock.advance(26 * 3600)
    assert loop.cycle(send=False).reported
    stale = screen_lock_of(reports(state_dir, clock)[-1])
    assert stale["status"] == "unknown" and stale["summary"] == "the tray has not reported for 26 h"
