"""Compliance over the last 30 or 90 days, drawn on the server as SVG (templates/trend.html: no
script, no CDN).

For each day: of the devices that had reported by the end of that day (within the window),
the share whose latest report by then was fully compliant. Read from the append-only `reports`
history for the reader's scope and filters. A device whose last report is older than the window
is not drawn (it is counted as "not seen" on the overview).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import Connection, select

from server.console.fleet_views import Filters
from server.console.roles import Scope
from server.db.tables import DEVICES, REPORTS

WIDTH, HEIGHT, MARGIN = 640, 180, 48


@dataclass(frozen=True)
class DayShare:
    day: date
    devices: int
    compliant: int

    @property
    def share(self) -> float | None:
        return self.compliant / self.devices if self.devices else None


def daily_shares(reports: Iterable[tuple[str, datetime, str]], days: int, today: date) -> list[DayShare]:
    """Pure: (device, reported at, overall) in any order → one share per day, oldest first."""
    first = today - timedelta(days=days - 1)
    by_day: dict[date, list[tuple[datetime, str, str]]] = {}
    for device, moment, overall in reports:
        day = (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).date()
        if first <= day <= today:
            by_day.setdefault(day, []).append((moment, device, overall))
    latest: dict[str, str] = {}
    shares: list[DayShare] = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        for _moment, device, overall in sorted(by_day.get(day, []), key=lambda item: item[0]):
            latest[device] = overall
        shares.append(DayShare(day, len(latest), sum(status == "pass" for status in latest.values())))
    return shares


def read_shares(
    connection: Connection, scope: Scope, filters: Filters, days: int, now: datetime
) -> list[DayShare]:
    start = datetime.combine(now.date() - timedelta(days=days - 1), datetime.min.time(), timezone.utc)
    query = (
        select(REPORTS.c.device_id, REPORTS.c.reported_at, REPORTS.c.overall)
        .select_from(REPORTS.join(DEVICES, DEVICES.c.id == REPORTS.c.device_id))
        .where(filters.where(scope), REPORTS.c.reported_at >= start)
    )
    rows = ((row.device_id, row.reported_at, row.overall) for row in connection.execute(query))
    return daily_shares(rows, days, now.date())


@dataclass(frozen=True)
class Chart:
    """What templates/trend.html draws: the polyline's points and the texts (escaped there)."""

    title: str
    summary: str
    points: str
    dots: list[tuple[str, str]]
    first_day: str
    last_day: str
    width: int = WIDTH
    height: int = HEIGHT
    margin: int = MARGIN

    @property
    def inner_width(self) -> int:
        return self.width - 2 * self.margin

    @property
    def inner_height(self) -> int:
        return self.height - 2 * self.margin


def chart(shares: list[DayShare], title: str) -> Chart:
    inner_w, inner_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN
    step = inner_w / max(len(shares) - 1, 1)
    dots = [
        (f"{MARGIN + i * step:.1f}", f"{MARGIN + inner_h * (1 - share.share):.1f}")
        for i, share in enumerate(shares)
        if share.share is not None
    ]
    last = next((s for s in reversed(shares) if s.share is not None), None)
    if last is not None and last.share is not None:
        summary = (
            f"{last.share * 100:.0f} % fully compliant on {last.day.isoformat()} "
            f"({last.compliant} of {last.devices})"
        )
    else:
        summary = "no reports in this period"
    return Chart(
        title=title,
        summary=summary,
        points=" ".join(f"{x},{y}" for x, y in dots),
        dots=dots if len(dots) == 1 else [],
        first_day=shares[0].day.isoformat() if shares else "",
        last_day=shares[-1].day.isoformat() if shares else "",
    )
