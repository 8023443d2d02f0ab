"""What the tray shows of lost mode, decided from plain data (pure, like tray_state).

- While the district shows a notice: the lost-mode icon and tooltip, and the notice window kept on
  screen (closed, it comes back). In a quiet case the service publishes nothing the tray could show.
- After lost mode: each user is told once, at their next login, that location evidence was
  collected and between which times.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from agent.desktop.tray_state import TrayState
from agent.lost.mode import EndedPeriod

LOST_TOOLTIP = "This laptop has been reported lost. Please return it: see the message on the screen."
NOTICE_TITLE = "Homeroom — This laptop has been reported lost"
ENDED_TITLE = "Homeroom — Location evidence was collected"


def lost_state(notice: str | None) -> TrayState | None:
    """The lost-mode icon while a notice is shown, else None (the usual colours apply)."""
    return TrayState("lost", LOST_TOOLTIP) if notice else None


def when(text: str) -> str:
    """An ISO time as people read it, in the laptop's zone: "1 December 2026, 14:30"."""
    try:
        moment = datetime.fromisoformat(text).astimezone()
    except ValueError:
        return text
    return f"{moment.day} {moment:%B %Y, %H:%M}"


def untold(periods: Iterable[EndedPeriod], told: frozenset[str]) -> list[EndedPeriod]:
    return [period for period in periods if period.period_id not in told]


def ended_words(periods: Sequence[EndedPeriod]) -> str:
    """What the user reads at login after lost mode ended (one sentence per period)."""
    lines = ["While this laptop was marked lost or stolen, Homeroom collected location evidence for the "
             "district: the laptop's network addresses, the Wi-Fi networks near it, the account signed "
             "in and how long it had been on."]  # fmt: skip
    for period in periods:
        drill = " (a test of lost mode run by IT)" if period.drill else ""
        lines.append(
            f"It was collected between {when(period.first_evidence_at)} and "
            f"{when(period.last_evidence_at)}{drill}."
        )
    lines.append(
        "Lost mode has ended, and none of this is collected any more. Questions: ask your school's IT team."
    )
    return "\n\n".join(lines)
