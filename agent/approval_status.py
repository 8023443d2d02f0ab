"""STATE/approvals.json: where each request to approve an app stands, for the tray to show.

The service (root) writes it: waiting to be sent, sent, refused (and why), approved, declined (with
IT's message). The user's tray reads it. It is world-readable, so it holds nothing a person on the
laptop may not see: the account, the app, the state and IT's answer, never the typed reason or
full name (those stay in the outbox, which only root reads, until they reach the server).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

from agent.state import STATUS_FILE, write_atomically
from contract.policy import PolicyError, load_policy

APPROVALS_FILE = "approvals.json"
KEPT = 100  # the newest requests; older answers have long been seen

State = Literal["waiting", "sent", "refused", "approved", "declined"]
STATES: tuple[State, ...] = ("waiting", "sent", "refused", "approved", "declined")
ANSWERED: frozenset[str] = frozenset({"refused", "approved", "declined"})


@dataclass(frozen=True)
class RequestStatus:
    record_id: str
    user: str
    app: str
    state: State
    message: str = ""
    updated_at: str = ""

    @classmethod
    def from_json(cls, data: Any) -> RequestStatus | None:
        """Tolerant: a damaged entry is skipped, never fatal to the tray."""
        if not isinstance(data, dict):
            return None
        try:
            state = str(data["state"])
            if state not in STATES:
                return None
            return cls(
                str(data["record_id"]),
                str(data["user"]),
                str(data["app"]),
                state,
                str(data.get("message") or ""),
                str(data.get("updated_at") or ""),
            )
        except KeyError:
            return None


def read_statuses(state_dir: Path) -> list[RequestStatus]:
    try:
        data = json.loads((state_dir / APPROVALS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    listed = data.get("requests") if isinstance(data, dict) else None
    return [s for item in listed or [] if (s := RequestStatus.from_json(item)) is not None]


def for_user(statuses: list[RequestStatus], user: str) -> list[RequestStatus]:
    return [status for status in statuses if status.user == user]


def with_status(statuses: list[RequestStatus], status: RequestStatus) -> list[RequestStatus]:
    """Pure: `status` replaces the entry of its record (or joins at the end); only the newest KEPT stay."""
    kept = [s for s in statuses if s.record_id != status.record_id] + [status]
    return kept[-KEPT:]


def moved_to(
    statuses: list[RequestStatus], record_id: str, state: State, message: str, at: str
) -> list[RequestStatus]:
    """Pure: the record's new state. An answer (approved, declined) is never taken back by a late
    "sent"; an unknown record (its entry pruned, or the file lost) changes nothing."""
    found = next((s for s in statuses if s.record_id == record_id), None)
    if found is None or (found.state in ANSWERED and state == "sent"):
        return statuses
    return with_status(statuses, replace(found, state=state, message=message, updated_at=at))


def write_statuses(state_dir: Path, statuses: list[RequestStatus]) -> None:
    path = state_dir / APPROVALS_FILE
    write_atomically(path, json.dumps({"requests": [asdict(s) for s in statuses]}, indent=1))
    path.chmod(0o644)


def district_contact(state_dir: Path) -> str:
    """Whom the policy that applies on this laptop says to talk to ("" when none is published yet).

    Read from status.json and the policy file the service publishes there, like the sign-off does.
    """
    try:
        status = json.loads((state_dir / STATUS_FILE).read_text(encoding="utf-8"))
        entry = (status.get("policies") or {}).get(status.get("audience") or "student")
        return load_policy(state_dir / entry["file"]).contact if entry else ""
    except (OSError, ValueError, KeyError, TypeError, AttributeError, PolicyError):
        return ""
