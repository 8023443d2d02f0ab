"""Compliance over the last 30 or 90 days, drawn on the server as SVG (templates/trend.html: no
script, no CDN).

For each day: of the devices that had reported by the end of that day, the share whose latest
report by then was fully compliant. Read from the overview's roll-up (server/fleet/counts.py), which
holds each day's changes of those counts for the reader's scope and filters; a day before the
roll-up began (migration 0011) has no figure, and the chart says from when it counts.
`daily_shares` is the same meaning computed from reports, kept for the tests that pin it down.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import Connection

from server.console.fleet_views import Filters, ledger_where
from server.console.roles import Scope
from server.fleet import counted, counts
from server.fleet.counts import Ledger

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


def shares_of(ledger: Ledger, days: int, today: date) -> list[DayShare]:
    """Pure: the roll-up's counts at the end of each of the last `days` days → one share per day;
    a day before the roll-up began has no devices, hence no share (not a share of zero)."""
    shares = []
    for day, totals in ledger.at_end_of_days(today - timedelta(days=days - 1), today):
        if totals is None:
            shares.append(DayShare(day, 0, 0))
        else:
            shares.append(DayShare(day, totals[counted.REPORTED], totals[counted.COMPLIANT]))
    return shares


def read_shares(
    connection: Connection, scope: Scope, filters: Filters, days: int, now: datetime
) -> list[DayShare]:
    """From the roll-up (server/fleet/counts.py): a few rows per day, however many reports."""
    ledger = counts.read_ledger(connection, ledger_where(scope, filters))
    return shares_of(ledger, days, now.astimezone(timezone.utc).date())


@dataclass(frozen=True)
class Chart:
    """What templates/trend.html draws: the polyline's points and the texts (escaped there)."""

    title: str
    summary: str
    points: str
    dots: list[tuple[str, str]]
    first_day: str
    last_day: str
    # The first day with a figure when days before it have none (before the roll-up began, or before
    # any device of the filter had reported): shown, so an empty stretch does not read as 0 %.
    counted_from: str = ""
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
    first = next((s for s in shares if s.share is not None), None)
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
        counted_from=first.day.isoformat() if first is not None and first is not shares[0] else "",
    )
