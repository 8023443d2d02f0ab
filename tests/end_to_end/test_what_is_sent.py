"""What Homeroom says it collects is what it sends: a real agent against a real server, every body
captured by a recording proxy between them, each field held to contract/collected.py.

The agent enrols (`homeroom-agent enroll`), runs a cycle (`run --once`: checks, a report), takes a
sign-off, a request to approve an app and a stolen-laptop report handed over through the real
inbox, sends a heartbeat (whose signed answer puts it in lost mode) and then lost-mode evidence;
every request goes through the proxy. The test fails on any field the description lacks, on a record
kind it does not know, and on a described kind that was never seen (so the capture cannot silently
miss a kind).
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timezone
from pathlib import Path

from agent.desktop.approval_request import inbox_record, tidy
from agent.desktop.consent.records import hand_to_service, new_signoff
from agent.desktop.handoff import INBOX_DIR, write_entry
from agent.desktop.lost_report import inbox_record as lost_inbox_record
from agent.desktop.lost_report import tidy as tidy_loss
from contract.collected import KINDS, REQUEST_HEADERS, kind_for_endpoint, undescribed_fields
from contract.policy import load_policy
from contract.wire import API_PREFIX
from tests.helpers.agent_process import agent
from tests.helpers.paths import CONFIG
from tests.helpers.recording_proxy import recording_proxy
from tests.helpers.servers import ServerProcess

POLICY = CONFIG / "policies" / "secondary.md"


def test_every_field_a_real_agent_sends_is_described(server: ServerProcess, tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert server.cli("policy", "publish", str(POLICY)).returncode == 0
    with recording_proxy(server.url) as (url, recorded):
        enrolled = agent("enroll", "--server", url, "--token", server.token(), "--state-dir", str(state))
        assert enrolled.returncode == 0, enrolled.stderr
        enrolment = json.loads((state / "enrolment.json").read_text(encoding="utf-8"))

        first = agent("run", "--once", "--state-dir", str(state))  # checks, a report; makes the inbox
        assert first.returncode == 0, first.stdout + first.stderr

        # A decision handed over the way the dialog's flow hands it over: into the service's inbox.
        document = load_policy(POLICY)
        user = os.environ.get("USER") or "root"
        record = new_signoff(
            user, "Ada Lovelace", enrolment["device_id"], document.id, document.version, "agree"
        )
        assert hand_to_service(state / INBOX_DIR, record, pending_dir=tmp_path / "pending")
        # A request to approve an app, handed over the way the tray's form hands it over.
        asked = tidy("Krita", "KDE e.V.", "Art class portfolio.", "Ada Lovelace")
        request_id = uuid.uuid4().hex
        entry = inbox_record(asked, user, request_id, datetime.now(timezone.utc).isoformat())
        write_entry(state / INBOX_DIR, "approval_request", request_id, entry)
        # This laptop reported stolen, the way the tray's form hands a report over: the server opens
        # a case, and its signed heartbeat answer puts the laptop in lost mode.
        lost_id = uuid.uuid4().hex
        loss = tidy_loss(
            "this", "", "stolen", None, "Room 12", "Gone after lunch.", "", "Ada Lovelace", "ada@x"
        )
        lost_entry = lost_inbox_record(loss, user, lost_id, datetime.now(timezone.utc).isoformat())
        write_entry(state / INBOX_DIR, "lost_report", lost_id, lost_entry)
        # Fifteen minutes on: the next cycle's heartbeat is due (the schedule says when it was last sent).
        schedule_path = state / "schedule.json"
        schedule = json.loads(schedule_path.read_text(encoding="utf-8"))
        schedule["last_heartbeat_at"] = 0
        schedule_path.write_text(json.dumps(schedule), encoding="utf-8")
        second = agent("run", "--once", "--state-dir", str(state))
        assert second.returncode == 0, second.stdout + second.stderr
        # In lost mode now: the next cycle sends its evidence (a heartbeat is due again).
        schedule = json.loads(schedule_path.read_text(encoding="utf-8"))
        schedule["last_heartbeat_at"] = 0
        schedule_path.write_text(json.dumps(schedule), encoding="utf-8")
        third = agent("run", "--once", "--state-dir", str(state))
        assert third.returncode == 0, third.stdout + third.stderr

    seen: dict[str, int] = {}
    problems: list[str] = []
    for request in recorded:
        assert request.path.startswith(API_PREFIX), request.path
        kind = kind_for_endpoint(request.path[len(API_PREFIX) :])
        if kind is None:
            problems.append(f"{request.method} {request.path}: a record kind contract/collected.py lacks")
            continue
        assert request.status < 300, (request.path, request.status)
        seen[kind.kind] = seen.get(kind.kind, 0) + 1
        body = json.loads(request.body)
        problems += [f"{kind.kind}: {path}" for path in undescribed_fields(kind, body)]
        sent_headers = {name for name in request.headers if name.lower().startswith("x-homeroom-")}
        described = {name.lower() for name in REQUEST_HEADERS}
        problems += [f"{kind.kind}: header {name}" for name in sent_headers if name.lower() not in described]
    assert problems == [], "sent but not described in contract/collected.py:\n" + "\n".join(problems)
    assert set(seen) == set(KINDS), f"every described kind is exercised: saw {seen}"

    # The accounts that have signed in are a field of every report, as the policies now say.
    reports = [json.loads(r.body) for r in recorded if r.path.endswith("/reports")]
    assert reports and all(isinstance(report["users"], list) for report in reports)
    signoffs = [json.loads(r.body) for r in recorded if r.path.endswith("/signoffs")]
    assert [s["record_id"] for s in signoffs] == [record.record_id]
    approvals = [json.loads(r.body) for r in recorded if r.path.endswith("/approvals")]
    assert [(a["record_id"], a["app"]) for a in approvals] == [(request_id, "Krita")]
