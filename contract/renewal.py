"""How long an "I agree" lasts: the one rule the laptop (when to ask) and the server (who must sign
again) both apply, so the dialog and IT's report never disagree about whether a sign-off counts.

Pure functions of their arguments. A yearly renewal date is a calendar date, read in the time zone
the caller passes: the laptop passes its local zone; the server passes UTC (it has no school's zone
to go by), so around midnight of the renewal date the two may differ by at most the zone's offset.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo


@dataclass(frozen=True)
class Renewal:
    """How long an "I agree" lasts and when to ask again after "I do not agree".

    `yearly_on` is (month, day), e.g. (8, 15) for the start of the school year: an agreement
    signed before that date expires on it. `every_days` expires an agreement that many days
    after it was signed. With both, whichever comes first. `decline_retry_hours` of None means
    someone who declined is asked again only at their next login.
    """

    yearly_on: tuple[int, int] | None = None
    every_days: int | None = None
    decline_retry_hours: int | None = None

    def __post_init__(self) -> None:
        if self.yearly_on is not None:
            month, day = self.yearly_on
            if not 1 <= month <= 12 or not 1 <= day <= _days_in_month(2000, month):
                raise ValueError(f"yearly_on {self.yearly_on!r} is not a (month, day) of the calendar")
        if self.every_days is not None and self.every_days < 1:
            raise ValueError("every_days must be at least 1")
        if self.decline_retry_hours is not None and self.decline_retry_hours < 1:
            raise ValueError("decline_retry_hours must be at least 1")


def renewal_from_settings(renew_on: str, renew_after_days: int, ask_again_after_hours: int = 0) -> Renewal:
    """The [signoff] settings of requirements.toml ("MM-DD" or "", days, hours; 0 means not set)."""
    renew_on = renew_on or ""
    yearly = (int(renew_on[:2]), int(renew_on[3:5])) if len(renew_on) == 5 else None
    return Renewal(
        yearly_on=yearly,
        every_days=int(renew_after_days or 0) or None,
        decline_retry_hours=int(ask_again_after_hours or 0) or None,
    )


def _days_in_month(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def _renewal_midnight(year: int, month: int, day: int, zone: tzinfo) -> datetime:
    """Midnight of (month, day) in `year`; 29 February becomes the 28th in a common year."""
    return datetime(year, month, min(day, _days_in_month(year, month)), tzinfo=zone)


def expires_at(signed_at: datetime, renewal: Renewal, zone: tzinfo = timezone.utc) -> datetime | None:
    """When an agreement signed at `signed_at` stops counting (None: never).

    The yearly date is midnight in `zone`. Signing on the renewal date itself counts for the
    year that begins that day, so it lasts until the same date next year.
    """
    candidates: list[datetime] = []
    if renewal.yearly_on is not None:
        month, day = renewal.yearly_on
        local = signed_at.astimezone(zone)
        boundary = _renewal_midnight(local.year, month, day, zone)
        if boundary <= local:
            boundary = _renewal_midnight(local.year + 1, month, day, zone)
        candidates.append(boundary)
    if renewal.every_days is not None:
        candidates.append(signed_at + timedelta(days=renewal.every_days))
    return min(candidates) if candidates else None
