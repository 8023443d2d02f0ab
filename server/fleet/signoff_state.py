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

Nothing is stored that time could make stale: the group's renewal ([signoff] renew_on /
renew_after_days in its requirements, else the district's) is turned into one moment per group at
each read (`counts_from`, pure, checked against contract/renewal.py) and given to the database as a
CASE over the group. A policy published, a requirements change, a laptop moved to another school or
a new person seen is in the next read, because each read joins the tables as they are.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, case, exists, func, literal, or_, select
from sqlalchemy.dialects.postgresql import distinct_on
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


def _decision_columns(decision: Any) -> list[Any]:
    """What both readings of the latest decisions give."""
    c = decision.c
    return [c.id, c.device_id, c.user, c.policy_version, c.decision, c.full_name, c.decided_at]


def _latest_by_anti_join() -> Any:
    """Each (laptop, person, version)'s latest decision as a plain anti-join (no window, no
    DISTINCT): both databases fold it into the join, so a page of people reads only its own
    decisions through `ix_signoffs_device_user`."""
    decision, later = SIGNOFFS.alias("decision"), SIGNOFFS.alias("later")
    return (
        select(*_decision_columns(decision))
        .where(
            ~exists().where(
                later.c.device_id == decision.c.device_id,
                later.c.user == decision.c.user,
                later.c.policy_version == decision.c.policy_version,
                or_(
                    later.c.decided_at > decision.c.decided_at,
                    and_(later.c.decided_at == decision.c.decided_at, later.c.id > decision.c.id),
                ),
            )
        )
        .subquery("latest")
    )


def _latest_in_index_order() -> Any:
    """The same latest decisions for a read of everyone on PostgreSQL: DISTINCT ON read straight
    from `ix_signoffs_latest` (in its order: no sort, no hash), so a count merge-joins it with
    `device_users` instead of hashing every sign-off twice. Latest is the same: `decided_at`, then id."""
    decision = SIGNOFFS.alias("decision")
    return (
        select(*_decision_columns(decision))
        .ext(distinct_on(decision.c.device_id, decision.c.user, decision.c.policy_version))
        .order_by(
            decision.c.device_id,
            decision.c.user,
            decision.c.policy_version,
            decision.c.decided_at.desc(),
            decision.c.id.desc(),
        )
        .subquery("latest")
    )


def judged(judgement: Judgement, everyone_on: str = "") -> Select[Any]:
    """One row per person with their laptop, the policy that applies, their latest decision on its
    version and their state. Callers take it `.subquery()` and filter, count, order and page on its
    columns: device_id, user, group_name, hostname, serial, audience, policy_id, policy_version,
    decision, full_name, decided_at, standing, state.

    `standing` is the state with "never signed" and "the version changed" as one, NO_DECISION:
    counts and filters use it (telling the two apart asks the database one more question per
    person, worth it only for the rows shown). `everyone_on` names the database when the read
    counts everyone rather than a page ("postgresql": see `_latest_in_index_order`).

    Every table is aliased, so a caller may correlate its own `devices` or `device_users` with it
    (the device list's filter) without either being mistaken for the other.
    """
    person = DEVICE_USERS.alias("person")
    device = DEVICES.alias("person_device")
    own = POLICIES.alias("own_policy")
    district = POLICIES.alias("district_policy")
    agreed = SIGNOFFS.alias("agreed")
    latest = _latest_in_index_order() if everyone_on == "postgresql" else _latest_by_anti_join()
    version = func.coalesce(own.c.version, district.c.version)
    agreed_to_another = exists().where(
        agreed.c.device_id == person.c.device_id,
        agreed.c.user == person.c.user,
        agreed.c.decision == "agree",
    )
    standing = case(
        (version.is_(None), NO_POLICY),
        (latest.c.id.is_(None), NO_DECISION),
        (latest.c.decision != "agree", DECLINED),
        (latest.c.decided_at >= judgement.earliest(device.c.group_name), SIGNED),
        else_=PAST_RENEWAL,
    )
    state = case(
        (latest.c.id.is_not(None) | version.is_(None), standing),
        (agreed_to_another, VERSION_CHANGED),
        else_=NEVER_SIGNED,
    )
    return select(
        person.c.device_id,
        person.c.user,
        device.c.group_name,
        device.c.hostname,
        device.c.serial,
        device.c.audience,
        case((own.c.version.is_not(None), own.c.policy_id), else_=district.c.policy_id).label("policy_id"),
        version.label("policy_version"),
        latest.c.decision,
        latest.c.full_name,
        latest.c.decided_at,
        standing.label("standing"),
        state.label("state"),
    ).select_from(
        person.join(device, device.c.id == person.c.device_id)
        .outerjoin(own, and_(own.c.group_name == device.c.group_name, own.c.audience == device.c.audience))
        .outerjoin(district, and_(district.c.group_name == "", district.c.audience == device.c.audience))
        .outerjoin(
            latest,
            and_(
                latest.c.device_id == person.c.device_id,
                latest.c.user == person.c.user,
                latest.c.policy_version == version,
            ),
        )
    )
