"""The overview's AUP coverage: of the people seen on the chosen devices, how many have an
"I agree" that still counts. Counted by the database with the one judgement every sign-off view
reads (`server.fleet.signoff_state.judged`), so the overview's share, the Sign-offs page's
coverage and the device list's "sign-off missing" filter cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select, true
from sqlalchemy.orm import Session

from server.fleet.signoff_state import (  # noqa: F401 - counts_from: the rule's moment, tested here
    SIGNED,
    counts_from,
    judged,
    judgement_at,
)


def counts(
    session: Session, now: datetime, where: Callable[[Any], ColumnElement[bool]] = lambda people: true()
) -> tuple[int, int]:
    """(people, signed) among those `where` keeps (a clause on the judged people's columns)."""
    connection = session.connection()
    judgement = judgement_at(connection, now)
    people = judged(judgement).subquery("people")
    query = select(
        func.count().label("people"), func.count().filter(people.c.standing == SIGNED).label("signed")
    ).where(where(people))
    row = connection.execute(query).one()
    return int(row.people), int(row.signed)
