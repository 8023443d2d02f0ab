"""Each person's sign-off state, judged by the database: the one rule behind the sign-off report
(`homeroom-server signoffs`), the Sign-offs page and its CSV, the admin API, the overview's
coverage and the device list's "sign-off missing" filter and cell. They all read `judged()`, so
none of them can say something another does not.

A person is a row of `device_users`: an account seen on a laptop (storing a sign-off notes its
user there too), counted once per laptop. The policy that applies is the laptop's group's own for
its audience, else the district's. Their decision is the latest (by `decided_at`, then by id) they
made on that laptop for that policy's version. The state, first match wins:

  no policy published   neither policy exists
  the version changed   no decision on that version, but an "I agree" to another one
  never signed          no decision on that version and no "I agree" at all
  declined              the latest decision is "I do not agree"
  signed                "I agree", made no earlier than the group's renewal lets it count
  past renewal          "I agree", made before that

What the state needs is kept on each person's row by the database itself (triggers, migration
0015): the laptop's school and audience, the version that applies there and the latest decision on
it, brought up to date by whatever writes a laptop, a person, a policy or a decision. So a count of
the district reads one table, and no code path can forget to keep it.

Nothing is stored that time could make stale: the group's renewal ([signoff] renew_on /
renew_after_days in its requirements, else the district's) is turned into one moment per group at
each read (`counts_from`, pure, checked against contract/renewal.py) and given to the database as a
CASE over the group. A policy published, a requirements change, a laptop moved to another school or
a new person seen is in the next read.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Connection, case, exists, func, literal, select
from sqlalchemy.sql import Select

from contract.errors import ConfigError
from contract.renewal import Renewal, renewal_from_settings
from contract.requirements import requirements_from_text
from server.auth import utc
from server.db.tables import DEVICE_USERS, DEVICES, POLICIES, REQUIREMENTS, SIGNOFFS

SIGNED = "signed"
DECLINED = "declined"
PAST_RENEWAL = "past renewal"
VERSION_CHANGED = "the version changed"
NEVER_SIGNED = "never signed"
NO_POLICY = "no policy published"
# The states in which the laptop asks the person to sign (a decline is asked again too, but the
# report keeps it apart: it is an answer, not a gap).
MUST_SIGN = (NEVER_SIGNED, VERSION_CHANGED, PAST_RENEWAL, NO_POLICY)
STATES = (SIGNED, DECLINED, *MUST_SIGN)
# `standing`: the state with the two "no decision on this version" reasons as one.
NO_DECISION = "no decision on this version"
STANDINGS = {SIGNED: (SIGNED,), DECLINED: (DECLINED,), PAST_RENEWAL: (PAST_RENEWAL,), NO_POLICY: (NO_POLICY,)}
STANDINGS |= {NEVER_SIGNED: (NO_DECISION,), VERSION_CHANGED: (NO_DECISION,)}


def standings(states: tuple[str, ...]) -> tuple[str, ...]:
    """The standings that hold exactly `states` (which must take both no-decision reasons or neither)."""
    return tuple(sorted({standing for state in states for standing in STANDINGS[state]}))


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


@lru_cache(maxsize=512)
def _renewal_in(group: str, content: str) -> Renewal | None:
    """The renewal a stored requirements document sets; None if it no longer parses (it was checked
    when published): that group then counts as having no renewal rather than hiding the report.
    Cached by the text: every page view reads the documents, few of them ever change."""
    try:
        requirements = requirements_from_text(f"requirements of {group!r}", content)
        return renewal_from_settings(requirements.signoff_renew_on, requirements.signoff_renew_after_days)
    except (ConfigError, ValueError):
        return None


def group_renewals(connection: Connection) -> dict[str, Renewal]:
    """Each group's renewal rule from its published requirements ("" is the district-wide copy)."""
    renewals: dict[str, Renewal] = {}
    for group, content in connection.execute(select(REQUIREMENTS.c.group_name, REQUIREMENTS.c.content)):
        renewal = _renewal_in(group, content)
        if renewal is not None:
            renewals[group] = renewal
    return renewals


