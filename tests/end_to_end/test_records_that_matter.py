"""Records that matter are never dropped, and a refused record never blocks the rest: real agent processes,
a real outbox at its bound while the real server is down, and the server's own audit log."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from pathlib import Path

from agent.desktop.handoff import ensure_inbox, write_entry
from agent.server_link.outbox import OUTBOX_FILE, Outbox
from agent.service import EnrolmentRecord, write_enrolment
from contract.policy import load_policy
from tests.helpers.agent_process import agent
from tests.helpers.audit import audit_details, stored_report_count
from tests.helpers.servers import ServerProcess

MB = 1024 * 1024
POLICY = Path("config/policies/secondary.md")


def small_outbox_config(tmp_path: Path) -> Path:
    config = tmp_path / "agent.toml"
    config.write_text('[agent]\noutbox_max_mb = 1\n[policy]\naudience = "student"\n', encoding="utf-8")
    return config


def run(*args: str, state: Path, config: Path) -> tuple[int, str]:
    done = agent(*args, "--state-dir", str(state), "--config", str(config))
    return done.returncode, done.stdout + done.stderr


def signoff_record() -> dict[str, str]:
    return {
        "user": "root",
        "record_id": uuid.uuid4().hex,
        "full_name": "Ada Lovelace",
        "policy_id": "aup-secondary",
        "policy_version": load_policy(POLICY).version,
        "decision": "agree",
        "decided_at": "2026-11-23T09:00:00+00:00",
    }


def queued_report_body(state: Path) -> dict[str, object]:
    with sqlite3.connect(state / OUTBOX_FILE) as db:
        (body,) = db.execute("SELECT body FROM outbox WHERE kind = 'report' ORDER BY seq LIMIT 1").fetchone()
    return dict(json.loads(body))


def test_a_full_outbox_with_the_server_down_keeps_the_signoff_and_it_all_reaches_it(
    server: ServerProcess, tmp_path: Path
) -> None:
    state, config = tmp_path / "state", small_outbox_config(tmp_path)
    assert server.cli("policy", "publish", str(POLICY)).returncode == 0
    code, out = run("enroll", "--server", server.url, "--token", server.token(), state=state, config=config)
    assert code == 0, out
    server.stop()  # unreachable from here on

    signoff = signoff_record()
    write_entry(ensure_inbox(state), "signoff", signoff["record_id"], signoff)  # as the user's tray does
    code, out = run("run", "--once", state=state, config=config)
    assert code == 3, out  # nothing could be sent; the sign-off and the report wait

    report = queued_report_body(state)  # a real report (~100 KB with this machine's software)
    size = len(json.dumps(report))
    puts = 4 * MB // size  # days of changed results, four times the bound
    with Outbox(state / OUTBOX_FILE, max_bytes=MB) as outbox:
        for _ in range(puts):
            outbox.put("report", {**report, "report_id": uuid.uuid4().hex}, carry_dropped=True)
        stats = outbox.stats()
    assert stats.queued["signoff"] == 1, "the sign-off survives a full outbox"
    # Everything beyond what fits in the bound went (how many fit depends on this machine's software).
    assert stats.dropped_total["report"] >= puts - MB // size and stats.total_bytes <= MB

    code, out = run("status", state=state, config=config)
    assert code == 0, out
    assert f"Dropped (outbox full): {stats.dropped_total['report']} report" in out
    assert "Last send failure:" in out and "cannot reach the server" in out

    server.start()
    time.sleep(2.1)  # the first backoff window is at most 2 s
    code, out = run("run", "--once", state=state, config=config)
    assert code == 0, out
    (row,) = json.loads(server.cli("signoffs", "--json").stdout)["signoffs"]
    assert (row["user"], row["status"], row["full_name"]) == ("root", "signed", "Ada Lovelace")
    with Outbox(state / OUTBOX_FILE, max_bytes=MB) as outbox:
        waiting = outbox.stats().dropped.get("report", 0)  # dropped making room for the last carrier
    assert reached_it(server) + waiting == stats.dropped_total["report"]

    schedule = json.loads((state / "schedule.json").read_text())  # 15 minutes on: a heartbeat is due
    (state / "schedule.json").write_text(json.dumps({**schedule, "last_heartbeat_at": 0}))
    code, out = run("run", "--once", state=state, config=config)
    assert code == 0, out
    assert reached_it(server) == stats.dropped_total["report"], "every dropped report is counted for IT"
    code, out = run("status", state=state, config=config)
    assert "all reported to the server" in out


def reached_it(server: ServerProcess) -> int:
    return sum(detail.get("report", 0) for detail in audit_details(server, "device.outbox_dropped"))


def test_status_says_when_only_signoffs_are_left_and_the_bound_gives_way(tmp_path: Path) -> None:
    state, config = tmp_path / "state", small_outbox_config(tmp_path)
    state.mkdir()
    # An enrolled laptop (status on one never enrolled says only that); the server is never asked.
    write_enrolment(
        state, EnrolmentRecord("https://homeroom.invalid", uuid.uuid4().hex, "Lincoln High", "now")
    )
    with Outbox(state / OUTBOX_FILE, max_bytes=MB) as outbox:
        for _ in range(6):
            outbox.put("signoff", {**signoff_record(), "pad": "x" * (MB // 4)})
        assert outbox.stats().queued == {"signoff": 6}
    code, out = run("status", state=state, config=config)
    assert code == 0, out
    assert "Outbox over its bound" in out and "never dropped (approval_request, lost_report, signoff)" in out


def test_a_record_the_server_refuses_is_set_aside_and_the_next_is_delivered(
    server: ServerProcess, tmp_path: Path
) -> None:
    state, config = tmp_path / "state", small_outbox_config(tmp_path)
    code, out = run("enroll", "--server", server.url, "--token", server.token(), state=state, config=config)
    assert code == 0, out
    with Outbox(state / OUTBOX_FILE) as outbox:  # a record no resend can fix, ahead of a real report
        refused = outbox.put("report", {"report_id": uuid.uuid4().hex, "not_a_field": 1})
    code, out = run("run", "--once", state=state, config=config)
    assert code == 0, out
    assert "sent: 1" in out and "still queued: 0" in out
    assert stored_report_count(server) == 1
    code, out = run("status", state=state, config=config)
    assert "Refused by the server (kept for IT): 1" in out
    assert f"report {refused} at " in out and ": 422" in out
