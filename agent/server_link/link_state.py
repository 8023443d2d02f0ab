"""What the service last heard from the server, kept for `homeroom-agent status` and `run --once`.

The schedule says when a report was *queued*; only this file says when one was
*delivered*, and what the server said when it would not take one. Written by the
service (root); nothing in it is secret.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from agent.server_link.outbox import OutboxItem
from agent.server_link.sender import Delivered, Outcome, Rejected, RetryLater
from agent.state import write_atomically

LINK_FILE = "link.json"


@dataclass
class LinkState:
    last_report_delivered_at: float = 0.0
    problem: str = ""  # the last refusal or failure, until something is delivered again
    problem_at: float = 0.0

    @classmethod
    def load(cls, state_dir: Path) -> LinkState:
        try:
            data = json.loads((state_dir / LINK_FILE).read_text(encoding="utf-8"))
            return cls(
                float(data.get("last_report_delivered_at", 0.0)),
                str(data.get("problem", "")),
                float(data.get("problem_at", 0.0)),
            )
        except (OSError, ValueError, TypeError, AttributeError):
            return cls()

    def save(self, state_dir: Path) -> None:
        write_atomically(state_dir / LINK_FILE, json.dumps(asdict(self), indent=1))


def watched(
    transport: Callable[[OutboxItem], Outcome], state: LinkState, clock: Callable[[], float]
) -> Callable[[OutboxItem], Outcome]:
    """The same transport, noting in `state` each delivered report and the last refusal or failure."""

    def send(item: OutboxItem) -> Outcome:
        outcome = transport(item)
        if isinstance(outcome, Delivered):
            state.problem, state.problem_at = "", 0.0
            if item.kind == "report":
                state.last_report_delivered_at = clock()
        elif isinstance(outcome, (RetryLater, Rejected)) and outcome.reason:
            state.problem, state.problem_at = outcome.reason, clock()
        return outcome

    return send
