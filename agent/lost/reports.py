"""STATE/lost-reports.json: where each "Report lost or stolen" stands, for the reporter's tray and form.

The service (root) writes it: waiting to be sent, sent (with the server's outcome: recorded,
unknown device with the closest matches, already reported, already recovered, and its message), or
refused (and why). It is world-readable, so it holds no contact, name or account of what happened:
those stay in the outbox (root only) and in the reporter's own copy (agent.desktop.lost_report).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from agent.state import write_atomically

LOST_REPORTS_FILE = "lost-reports.json"
KEPT = 100
MESSAGE_MAX = 1000
CLOSEST_MAX = 10
OUTCOMES = frozenset({"recorded", "unknown_device", "already_reported", "already_recovered"})


@dataclass(frozen=True)
class ReportStatus:
    record_id: str
    user: str
    state: str  # waiting, sent, refused
    outcome: str = ""
    message: str = ""
    closest: tuple[str, ...] = ()
    updated_at: str = ""

    @classmethod
    def from_json(cls, data: Any) -> ReportStatus | None:
        if not isinstance(data, dict) or data.get("state") not in ("waiting", "sent", "refused"):
            return None
        try:
            return cls(
                str(data["record_id"]),
                str(data["user"]),
                str(data["state"]),
                str(data.get("outcome") or ""),
                str(data.get("message") or ""),
                tuple(str(name) for name in data.get("closest") or ()),
                str(data.get("updated_at") or ""),
            )
        except (KeyError, TypeError):
            return None


def read_report_statuses(state_dir: Path) -> list[ReportStatus]:
    try:
        data = json.loads((state_dir / LOST_REPORTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    listed = data.get("reports") if isinstance(data, dict) else None
    return [s for item in listed or [] if (s := ReportStatus.from_json(item)) is not None]


def write_report_statuses(state_dir: Path, statuses: list[ReportStatus]) -> None:
    path = state_dir / LOST_REPORTS_FILE
    text = json.dumps({"reports": [asdict(s) for s in statuses[-KEPT:]]}, indent=1, ensure_ascii=False)
    write_atomically(path, text)
    path.chmod(0o644)


def with_report_status(statuses: list[ReportStatus], status: ReportStatus) -> list[ReportStatus]:
    return [s for s in statuses if s.record_id != status.record_id] + [status]


def sent_status(found: ReportStatus, answer: dict[str, Any], at: str) -> ReportStatus:
    """Pure: the server's answer to a delivered report (contract/lost.py), bounded and checked."""
    outcome = answer.get("outcome")
    closest = answer.get("closest")
    return replace(
        found,
        state="sent",
        outcome=outcome if outcome in OUTCOMES else "",
        message=str(answer.get("message") or "")[:MESSAGE_MAX],
        closest=tuple(str(name)[:200] for name in closest[:CLOSEST_MAX]) if isinstance(closest, list) else (),
        updated_at=at,
    )


def status_map(statuses: list[ReportStatus]) -> dict[str, dict[str, Any]]:
    return {s.record_id: asdict(s) for s in statuses}
