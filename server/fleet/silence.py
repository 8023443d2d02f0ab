"""Laptops that have stopped reporting: silent for more than the district's number of days.

A laptop that is off for the holidays, stolen, wiped or whose agent a student broke looks the same
from here: nothing arrives. The server cannot tell which, so it lists them (`homeroom-server
devices`, the daily digest) for a person to find out. Every signed request (report or heartbeat,
every 15 minutes while the laptop is on) updates `last_seen_at`, so a few days of silence is
never a laptop merely asleep over a weekend when the setting is above 3.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import Connection, or_, select

from server.db.tables import DEVICES
from server.errors import CommandError

DEFAULT_SILENT_DAYS = 7  # the console overview's default "not seen for more than" too
SILENT_DAYS_VARIABLE = "HOMEROOM_NOT_REPORTING_DAYS"
MAX_SILENT_DAYS = 365


def silent_days(flag: int | None, environ: Mapping[str, str] | None = None) -> int:
    """--silent-days, else HOMEROOM_NOT_REPORTING_DAYS, else 7; a bad value is said, not guessed."""
    environ = os.environ if environ is None else environ
    if flag is not None:
        value, source = str(flag), "--silent-days"
    elif environ.get(SILENT_DAYS_VARIABLE, "").strip():
        value, source = environ[SILENT_DAYS_VARIABLE].strip(), SILENT_DAYS_VARIABLE
    else:
        return DEFAULT_SILENT_DAYS
    if not value.isdigit() or not 1 <= int(value) <= MAX_SILENT_DAYS:
        raise CommandError(
            f"{source} must be a whole number of days from 1 to {MAX_SILENT_DAYS}, not {value!r}"
        )
    return int(value)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def not_reporting(last_seen: datetime | None, enrolled_at: datetime, now: datetime, days: int) -> bool:
    """Silent for more than `days`: since its last request, or since enrolment if it never sent one."""
    since = _utc(last_seen or enrolled_at)
    return now - since > timedelta(days=days)


@dataclass(frozen=True)
class SilentDevice:
    device_id: str
    hostname: str
    group: str
    serial: str | None
    last_seen: datetime | None

    def silent_for_days(self, now: datetime) -> int | None:
        return None if self.last_seen is None else (now - _utc(self.last_seen)).days


def silent_devices(connection: Connection, now: datetime, days: int) -> list[SilentDevice]:
    bound = now - timedelta(days=days)  # SQLite's DateTime stores UTC without the zone; the bound too
    rows = connection.execute(
        select(
            DEVICES.c.id, DEVICES.c.hostname, DEVICES.c.group_name, DEVICES.c.serial, DEVICES.c.last_seen_at
        ).where(
            or_(
                DEVICES.c.last_seen_at < bound,
                (DEVICES.c.last_seen_at.is_(None)) & (DEVICES.c.enrolled_at < bound),
            )
        )
    )
    silent = [SilentDevice(r.id, r.hostname, r.group_name, r.serial, r.last_seen_at) for r in rows]
    return sorted(silent, key=_oldest_first)


def _oldest_first(device: SilentDevice) -> tuple[str, datetime, str]:
    """Never heard from first, then the longest silent (NULLs sort differently in SQLite and PostgreSQL)."""
    seen = _utc(device.last_seen) if device.last_seen else datetime.min.replace(tzinfo=timezone.utc)
    return device.group, seen, device.hostname
