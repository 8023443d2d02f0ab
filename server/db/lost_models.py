"""Tables of lost and stolen laptops: cases and their timeline, users' reports, evidence, the
district's own networks, and the notifications waiting to go out (migration 0010).

A case is one loss of one laptop, from the first report (or IT's mark) to recovered or written
off; its timeline (`lost_events`) is append-only and says who changed what, and when. Evidence
belongs to a case and is deleted some days after the case closes (server/lost/evidence.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from server.db.models import Base


class LostCase(Base):
    """One loss of one laptop. `status` is one of contract.lost.STATUSES; a drill is a case of its
    own that puts the laptop in lost mode without changing its status or notifying anyone."""

    __tablename__ = "lost_cases"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # lost | stolen
    status: Mapped[str] = mapped_column(String(20))
    drill: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # What the laptop shows while lost (None: it stays quiet), and whether it locks its screen.
    notice: Mapped[str | None] = mapped_column(Text)
    lock_screen: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    opened_at: Mapped[datetime]
    opened_by: Mapped[str] = mapped_column(String(300))
    closed_at: Mapped[datetime | None]


class LostEvent(Base):
    """The timeline of a case: every change, who made it and when (append-only)."""

    __tablename__ = "lost_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("lost_cases.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(300))
    # opened | reported | status | notice | lock | note | evidence_deleted | drill_ended
    event: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(20))  # the case's status after the event
    detail: Mapped[dict[str, Any]]


class LostReport(Base):
    """A report a user filed from a laptop's tray, once per record id, with what the server made of it."""

    __tablename__ = "lost_reports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    record_id: Mapped[str] = mapped_column(String(64), unique=True)
    # The laptop it was filed from (it signed the request), and the case it was added to.
    from_device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("lost_cases.id", ondelete="CASCADE"), index=True)
    outcome: Mapped[str] = mapped_column(String(20))
    reporter: Mapped[str] = mapped_column(String(200))
    reporter_name: Mapped[str] = mapped_column(String(200))
    contact: Mapped[str] = mapped_column(String(300))
    device_by: Mapped[str] = mapped_column(String(10))
    device_value: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10))
    last_seen_at: Mapped[datetime | None]
    last_seen_where: Mapped[str] = mapped_column(Text)
    what_happened: Mapped[str] = mapped_column(Text)
    police_report: Mapped[str | None] = mapped_column(String(100))
    made_at: Mapped[datetime]
    received_at: Mapped[datetime]


class LostEvidence(Base):
    """What a laptop in lost mode sent, once per record id, with the address the server saw it from."""

    __tablename__ = "lost_evidence"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    record_id: Mapped[str] = mapped_column(String(64), unique=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("lost_cases.id", ondelete="CASCADE"), index=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    collected_at: Mapped[datetime]
    received_at: Mapped[datetime]
    public_address: Mapped[str | None] = mapped_column(String(64))
    local_addresses: Mapped[list[Any]]
    gateway: Mapped[str | None] = mapped_column(String(64))
    wifi: Mapped[list[Any]]
    logged_in_user: Mapped[str | None] = mapped_column(String(200))
    uptime_seconds: Mapped[int | None] = mapped_column(Integer)
    unseen: Mapped[list[Any]]


class DistrictRange(Base):
    """An address range of the district's own network, and the building it serves."""

    __tablename__ = "district_ranges"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    network: Mapped[str] = mapped_column(String(64))
    building: Mapped[str] = mapped_column(String(200))


class DistrictAccessPoint(Base):
    """One of the district's Wi-Fi access points (BSSID lower-case, colon-separated) and where it hangs."""

    __tablename__ = "district_access_points"
    bssid: Mapped[str] = mapped_column(String(17), primary_key=True)
    building: Mapped[str] = mapped_column(String(200))
    room: Mapped[str] = mapped_column(String(200))


class Notification(Base):
    """One message to one recipient about one event of a case: the durable outbox the sender drains.

    `lease_until` is how long the process that took it may try before another may (a process that
    died mid-send leaves it to the next); `sent_at` is set once the recipient's server accepted it.
    """

    __tablename__ = "notifications"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("lost_cases.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(10))  # email | webhook
    recipient: Mapped[str] = mapped_column(String(500))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (
        UniqueConstraint("event_id", "channel", "recipient"),
        Index("ix_notifications_due", "sent_at", "next_attempt_at"),
    )


LOST_CASES: Table = LostCase.__table__  # type: ignore[assignment]
LOST_EVENTS: Table = LostEvent.__table__  # type: ignore[assignment]
LOST_REPORTS: Table = LostReport.__table__  # type: ignore[assignment]
LOST_EVIDENCE: Table = LostEvidence.__table__  # type: ignore[assignment]
DISTRICT_RANGES: Table = DistrictRange.__table__  # type: ignore[assignment]
DISTRICT_ACCESS_POINTS: Table = DistrictAccessPoint.__table__  # type: ignore[assignment]
NOTIFICATIONS: Table = Notification.__table__  # type: ignore[assignment]
