"""Lost mode from start to end with a real agent and a real server (both databases): a stolen-laptop
report handed over the way the tray's form hands it over, lost mode from the next signed heartbeat,
evidence stored with the address the server saw, "recovered" ending lost mode at the laptop's next
heartbeat, no evidence collected after that, and the period kept for the user's login notice."""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from agent.desktop.handoff import INBOX_DIR, write_entry
from agent.desktop.lost_report import inbox_record, tidy
from agent.lost.mode import LOST_MODE_FILE, read_history
from tests.helpers.agent_process import agent
from tests.helpers.servers import ServerProcess


def heartbeat_due(state: Path) -> None:
    """The schedule says when the last heartbeat went: "long ago" makes the next cycle send one,
    and the lost-mode schedule's own clock says the next evidence is due."""
    schedule_path = state / "schedule.json"
    schedule = json.loads(schedule_path.read_text(encoding="utf-8"))
    schedule["last_heartbeat_at"] = 0
    schedule_path.write_text(json.dumps(schedule), encoding="utf-8")
    lost_path = state / LOST_MODE_FILE
    if lost_path.exists():
        lost = json.loads(lost_path.read_text(encoding="utf-8"))
        lost["last_evidence_clock"] = 0
        lost_path.write_text(json.dumps(lost), encoding="utf-8")


def cycle(state: Path) -> None:
    done = agent("run", "--once", "--state-dir", str(state))
    assert done.returncode == 0, done.stdout + done.stderr


def the_case(server: ServerProcess) -> dict[str, Any]:
    listed = server.cli("devices", "lost", "--all", "--json")
    assert listed.returncode == 0, listed.stderr
    (case,) = json.loads(listed.stdout)["lost"]
    return dict(case)


def test_a_stolen_laptop_reports_until_it_is_recovered(server: ServerProcess, tmp_path: Path) -> None:
    state = tmp_path / "state"
    enrolled = agent("enroll", "--server", server.url, "--token", server.token(), "--state-dir", str(state))
    assert enrolled.returncode == 0, enrolled.stderr
    cycle(state)  # the first report; makes the inbox

    user = os.environ.get("USER") or "root"
    record_id = uuid.uuid4().hex
    report = tidy("this", "", "stolen", None, "Room 12", "Gone after lunch.", "", "Ada Lovelace", "ada@x")
    write_entry(state / INBOX_DIR, "lost_report", record_id, inbox_record(report, user, record_id, _now()))
    heartbeat_due(state)
    cycle(state)  # the report, then a heartbeat whose signed answer carries lost_mode
    assert (state / LOST_MODE_FILE).exists(), "lost mode from the heartbeat after the report"
    case = the_case(server)
    assert case["status"] == "reported" and case["kind"] == "stolen"

    heartbeat_due(state)
    cycle(state)  # in lost mode: evidence
    case = the_case(server)
    assert case["evidence"] >= 1 and case["last_public_address"] == "127.0.0.1"

    recovered = server.cli("devices", "lost-status", str(case["case_id"]), "recovered")
    assert recovered.returncode == 0, recovered.stderr
    heartbeat_due(state)
    cycle(state)  # the answer no longer carries lost_mode: lost mode ends
    assert not (state / LOST_MODE_FILE).exists()
    collected = the_case(server)["evidence"]
    heartbeat_due(state)
    cycle(state)
    assert the_case(server)["evidence"] == collected, "no evidence once recovered"
    (period,) = read_history(state)
    assert period.first_evidence_at and period.ended_at and not period.drill


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()
