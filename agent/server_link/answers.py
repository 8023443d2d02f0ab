"""Whether an answer came from this district's server, and the record of the answers refused.

The agent pinned the server's public key at enrolment; an answer counts only when it carries that
key's signature over the request it answers (contract.wire, "answers"). Anything else — unsigned,
signed by another key, or signed for another request — is refused whole: nothing in it is applied,
the record it answered stays queued for the real server, and the refusal is kept here until a
heartbeat has carried it to IT (and shown by `homeroom-agent status`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.state import write_atomically
from contract.wire import HEADER_ANSWER_SIGNATURE, HEADER_SERVER_KEY, answer_signature_valid, load_public_key

REFUSED_ANSWERS_FILE = "refused-answers.json"
REASON_LIMIT = 500


@dataclass(frozen=True)
class Accepted:
    """Signed by the pinned key; `pin` is set when the agent had none yet and pins this one now."""

    pin: str | None = None


@dataclass(frozen=True)
class Refused:
    reason: str


def judge_answer(
    pinned_key: str,
    method: str,
    path: str,
    request_headers: Mapping[str, str],
    body: bytes,
    answer_headers: Mapping[str, str],
    may_pin: bool = True,
    status: int = 200,
) -> Accepted | Refused:
    """Pure: the pinned key (base64; "" for an agent enrolled before keys were pinned), the request as
    sent, and the answer as received with its status (a refusal is signed with it). `may_pin`:
    whether this connection may pin a first key (https or this machine itself, not plain http
    across the network)."""
    signature = answer_headers.get(HEADER_ANSWER_SIGNATURE, "")
    if not signature:
        return Refused("the answer is not signed, so it is not from this district's server")
    sent = dict(request_headers)
    if pinned_key:
        try:
            key = load_public_key(pinned_key)
        except ValueError:
            return Refused("the server key pinned in enrolment.json is damaged: enrol this laptop again")
        if answer_signature_valid(key, signature, method, path, sent, body, status):
            return Accepted()
        return Refused("the answer's signature does not match the server key pinned at enrolment")
    # Enrolled before keys were pinned: trust on first use, once, the key of the first answer that
    # proves it holds it (over https the certificate vouches for who answered).
    if not may_pin:
        return Refused(
            "no server key is pinned yet, and over plain http anyone on the network could offer one: "
            "enrol this laptop again to pin the server's key"
        )
    offered = answer_headers.get(HEADER_SERVER_KEY, "")
    try:
        key = load_public_key(offered)
    except ValueError:
        return Refused("no server key is pinned yet and the answer offers none to pin")
    if answer_signature_valid(key, signature, method, path, sent, body, status):
        return Accepted(pin=offered)
    return Refused("the answer's signature does not match the key it offers")


class RefusedAnswers:
    """refused-answers.json: what was refused (for `status`) and what IT has not yet been told."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / REFUSED_ANSWERS_FILE

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def record(self, reason: str, server_url: str, at: str) -> None:
        data = self.load()
        pending = data.get("pending") or {"count": 0, "first_at": at}
        pending.update(
            count=int(pending.get("count", 0)) + 1,
            last_at=at,
            last_reason=reason[:REASON_LIMIT],
            server_url=server_url[:REASON_LIMIT],
        )
        data["pending"] = pending
        data["total"] = int(data.get("total", 0)) + 1
        data["last"] = {"at": at, "reason": reason[:REASON_LIMIT], "server_url": server_url[:REASON_LIMIT]}
        write_atomically(self.path, json.dumps(data, indent=1))

    def pending(self) -> dict[str, Any] | None:
        """The refusals IT has not been told about, as a heartbeat carries them."""
        pending = self.load().get("pending")
        if not isinstance(pending, dict) or not pending.get("count"):
            return None
        return {
            key: pending.get(key) for key in ("count", "first_at", "last_at", "last_reason", "server_url")
        }

    def carried(self, told: dict[str, Any]) -> None:
        """A queued heartbeat now carries `told`; refusals recorded since then stay pending."""
        data = self.load()
        pending = data.get("pending") or {}
        left = int(pending.get("count", 0)) - int(told.get("count", 0))
        data["pending"] = {**pending, "count": left, "first_at": pending.get("last_at")} if left > 0 else None
        write_atomically(self.path, json.dumps(data, indent=1))
