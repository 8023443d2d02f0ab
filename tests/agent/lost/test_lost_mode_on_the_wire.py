"""Lost mode and lost-device reports against a server on loopback that checks every request's
device signature and signs its answers with the server's own signer (tests/helpers/lost_server.py):
a real `homeroom-agent enroll` pins its key, the service loop runs for real (real `ip`, real
outbox, real HTTP), and a real `homeroom-agent run --once` process shows lost mode survives a
restart. Every body the agent sends is held to contract/collected.py."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest

from agent.desktop.handoff import write_entry
from agent.desktop.lost_form import WAITING, confirmation
from agent.desktop.lost_report import inbox_record, tidy
from agent.lost.mode import LOST_HISTORY_FILE, LOST_MODE_FILE, LOST_NOTICE_FILE, read_history
from agent.lost.parsers import local_addresses_from_ip
from agent.lost.reports import read_report_statuses
from agent.server_link.outbox import KIND_RULES
from agent.service import AgentService
from contract.collected import KINDS, undescribed_fields
from tests.agent.lost.test_lost_mode import ORDER
from tests.helpers.agent_process import agent
from tests.helpers.agent_service import Clock, service
from tests.helpers.lost_server import LostServer, lost_server

USER = "root"
EVIDENCE_FIELDS = {
    "record_id", "case_id", "collected_at", "local_addresses", "gateway", "wifi", "logged_in_user",
    "uptime_seconds", "unseen",
}  # fmt: skip
REPORT_FIELDS = {
    "record_id", "reporter", "reporter_name", "contact", "device", "kind", "last_seen_at",
    "last_seen_where", "what_happened", "police_report", "made_at",
}  # fmt: skip


@pytest.fixture
def server() -> Iterator[LostServer]:
    with lost_server() as running:
        yield running


def enrolled(server: LostServer, state: Path) -> tuple[AgentService, Clock]:
    done = agent("enroll", "--server", server.url, "--token", "t-1", "--state-dir", str(state))
    assert done.returncode == 0, done.stdout + done.stderr
    clock = Clock()
    loop = service(state, clock)
    loop.cycle()  # the first report, delivered
    return loop, clock


def heartbeat(loop: AgentService, clock: Clock) -> None:
    """Time for the next heartbeat (15 minutes, or lost mode's interval), and a cycle that sends it."""
    clock.advance(15 * 60)
    loop.cycle()


def test_an_unsigned_or_foreign_lost_mode_answer_switches_nothing_on(
    server: LostServer, tmp_path: Path
) -> None:
    loop, clock = enrolled(server, tmp_path / "state")
    server.lost_mode = ORDER
    for mode in ("unsigned", "other_key"):
        server.answer_mode = mode
        heartbeat(loop, clock)
        assert loop.refused_answers.load()["total"] >= 1, mode
        assert not loop.lost.active, mode
        assert not (tmp_path / "state" / LOST_MODE_FILE).exists(), mode
        clock.advance(3600)
        loop.cycle()
        assert server.bodies("/lost-evidence") == [], "nothing collected on a forged answer"
    server.answer_mode = "signed"
    heartbeat(loop, clock)
    assert loop.lost.active, "the same answer, signed by the pinned key, is obeyed"


def test_lost_mode_on_evidence_every_interval_across_a_restart_and_off_again(
    server: LostServer, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    loop, clock = enrolled(server, state)
    server.lost_mode = {**ORDER, "interval_seconds": 30}
    heartbeat(loop, clock)
    assert loop.lost.active
    assert json.loads((state / LOST_NOTICE_FILE).read_text())["notice"] == ORDER["notice"]

    loop.cycle()  # the next tick: evidence collected and sent
    (evidence,) = server.bodies("/lost-evidence")
    assert set(evidence) == EVIDENCE_FIELDS
    assert undescribed_fields(KINDS["lost_evidence"], evidence) == []
    assert evidence["case_id"] == "case-17"
    real = local_addresses_from_ip(
        subprocess.run(["ip", "-j", "addr"], capture_output=True, text=True).stdout
    )
    assert evidence["local_addresses"] == real and real, "this machine's own addresses, read for real"
    assert evidence["gateway"] is not None
    assert any("Wi-Fi" in why for why in evidence["unseen"]), "no nmcli here: said, not hidden"

    heartbeats = len(server.bodies("/heartbeat"))
    clock.advance(30)
    loop.cycle()
    assert len(server.bodies("/lost-evidence")) == 2
    assert len(server.bodies("/heartbeat")) == heartbeats + 1, "heartbeats every interval in lost mode"
    loop.outbox.close()

    # The service restarts (a real process this time): still lost, still collecting.
    done = agent("run", "--once", "--state-dir", str(state))
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(server.bodies("/lost-evidence")) == 3
    assert (state / LOST_MODE_FILE).exists()
    shown = agent("status", "--state-dir", str(state)).stdout
    assert "Lost mode:       ON since " in shown and "case case-17, every 30 s, a notice on screen" in shown
    assert "3 evidence record(s) collected" in shown

    loop = service(state, clock)
    server.lost_mode = None  # IT marked it recovered: the next heartbeat's answer says so
    clock.advance(30)
    loop.cycle()
    assert not loop.lost.active
    assert not (state / LOST_MODE_FILE).exists() and not (state / LOST_NOTICE_FILE).exists()
    sent = server.bodies("/lost-evidence")
    # The evidence collected in the cycle whose heartbeat ended lost mode is dropped, not sent.
    assert len(sent) == 3 and loop.outbox.stats().queued.get("lost_evidence", 0) == 0
    (period,) = read_history(state)
    assert period.first_evidence_at == sent[0]["collected_at"]
    assert period.last_evidence_at >= sent[-1]["collected_at"]  # collected on the laptop, then deleted
    assert (state / LOST_HISTORY_FILE).stat().st_mode & 0o004, "the user's tray reads it"
    for _ in range(3):
        clock.advance(30 * 60)
        loop.cycle()
    assert len(server.bodies("/lost-evidence")) == len(sent), "no evidence once lost mode has ended"
    loop.outbox.close()
    shown = agent("status", "--state-dir", str(state)).stdout
    assert (
        f"Lost mode:       off (lost mode ended {period.ended_at}; evidence from {period.first_evidence_at}"
        in shown
    )


def hand_over(loop: AgentService, **changes: str | None) -> str:
    record_id = uuid.uuid4().hex
    report = tidy(
        "serial",
        "5CG1234XYZ",
        "stolen",
        "2026-12-01T08:15:00+00:00",
        "Room 12, on the teacher's desk",
        "It was gone after lunch.",
        "PR-2026-0042",
        "Ada Lovelace",
        "ada@lincoln.example",
    )
    report = replace(report, **changes)  # type: ignore[arg-type]
    entry = inbox_record(report, USER, record_id, datetime.now(timezone.utc).isoformat())
    write_entry(loop.inbox, "lost_report", record_id, entry)
    return record_id


def status_of(loop: AgentService, record_id: str) -> str:
    found = next((s for s in read_report_statuses(loop.state_dir) if s.record_id == record_id), None)
    return confirmation(found)


def test_a_report_waits_offline_then_is_sent_with_the_districts_answer(
    server: LostServer, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    loop, clock = enrolled(server, state)
    assert KIND_RULES["lost_report"].droppable is False
    enrolment = json.loads((state / "enrolment.json").read_text())
    (state / "enrolment.json").write_text(json.dumps({**enrolment, "server_url": "http://127.0.0.1:9"}))
    record_id = hand_over(loop)
    loop.cycle()
    assert status_of(loop, record_id) == WAITING, "offline: waiting, not lost"

    (state / "enrolment.json").write_text(json.dumps(enrolment))
    server.report_answer = {
        "outcome": "unknown_device",
        "message": "No laptop has serial 5CG1234XYZ.",
        "closest": ["5CG1234XYT", "5CG1243XYZ"],
    }
    clock.advance(3600)  # past any backoff
    loop.cycle()
    (sent,) = server.bodies("/lost-reports")
    assert set(sent) == REPORT_FIELDS and undescribed_fields(KINDS["lost_report"], sent) == []
    assert sent["device"] == {"by": "serial", "value": "5CG1234XYZ"}
    assert sent["reporter"] == USER and sent["kind"] == "stolen" and sent["police_report"] == "PR-2026-0042"
    words = status_of(loop, record_id)
    assert "does not know a laptop" in words and "5CG1234XYT, 5CG1243XYZ" in words


def test_a_report_for_this_laptop_and_one_already_reported(server: LostServer, tmp_path: Path) -> None:
    loop, _clock = enrolled(server, tmp_path / "state")
    server.report_answer = {"outcome": "already_reported", "message": "IT is on it."}
    record_id = hand_over(loop, device_by="this", device_value="", police_report=None)
    loop.cycle()
    (sent,) = server.bodies("/lost-reports")
    assert sent["device"]["by"] == "this" and sent["device"]["value"]  # the hostname
    assert sent["police_report"] is None
    assert status_of(loop, record_id).startswith("Sent. That laptop was already reported")


def test_a_report_that_skips_the_form_is_refused_with_the_forms_words(
    server: LostServer, tmp_path: Path
) -> None:
    loop, _clock = enrolled(server, tmp_path / "state")
    record_id = hand_over(loop, what_happened="", reporter_name="1")
    loop.cycle()
    assert server.bodies("/lost-reports") == []
    words = status_of(loop, record_id)
    assert words.startswith("Not sent:") and "what happened" in words and "at least two letters" in words
