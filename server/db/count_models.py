"""The overview's roll-up (migration 0011): how many devices of each school, OS and audience are
enrolled, have reported, are fully compliant, are lost, and fail each requirement, kept as a ledger
of changes written in the same transaction as the change itself (server/fleet/counted.py).

A row is a change (+1 or -1) of one measure for one (school, os, audience) on one day (UTC). Rows
are only ever inserted by the paths that change a device (never updated there): two server
processes changing the same counts at once take no lock on a shared row, so they can neither
deadlock nor lose an update. The current counts are the sums over all rows; the count at the end of
a day is the sum over the rows up to that day, which is what the 30- and 90-day chart draws. Past
days' rows are folded into one row per day and measure (server/fleet/counts.py `compact`), so the
ledger stays a few rows per day and measure however many reports arrive.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Boolean, Date, Index, Integer, String, Table, false
from sqlalchemy.orm import Mapped, mapped_column

from server.db.models import Base


class FleetCountChange(Base):
    __tablename__ = "fleet_count_changes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    day: Mapped[date] = mapped_column(Date)
    school: Mapped[str] = mapped_column(String(100))
    os: Mapped[str] = mapped_column(String(20))
    audience: Mapped[str] = mapped_column(String(20))
    # devices | reported | compliant | lost | fail:<requirement id>
    measure: Mapped[str] = mapped_column(String(60))
    delta: Mapped[int] = mapped_column(Integer)
    # True once `compact` has summed the day's rows into this one.
    folded: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    __table_args__ = (Index("ix_fleet_count_changes_folded_day", "folded", "day"),)


FLEET_COUNT_CHANGES: Table = FleetCountChange.__table__  # type: ignore[assignment]
