"""The service's side of a request to approve an app: taken from the real inbox into the real outbox
(never dropped), shown as waiting, moved by the server's answers, and marked refused when the server
refuses it for good."""

from __future__ import annotations

import os
import pwd
import secrets
import stat
import subprocess
import uuid
from datetime import datetime, timezone
from pathlib import Path

from agent.approval_status import APPROVALS_FILE, read_statuses
from agent.desktop.approval_request import inbox_record, tidy
from agent.desktop.handoff import write_entry
from agent.server_link.outbox import KIND_RULES
from agent.service import AgentService
from tests.helpers.agent_service import Clock, service
from tests.helpers.need import need

USER = "root"


def hand_over(loop: AgentService, app: str = "Krita") -> str:
    record_id = uuid.uuid4().hex
    request = tidy(app, "KDE e.V.", "Art class.", "Ada Lovelace")
    write_entry(
        loop.inbox,
        "approval_request",
        record_id,
        inbox_record(request, USER, record_id, datetime.now(timezone.utc).isoformat()),
    )
    loop.take_inbox()
    return record_id


def test_a_request_is_queued_never_dropped_and_shown_as_waiting(tmp_path: Path) -> None:
    loop = service(tmp_path / "state", Clock())
    record_id = hand_over(loop)
    (queued,) = [item for item in loop.outbox.next_batch() if item.kind == "approval_request"]
    assert queued.record_id == record_id
    assert queued.body == {
        "record_id": record_id,
        "user": USER,
        "full_name": "Ada Lovelace",
        "app": "Krita",
        "publisher": "KDE e.V.",
        "reason": "Art class.",
        "requested_at": queued.body["requested_at"],
    }
    assert KIND_RULES["approval_request"].droppable is False
    assert [(s.record_id, s.state) for s in read_statuses(loop.state_dir)] == [(record_id, "waiting")]
    assert stat.S_IMODE((loop.state_dir / APPROVALS_FILE).stat().st_mode) == 0o644


def test_answers_move_only_requests_this_laptop_made(tmp_path: Path) -> None:
    loop = service(tmp_path / "state", Clock())
    record_id = hand_over(loop)
    loop.apply_approval_answers(
        [
            {"request_id": "someone-else", "decision": "approved", "message": ""},
            {"request_id": record_id, "decision": "obey", "message": ""},  # not an answer: ignored
            "garbage",
        ]
    )
    assert [s.state for s in read_statuses(loop.state_dir)] == ["waiting"]
    loop.approval_sent(record_id, {"decision": "waiting"})
    loop.apply_approval_answers([{"request_id": record_id, "decision": "declined", "message": "Use GIMP."}])
    (answered,) = read_statuses(loop.state_dir)
    assert (answered.state, answered.message) == ("declined", "Use GIMP.")


def test_a_request_the_server_refuses_for_good_is_shown_as_not_sent(tmp_path: Path) -> None:
    loop = service(tmp_path / "state", Clock())
    record_id = hand_over(loop)
    (queued,) = [item for item in loop.outbox.next_batch() if item.kind == "approval_request"]
    loop.outbox.reject(queued.seq, "422: app: String should match pattern")
    loop.note_refused_requests()
    (refused,) = read_statuses(loop.state_dir)
    assert (refused.record_id, refused.state) == (record_id, "refused") and "422: app" in refused.message


def test_a_student_cannot_ask_in_another_users_name(tmp_path: Path) -> None:
    """A real second account writes a request that speaks for root: refused, set aside, never queued."""
    need(os.geteuid() == 0, "creating a second local user needs root")
    name = f"hrapprovals{secrets.token_hex(3)}"
    subprocess.run(["useradd", "--no-create-home", name], check=True, capture_output=True)
    try:
        loop = service(tmp_path / "state", Clock())
        record_id = uuid.uuid4().hex
        request = tidy("Krita", "", "Art class.", "Ada Lovelace")
        body = inbox_record(request, USER, record_id, datetime.now(timezone.utc).isoformat())
        written = write_entry(loop.inbox, "approval_request", record_id, body)
        os.chown(written, pwd.getpwnam(name).pw_uid, -1)  # as if that account had written it
        loop.take_inbox()
        assert read_statuses(loop.state_dir) == []
        assert not [item for item in loop.outbox.next_batch() if item.kind == "approval_request"]
        assert [p for p in (loop.state_dir / "inbox-refused").iterdir() if record_id in p.name]
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)
