"""What the service does for lost and stolen laptops, kept out of agent/service.py (which calls in):

- takes a "Report lost or stolen" from the inbox, judges it again with the form's rules (anyone on
  the laptop may write there), queues it (`lost_report`: never dropped) and says where it stands;
- reads the server's outcome of a delivered report, or its refusal;
- enters, updates and leaves lost mode from signed heartbeat answers;
- while in lost mode: heartbeats every `interval_seconds`, evidence as often, the screen locked
  when the district asked (Linux, from the service; Windows and macOS lock from the user's tray).
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from agent.desktop.handoff import InboxEntry, printable
from agent.desktop.lost_report import report_from_entry, report_problems
from agent.lost import evidence
from agent.lost.lock import lock_screen
from agent.lost.mode import LostModeFile, LostState, order_from_answer
from agent.lost.reports import (
    ReportStatus,
    read_report_statuses,
    sent_status,
    with_report_status,
    write_report_statuses,
)
from agent.probes import LiveProbes, Probes

log = logging.getLogger("homeroom.agent")

LOST_REPORT = "lost_report"
LOST_EVIDENCE = "lost_evidence"


class Queue(Protocol):
    def put(
        self, kind: str, body: dict[str, Any], record_id: str | None = None, carry_dropped: bool = False
    ) -> str: ...


class Rejected(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def record_id(self) -> str: ...
    @property
    def reason(self) -> str: ...


def _now_text() -> str:
    return datetime.now(timezone.utc).isoformat()


def wire_report(data: dict[str, Any], hostname: str) -> dict[str, Any]:
    """Pure: an accepted inbox entry as `POST /api/v1/lost-reports` carries it (contract/lost.py).
    For "this laptop" the value is its hostname: the signature already says which device it is."""
    value = hostname if data["device_by"] == "this" else data["device_value"]
    return {
        "record_id": data["record_id"],
        "reporter": data["user"],
        "reporter_name": data["reporter_name"],
        "contact": data["contact"],
        "device": {"by": data["device_by"], "value": value[:200]},
        "kind": data["loss"],
        "last_seen_at": data["last_seen_at"],
        "last_seen_where": data["last_seen_where"],
        "what_happened": data["what_happened"],
        "police_report": data["police_report"],
        "made_at": data["made_at"],
    }


class LostDuties:
    def __init__(
        self,
        state_dir: Path,
        os_name: str,
        clock: Callable[[], float] = time.time,
        probes: Probes | None = None,
        lock: Callable[[str], bool] = lock_screen,
        facts: Callable[[], evidence.HostFacts] = evidence.host_facts,
    ) -> None:
        self.state_dir = state_dir
        self.os_name = os_name
        self.clock = clock
        self.probes = probes or LiveProbes()
        self.lock = lock
        self.facts = facts
        self.file = LostModeFile(state_dir)
        self.state: LostState | None = self.file.load()  # survives a restart and a reboot
        if self.state is not None:
            log.warning(
                "lost mode: still on since %s (case %s)", self.state.entered_at, self.state.order.case_id
            )

    # --- reports from the tray ------------------------------------------------------------------

    def take_report(self, entry: InboxEntry, outbox: Queue) -> bool:
        """True when queued. A refused one is kept, with the form's words, where the tray reads it."""
        data = entry.data
        record_id = str(data["record_id"])
        statuses = read_report_statuses(self.state_dir)
        if any(status.record_id == record_id for status in statuses):
            log.warning("ignored a lost-device report from %s: its id is taken", printable(entry.user))
            return False
        problems = report_problems(report_from_entry(data))
        if problems:
            message = " ".join(problems.values())
            status = ReportStatus(record_id, entry.user, "refused", "", message, (), _now_text())
            log.warning("refused a lost-device report from %s: %s", printable(entry.user), printable(message))
            write_report_statuses(self.state_dir, with_report_status(statuses, status))
            return False
        outbox.put(LOST_REPORT, wire_report(data, socket.gethostname()), record_id=record_id)
        status = ReportStatus(record_id, entry.user, "waiting", updated_at=_now_text())
        write_report_statuses(self.state_dir, with_report_status(statuses, status))
        log.info("queued a %s report from %s", data["loss"], printable(entry.user))
        return True

    def report_delivered(self, record_id: str, answer: dict[str, Any]) -> None:
        statuses = read_report_statuses(self.state_dir)
        found = next((s for s in statuses if s.record_id == record_id), None)
        if found is None:
            return
        write_report_statuses(
            self.state_dir, with_report_status(statuses, sent_status(found, answer, _now_text()))
        )

    def reports_refused(self, rejected: Iterable[Rejected]) -> None:
        statuses = read_report_statuses(self.state_dir)
        waiting = {s.record_id: s for s in statuses if s.state == "waiting"}
        changed = False
        for item in rejected:
            if item.kind == LOST_REPORT and item.record_id in waiting:
                message = f"the district's server refused it ({item.reason[:300]}); please tell IT directly."
                updated = ReportStatus(
                    item.record_id, waiting[item.record_id].user, "refused", "", message, (), _now_text()
                )
                statuses = with_report_status(statuses, updated)
                changed = True
        if changed:
            write_report_statuses(self.state_dir, statuses)

    # --- lost mode ----------------------------------------------------------------------------

    def answered(self, lost_mode: object) -> None:
        """A signed heartbeat answer's `lost_mode` (the transport has already refused unsigned ones)."""
        order = order_from_answer(lost_mode)
        if order is None:
            if self.state is not None:
                period = self.file.end(self.state, _now_text())
                log.warning(
                    "lost mode: ended (case %s)%s",
                    self.state.order.case_id,
                    f"; evidence was collected {period.first_evidence_at} to {period.last_evidence_at}"
                    if period
                    else "",
                )
                self.state = None
            return
        if self.state is None or self.state.order.case_id != order.case_id:
            if self.state is not None:
                self.file.end(self.state, _now_text())
            self.state = LostState(order, _now_text())
            log.warning("lost mode: on (case %s%s)", order.case_id, ", a drill" if order.drill else "")
        elif self.state.order == order:
            return
        else:
            self.state = LostState(
                order,
                self.state.entered_at,
                self.state.first_evidence_at,
                self.state.last_evidence_at,
                self.state.last_evidence_clock,
                self.state.evidence_count,
            )
        self.file.save(self.state)

    @property
    def active(self) -> bool:
        return self.state is not None

    def heartbeat_seconds(self, usual: float) -> float:
        """How often to send a heartbeat: every `interval_seconds` in lost mode, so the server can end
        it (and hear from the laptop) promptly."""
        return min(usual, float(self.state.order.interval_seconds)) if self.state else usual

    def collect_if_due(self, outbox: Queue) -> bool:
        """In lost mode, at most every `interval_seconds`: one evidence record queued (and the screen
        locked when asked). Outside lost mode: nothing at all is read."""
        state = self.state
        now = self.clock()
        if state is None or not state.due(now):
            return False
        body = evidence.collect(self.probes, self.os_name, state.order.case_id, self.facts())
        outbox.put(LOST_EVIDENCE, body, record_id=body["record_id"])
        self.state = state.collected(now, body["collected_at"])
        self.file.save(self.state)
        if state.order.lock_screen and self.os_name == "linux" and not self.lock(self.os_name):
            log.warning("lost mode: the screen could not be locked (loginctl lock-sessions failed)")
        return True