@dataclass(frozen=True)
class Judgement:
    """The moment of a read and each group's renewal: all the rule needs besides the tables."""

    now: datetime
    renewals: dict[str, Renewal] = field(default_factory=dict)

    def renewal_for(self, group: str) -> Renewal:
        """The group's own rule, else the district's, else none."""
        return self.renewals.get(group) or self.renewals.get("") or Renewal()

    def earliest(self, group_column: ColumnElement[str]) -> ColumnElement[datetime]:
        """SQL: the earliest "I agree" that still counts, for the group in `group_column`."""
        district = counts_from(self.renewal_for(""), self.now)
        per_group = {
            group: counts_from(renewal, self.now) for group, renewal in sorted(self.renewals.items()) if group
        }
        if not per_group:
            return literal(district)
        return case(per_group, value=group_column, else_=literal(district))


def judgement_at(connection: Connection, now: datetime) -> Judgement:
    return Judgement(utc(now), group_renewals(connection))


def judged(judgement: Judgement, in_order: bool = False) -> Select[Any]:
    """One row per person with their laptop, the policy that applies, their latest decision on its
    version and their state. Callers take it `.subquery()` and filter, count, order and page on its
    columns: device_id, user, group_name, laptop_group, hostname, serial, audience, policy_id,
    policy_version, decision, full_name, decided_at, standing, state.

    Everything the state needs is on the person's row, kept by the database's triggers (migration
    0015): the laptop's school and audience, the version that applies and the latest decision on
    it. A count of the district reads `device_users` alone. `laptop_group` is the same school as
    `devices` holds it, to order by.

    `standing` is the state with "never signed" and "the version changed" as one, NO_DECISION:
    counts and filters use it (telling the two apart asks the database one more question per
    person, worth it only for the rows shown).

    `in_order`: for a read in the report's order (a page, an export). The laptop is then an inner
    join, which lets the database walk `ix_devices_group_hostname_id` in that order and stop at the
    page's last row; otherwise it is an outer join on the key, which a count, reading no hostname,
    drops altogether (both databases drop a join nothing reads).

    Every table is aliased, so a caller may correlate its own `devices` or `device_users` with it
    (the device list's filter) without either being mistaken for the other.
    """
    person = DEVICE_USERS.alias("person")
    device = DEVICES.alias("person_device")
    own = POLICIES.alias("own_policy")
    agreed = SIGNOFFS.alias("agreed")
    on_laptop = device.c.id == person.c.device_id
    laptops = person.join(device, on_laptop) if in_order else person.outerjoin(device, on_laptop)
    district = POLICIES.alias("district_policy")
    # The policy's id, for the rows shown: the group's own where it has one, else the district's.
    policy_id = func.coalesce(
        select(own.c.policy_id)
        .where(own.c.group_name == person.c.group_name, own.c.audience == person.c.audience)
        .correlate_except(own)
        .scalar_subquery(),
        select(district.c.policy_id)
        .where(district.c.group_name == "", district.c.audience == person.c.audience)
        .correlate_except(district)
        .scalar_subquery(),
    )
    version = person.c.signoff_version
    agreed_to_another = exists().where(
        agreed.c.device_id == person.c.device_id,
        agreed.c.user == person.c.user,
        agreed.c.decision == "agree",
    )
    standing = case(
        (version.is_(None), NO_POLICY),
        (person.c.signoff_id.is_(None), NO_DECISION),
        (person.c.signoff_decision != "agree", DECLINED),
        (person.c.signoff_decided_at >= judgement.earliest(person.c.group_name), SIGNED),
        else_=PAST_RENEWAL,
    )
    state = case(
        (person.c.signoff_id.is_not(None) | version.is_(None), standing),
        (agreed_to_another, VERSION_CHANGED),
        else_=NEVER_SIGNED,
    )
    return select(
        person.c.device_id,
        person.c.user,
        person.c.group_name,
        device.c.group_name.label("laptop_group"),
        device.c.hostname,
        device.c.serial,
        person.c.audience,
        case((version.is_not(None), policy_id)).label("policy_id"),
        version.label("policy_version"),
        person.c.signoff_decision.label("decision"),
        person.c.signoff_full_name.label("full_name"),
        person.c.signoff_decided_at.label("decided_at"),
        standing.label("standing"),
        state.label("state"),
    ).select_from(laptops)
