"""Lost mode in the heartbeat answer: what a laptop whose case is open is told (contract/lost.py).

Read only for a device whose row names a case (`devices.lost_case_id`, returned by the heartbeat's
own UPDATE), so the heartbeats of the rest of the fleet cost nothing more.
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from contract.lost import LOST_STATUSES
from server.api.schemas import LostModeOut
from server.auth import utc
from server.db.lost_models import LOST_CASES


def lost_mode_for(connection: Connection, case_id: int, interval_seconds: int) -> LostModeOut | None:
    """None once the case is closed, or its status is not one that keeps the laptop in lost mode."""
    case = connection.execute(select(LOST_CASES).where(LOST_CASES.c.id == case_id)).first()
    if case is None or case.closed_at is not None:
        return None
    if not case.drill and case.status not in LOST_STATUSES:
        return None
    return LostModeOut(
        case_id=str(case.id),
        since=utc(case.opened_at),  # SQLite gives it back without its zone; the agent needs one
        interval_seconds=interval_seconds,
        notice=case.notice,
        lock_screen=bool(case.lock_screen),
        drill=bool(case.drill),
    )
