"""The notifications outbox: one row per event and recipient, written in the transaction of the
event itself, so a report is never stored without its notifications or the other way round.

Taking a row to send is a lease (an UPDATE that succeeds for one process only), so several server
processes sharing one PostgreSQL database never send the same row at once; a process that dies
holding a lease leaves it to whoever comes after `lease_seconds`. A row is marked sent in its own
short transaction right after the recipient's server accepted it (docs/architecture.md, "Lost
laptops: notifications", says what "once" means).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from server.config_file import Recipient
from server.db.lost_models import NOTIFICATIONS
from server.db.statements import insert_if_new

ERROR_MAX = 500


def queue(
    connection: Connection,
    case_id: int,
    event_id: int,
    group: str,
    payload: dict[str, Any],
    recipients: tuple[Recipient, ...],
    now: datetime,
) -> int:
    """Rows for every recipient of the device's school; the number queued. Once per event and
    recipient (a unique key), however often this runs."""
    queued = 0
    for recipient in recipients:
        if not recipient.covers(group):
            continue
        queued += insert_if_new(
            connection,
            NOTIFICATIONS,
            {
                "case_id": case_id,
                "event_id": event_id,
                "channel": recipient.channel,
                "recipient": recipient.address,
                "payload": payload,
                "created_at": now,
                "attempts": 0,
                "next_attempt_at": now,
                "lease_until": None,
                "sent_at": None,
                "last_error": None,
            },
        )
    return queued


def backoff_seconds(attempts: int, first: float, maximum: float) -> float:
    """Doubling from `first` after each failed attempt, never more than `maximum`."""
    return float(min(maximum, first * 2 ** max(0, min(attempts - 1, 40))))


@dataclass(frozen=True)
class Taken:
    id: int
    channel: str
    recipient: str
    payload: dict[str, Any]
    attempts: int


def due(engine: Engine, now: datetime, limit: int = 20) -> list[int]:
    """Rows waiting whose time has come and that nobody holds; read without taking SQLite's write
    lock, so an idle server's look every few seconds never stands in a report's way."""
    with engine.connect().execution_options(homeroom_read_only=True) as connection:
        rows = connection.execute(
            select(NOTIFICATIONS.c.id)
            .where(
                NOTIFICATIONS.c.sent_at.is_(None),
                NOTIFICATIONS.c.next_attempt_at <= now,
                (NOTIFICATIONS.c.lease_until.is_(None)) | (NOTIFICATIONS.c.lease_until < now),
            )
            .order_by(NOTIFICATIONS.c.next_attempt_at, NOTIFICATIONS.c.id)
            .limit(limit)
        ).scalars()
        return [int(row) for row in rows]


def take(engine: Engine, notification_id: int, now: datetime, lease_seconds: float) -> Taken | None:
    """The row, if this process won its lease (another process, or a send still in progress, wins
    nothing here)."""
    with engine.begin() as connection:
        won = connection.execute(
            update(NOTIFICATIONS)
            .where(
                NOTIFICATIONS.c.id == notification_id,
                NOTIFICATIONS.c.sent_at.is_(None),
                NOTIFICATIONS.c.next_attempt_at <= now,
                (NOTIFICATIONS.c.lease_until.is_(None)) | (NOTIFICATIONS.c.lease_until < now),
            )
            .values(lease_until=now + timedelta(seconds=lease_seconds), attempts=NOTIFICATIONS.c.attempts + 1)
        ).rowcount
        if won != 1:
            return None
        row = connection.execute(select(NOTIFICATIONS).where(NOTIFICATIONS.c.id == notification_id)).one()
    return Taken(row.id, row.channel, row.recipient, dict(row.payload), int(row.attempts))


def mark_sent(engine: Engine, notification_id: int, now: datetime) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(NOTIFICATIONS)
            .where(NOTIFICATIONS.c.id == notification_id, NOTIFICATIONS.c.sent_at.is_(None))
            .values(sent_at=now, lease_until=None, last_error=None)
        )


def mark_failed(
    engine: Engine, taken: Taken, error: str, now: datetime, first: float, maximum: float
) -> datetime:
    """Tried again after the backoff; the reason kept for `homeroom-server lost notifications`."""
    again = now + timedelta(seconds=backoff_seconds(taken.attempts, first, maximum))
    with engine.begin() as connection:
        connection.execute(
            update(NOTIFICATIONS)
            .where(NOTIFICATIONS.c.id == taken.id, NOTIFICATIONS.c.sent_at.is_(None))
            .values(lease_until=None, next_attempt_at=again, last_error=error[:ERROR_MAX])
        )
    return again
