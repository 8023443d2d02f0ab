"""The overview's AUP coverage counted by the database: of the people seen on the chosen devices,
how many have an "I agree" that still counts.

The same judgement as the sign-off report (`server.fleet.signoffs.signoff_rows`), which builds
every row in Python and is meant for reading a list, not for counting 100,000 laptops on each
page view: a person counts as signed when their latest decision on that device for the policy
version that applies now (the group's own policy for the device's audience, else the district's)
is "agree", made no earlier than the group's renewal allows. People are `device_users`: storing a
sign-off notes its user there too, so everyone with a decision is in it.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, case, func, literal, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from contract.renewal import Renewal
from server.auth import utc
from server.db.tables import DEVICE_USERS, DEVICES, POLICIES, SIGNOFFS
from server.fleet.signoffs import group_renewals

# An agreement made at or after this counts where no renewal applies.
BEGINNING = datetime(1970, 1, 1, tzinfo=timezone.utc)


def counts_from(renewal: Renewal, now: datetime) -> datetime:
    """Pure: the earliest moment an "I agree" may have been made and still count at `now`.

    `contract.renewal.expires_at` says an agreement signed at S expires at the first yearly date
    after S (or at S itself plus `every_days`); so at `now` it still counts exactly when S is at
    or after the last yearly date on or before `now`, and later than `now - every_days`.
    """
    earliest = BEGINNING
    if renewal.yearly_on is not None:
        month, day = renewal.yearly_on
        for year in (now.year, now.year - 1):
            boundary = _renewal_midnight(year, month, day)
            if boundary <= now:
                earliest = max(earliest, boundary)
                break
    if renewal.every_days is not None:
        # Strictly later than now - every_days: one microsecond on, the finest both databases keep.
        earliest = max(earliest, now - timedelta(days=renewal.every_days) + timedelta(microseconds=1))
    return earliest


def _renewal_midnight(year: int, month: int, day: int) -> datetime:
    """Midnight UTC of the yearly date, as the server reads it (29 February: the 28th in a common year)."""
    return datetime(year, month, min(day, calendar.monthrange(year, month)[1]), tzinfo=timezone.utc)


def counts(session: Session, device_ids: Select[Any], now: datetime) -> tuple[int, int]:
    """(people, signed) on the devices `device_ids` selects."""
    now = utc(now)
    renewals = group_renewals(session)
    district = counts_from(renewals.get("", Renewal()), now)
    per_group = {group: counts_from(renewal, now) for group, renewal in renewals.items() if group}

    own = POLICIES.alias("own_policy")
    district_policy = POLICIES.alias("district_policy")
    later = SIGNOFFS.alias("later")
    latest_agreements = (
        select(SIGNOFFS.c.device_id, SIGNOFFS.c.user, SIGNOFFS.c.policy_version, SIGNOFFS.c.decided_at)
        .where(
            SIGNOFFS.c.decision == "agree",
            ~select(later.c.id)
            .where(
                later.c.device_id == SIGNOFFS.c.device_id,
                later.c.user == SIGNOFFS.c.user,
                later.c.policy_version == SIGNOFFS.c.policy_version,
                later.c.decided_at > SIGNOFFS.c.decided_at,
            )
            .exists(),
        )
        .distinct()
        .subquery("latest_agreement")
    )
    # Aliases: the chosen devices' subquery (and a search filter's EXISTS on device_users inside
    # it) must not be correlated with this query's own devices and people.
    person, device = DEVICE_USERS.alias("person"), DEVICES.alias("person_device")
    earliest = (
        case(per_group, value=device.c.group_name, else_=literal(district))
        if per_group
        else literal(district)
    )
    version = func.coalesce(own.c.version, district_policy.c.version)
    query = (
        select(func.count().label("people"), func.count(latest_agreements.c.device_id).label("signed"))
        .select_from(
            person.join(device, device.c.id == person.c.device_id)
            .outerjoin(
                own, and_(own.c.group_name == device.c.group_name, own.c.audience == device.c.audience)
            )
            .outerjoin(
                district_policy,
                and_(district_policy.c.group_name == "", district_policy.c.audience == device.c.audience),
            )
            .outerjoin(
                latest_agreements,
                and_(
                    latest_agreements.c.device_id == person.c.device_id,
                    latest_agreements.c.user == person.c.user,
                    latest_agreements.c.policy_version == version,
                    latest_agreements.c.decided_at >= earliest,
                ),
            )
        )
        .where(person.c.device_id.in_(device_ids))
    )
    row = session.connection().execute(query).one()
    return int(row.people), int(row.signed)
