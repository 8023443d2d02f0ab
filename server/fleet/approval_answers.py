"""IT's answers to requests to approve an app, as a heartbeat hands them to the laptop that asked.

Apart from `server.fleet.approvals` because the heartbeat (`ingest`) needs this one query only.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select, update

from server.api.schemas import ApprovalAnswerOut
from server.db.tables import APPROVALS
from server.fleet.claims import utc


def answers_for(connection: Connection, device_id: str, now: datetime) -> list[ApprovalAnswerOut]:
    """IT's decisions this device has not been told yet, marked as told (same transaction as the answer)."""
    rows = connection.execute(
        select(APPROVALS).where(
            APPROVALS.c.device_id == device_id,
            APPROVALS.c.state != "waiting",
            APPROVALS.c.answer_delivered_at.is_(None),
        )
    ).all()
    if rows:
        connection.execute(
            update(APPROVALS).where(APPROVALS.c.id.in_([r.id for r in rows])).values(answer_delivered_at=now)
        )
    return [
        ApprovalAnswerOut(
            request_id=row.record_id,
            app=row.app,
            decision=row.state,
            message=row.message,
            decided_at=utc(row.decided_at) or now,
        )
        for row in rows
    ]
