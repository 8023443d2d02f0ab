"""The service loop's schedule, with a clock the test moves, and requirements pushed by a real server."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from agent.server_link.outbox import Outbox
from tests.helpers.agent_service import Clock, enrolled_service, service
from tests.helpers.servers import ServerProcess


@pytest.mark.machine_wide  # "nothing changed" between checks of the live machine: no install meanwhile
def test_report_on_start_heartbeat_every_15_minutes_report_every_4_hours(state_dir: Path) -> None:
    clock = Clock()
    loop = service(state_dir, clock)
    first = loop.cycle(send=False)
    assert first.checked and first.reported and not first.heartbeat
    clock.advance(60)
    idle = loop.cycle(send=False)
    assert not idle.checked and not idle.reported and not idle.heartbeat
    clock.advance(15 * 60)
    beat = loop.cycle(send=False)
    assert beat.heartbeat and not beat.reported
    clock.advance(45 * 60)  # an hour after start: the checks run again, nothing changed
    hourly = loop.cycle(send=False)
    assert hourly.checked and not hourly.reported and hourly.heartbeat
    clock.advance(3 * 3600)  # four hours after the first report
    periodic = loop.cycle(send=False)
    assert periodic.checked and periodic.reported
    with Outbox(state_dir / "outbox.sqlite3") as outbox:
        assert outbox.stats().queued == {"report": 2, "heartbeat": 2}


def test_a_changed_result_is_reported_at_once_and_the_schedule_survives_a_restart(state_dir: Path) -> None:
    clock = Clock()
    loop = service(state_dir, clock)
    assert loop.cycle(send=False).reported
    # New requirements (as the server would push them) make the software check fail.
    loop.apply_requirements("etag-1", '[software]\nmode = "allowlist"\nbaseline = false\napproved = []\n')
    clock.advance(5)
    restarted = service(state_dir, clock)  # a restart in between loses nothing
    changed = restarted.cycle(send=False)
    assert changed.checked and changed.reported
    with Outbox(state_dir / "outbox.sqlite3", clock=clock) as outbox:
        bodies = [item.body for item in outbox.next_batch()]
    assert restarted.schedule.requirements_etag == "etag-1"
    report = bodies[0]  # the head of the report queue: the first report; the second waits behind it
    assert {r["id"] for r in report["results"]} >= {"software", "firewall"}
    assert report["software"], "a full report carries the software inventory"
    assert report["dropped"] == {}


def test_what_the_users_tray_reads_is_readable_by_a_user_without_admin_rights(state_dir: Path) -> None:
    import stat

    loop = service(state_dir, Clock())
    loop.apply_requirements("etag-1", "[screen_lock]\nmax_idle_minutes = 5\n")
    loop.apply_policies("p1", [{"audience": "student", "policy_id": "aup-x", "version": "v", "content": "x"}])
    for name in ("server-requirements.toml", "status.json", "policies/student.md"):
        assert stat.S_IMODE((state_dir / name).stat().st_mode) & 0o004, f"{name} must be world-readable"
    assert stat.S_IMODE((state_dir / "inbox").stat().st_mode) == 0o1733
    assert stat.S_IMODE(state_dir.stat().st_mode) & 0o005 == 0o005


def test_bad_requirements_from_the_server_keep_the_last_good_copy(state_dir: Path) -> None:
    loop = service(state_dir, Clock())
    loop.apply_requirements("etag-good", "[screen_lock]\nmax_idle_minutes = 5\n")
    loop.apply_requirements("etag-bad", "[screen_lock]\nmax_idle = 5\n")
    assert loop.requirements().screen_lock_max_idle_minutes == 5
    assert loop.schedule.requirements_etag == "etag-good"


def test_requirements_published_on_the_server_reach_the_agent(
    server: ServerProcess, state_dir: Path, tmp_path: Path
) -> None:
    loop, clock = enrolled_service(server, state_dir, "Oak Elementary")
    sent = loop.cycle()
    assert sent.reported and sent.drained is not None and sent.drained.delivered == 1
    strict = tmp_path / "strict.toml"
    strict.write_text('[software]\nmode = "allowlist"\nbaseline = false\napproved = []\n', encoding="utf-8")
    assert server.cli("requirements", "publish", str(strict), "--group", "Oak Elementary").returncode == 0
    time.sleep(5.5)  # the server caches a group's requirements for 5 s
    clock.advance(16 * 60)
    beat = loop.cycle()
    assert beat.heartbeat and beat.drained is not None and beat.drained.delivered == 1
    assert (state_dir / "server-requirements.toml").read_text() == strict.read_text()
    clock.advance(1)
    applied = loop.cycle()
    assert applied.checked and applied.reported
    (device,) = json.loads(server.cli("devices", "--json").stdout)["devices"]
    assert device["checks"]["software"] == "fail"


def test_check_now_command_reaches_the_agent_at_its_next_heartbeat(
    server: ServerProcess, state_dir: Path
) -> None:
    loop, clock = enrolled_service(server, state_dir)
    assert loop.cycle().reported
    (device,) = json.loads(server.cli("devices", "--json").stdout)["devices"]
    queued = server.cli("command", "check_now", "--device", device["device_id"])
    assert queued.returncode == 0 and "at its next heartbeat" in queued.stdout
    clock.advance(16 * 60)
    beat = loop.cycle()
    assert beat.heartbeat and not beat.checked
    assert loop.schedule.check_now is True
    clock.advance(1)
    assert loop.cycle().checked, "the check runs at once, not at the next hourly slot"
    unknown = server.cli("command", "check_now", "--device", "no-such-laptop")
    assert unknown.returncode == 2 and "no device" in unknown.stderr


def test_signoff_and_screen_lock_from_the_users_session_reach_the_server(
    server: ServerProcess, state_dir: Path
) -> None:
    from agent.desktop.handoff import write_entry
    from contract.policy import load_policy

    policy = Path("config/policies/secondary.md")
    assert server.cli("policy", "publish", str(policy)).returncode == 0
    loop, clock = enrolled_service(server, state_dir)
    assert loop.cycle().reported
    clock.advance(16 * 60)
    assert loop.cycle().heartbeat
    status = json.loads((state_dir / "status.json").read_text())
    assert status["policies"]["student"]["version"] == load_policy(policy).version
    assert (state_dir / status["policies"]["student"]["file"]).read_text() == policy.read_text()
    assert {r["id"] for r in status["results"]} >= {"firewall", "software"}

    record = {
        "user": "root",
        "record_id": "0123456789abcdef0123456789abcdef",
        "full_name": "Ada Lovelace",
        "policy_id": "aup-secondary",
        "policy_version": load_policy(policy).version,
        "decision": "agree",
        "decided_at": "2026-11-23T09:00:00+00:00",
    }
    write_entry(loop.inbox, "signoff", record["record_id"], record)
    lock = {
        "id": "screen_lock",
        "title": "Screen lock",
        "status": "pass",
        "summary": "locks after 5 minutes idle",
        "evidence": {},
        "remediation": None,
        "duration_ms": 40,
    }
    write_entry(loop.inbox, "user_results", "aa11bb22", {"user": "root", "results": [lock]})
    write_entry(loop.inbox, "check_now", "cc33dd44", {"user": "root"})
    clock.advance(1)
    after = loop.cycle()
    assert after.checked and after.reported, "the tray's screen-lock result changes the report"
    assert list(loop.inbox.iterdir()) == []
    (row,) = json.loads(server.cli("signoffs", "--json").stdout)["signoffs"]
    assert (row["user"], row["status"], row["full_name"]) == ("root", "signed", "Ada Lovelace")
    (device,) = json.loads(server.cli("devices", "--json").stdout)["devices"]
    assert device["checks"]["screen_lock"] == "pass"


def test_schedule_json_is_written_only_when_it_changes(state_dir: Path) -> None:
    clock = Clock()
    loop = service(state_dir, clock)
    loop.cycle(send=False)
    path = state_dir / "schedule.json"
    # Every write is a new file renamed over the old one: the old one, held open here, loses its name.
    with path.open("rb") as held:
        for _ in range(20):  # 100 s of the loop's 5 s ticks with nothing due
            clock.advance(5)
            loop.cycle(send=False)
        assert os.fstat(held.fileno()).st_nlink == 1, "an idle tick must not rewrite (and fsync) it"
        clock.advance(15 * 60)
        assert loop.cycle(send=False).heartbeat
        assert os.fstat(held.fileno()).st_nlink == 0, "a change is written"
    assert json.loads(path.read_text())["last_heartbeat_at"] == clock.now
