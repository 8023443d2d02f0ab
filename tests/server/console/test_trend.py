"""The compliance-over-time figures: each day's share from the latest report of each device by then."""

from __future__ import annotations

from datetime import date, datetime, timezone

from server.console.trend import chart, daily_shares


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=timezone.utc)


def test_each_day_counts_every_devices_latest_report_by_then() -> None:
    reports = [
        ("b", at(29, 9), "fail"),
        ("a", at(28), "fail"),
        ("a", at(29, 18), "pass"),  # later the same day: the day ends compliant for a
        ("b", at(30), "pass"),
        ("old", datetime(2026, 10, 1, tzinfo=timezone.utc), "pass"),  # before the window
    ]
    shares = daily_shares(reversed(reports), 3, date(2026, 11, 30))
    assert [(s.day.day, s.devices, s.compliant) for s in shares] == [(28, 1, 0), (29, 2, 1), (30, 2, 2)]
    assert [s.share for s in shares] == [0.0, 0.5, 1.0]


def test_a_day_before_any_report_has_no_share_and_the_chart_says_so() -> None:
    shares = daily_shares([], 30, date(2026, 11, 30))
    assert len(shares) == 30 and all(s.share is None for s in shares)
    drawn = chart(shares, "Fully compliant devices, last 30 days")
    assert drawn.summary == "no reports in this period" and drawn.points == ""
    assert (drawn.first_day, drawn.last_day) == ("2026-11-01", "2026-11-30")
    one = chart(daily_shares([("a", at(30), "pass")], 30, date(2026, 11, 30)), "t")
    assert one.summary == "100 % fully compliant on 2026-11-30 (1 of 1)" and len(one.dots) == 1
