"""Sign-offs: stored once per record as devices send them, and the report IT reads.

`signoff_rows` lists, per device and user seen on it, signed / must sign again / declined /
not signed against the version that applies now. "Signed" honours the group's renewal
([signoff] renew_on / renew_after_days in its published requirements, read with the same rule
the laptop uses, contract/renewal.py): after the renewal date an agreement no longer counts, and
the laptop asks that user again at their next login.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from contract.renewal import Renewal, expires_at
from server.api.schemas import (
    SignOffIn,
    SignOffOut,
)
from server.auth import KnownDevice, utc
from server.db.among import among
from server.db.statements import insert_if_new
from server.db.tables import SIGNOFFS
from server.fleet import signoff_state
from server.fleet.ingest import note_user, now_utc
from server.fleet.signoff_state import (  # noqa: F401 - the report's reasons, named where they are shown
    NEVER_SIGNED,
    NO_POLICY,
    PAST_RENEWAL,
    VERSION_CHANGED,
    Judgement,
    judged,
    judgement_at,
)
from server.fleet.spreadsheet import spreadsheet_safe


def store_signoff(connection: Connection, device: KnownDevice, signoff: SignOffIn) -> SignOffOut:
    """Kept once per record id: a sign-off made offline and sent twice is one decision."""
    now = now_utc()
    # The person's row first: it holds the row until commit, so a second decision of theirs stored
    # at the same moment waits for this one, and the database's trigger on the decision (migration
    # 0015) then finds the row to keep it on, whichever decision is later.
    note_user(connection, device.id, signoff.user, now)
    new = insert_if_new(
        connection,
        SIGNOFFS,
        {
            "record_id": signoff.record_id,
            "device_id": device.id,
            "user": signoff.user,
            "full_name": signoff.full_name,
            "policy_id": signoff.policy_id,
            "policy_version": signoff.policy_version,
            "decision": signoff.decision,
            "decided_at": utc(signoff.decided_at),
            "received_at": now,
        },
    )
    return SignOffOut(record_id=signoff.record_id, stored=new, duplicate=not new)


@dataclass(frozen=True)
class SignOffRow:
    group: str
    hostname: str
    serial: str | None
    device_id: str
    user: str
    status: str  # "signed", "must sign again", "declined", "not signed"
    full_name: str | None
    policy_id: str | None
    policy_version: str | None
    decided_at: str | None
    note: str
    audience: str = ""  # the device's: "staff" | "student"
    # Why this user must sign: NEVER_SIGNED, VERSION_CHANGED, PAST_RENEWAL, NO_POLICY; "" when not.
    must_sign: str = ""


STATUSES = {
    signoff_state.SIGNED: "signed",
    signoff_state.DECLINED: "declined",
    signoff_state.PAST_RENEWAL: "must sign again",
    signoff_state.VERSION_CHANGED: "not signed",
    signoff_state.NEVER_SIGNED: "not signed",
    signoff_state.NO_POLICY: "not signed",
}


# The same words for a `standing` (the state without telling the two no-decision reasons apart).
STANDING_STATUSES = {standing: STATUSES[state] for state, (standing,) in signoff_state.STANDINGS.items()}


def statuses_on(
    connection: Connection, device_ids: Collection[str], now: datetime
) -> dict[str, list[tuple[str, str]]]:
    """Each laptop's people as (user, status), by user: all a cell of the device list or its CSV
    shows. A count's reading of the judgement (no hostname, no policy, no full name), so a batch
    of 1,000 laptops reads `device_users` alone where decisions are kept."""
    judgement = judgement_at(connection, now)
    people = judged(judgement).subquery("people")
    query = (
        select(people.c.device_id, people.c.user, people.c.standing)
        .where(among(people.c.device_id, list(device_ids), connection.dialect.name))
        .order_by(people.c.device_id, people.c.user)
    )
    found: dict[str, list[tuple[str, str]]] = {}
    for device_id, user, standing in connection.execute(query).all():
        found.setdefault(device_id, []).append((user, STANDING_STATUSES[standing]))
    return found


def states_with_status(status: str) -> tuple[str, ...]:
    """The judgement's states a report status gathers ("not signed": never, changed, no policy)."""
    return tuple(state for state, shown in STATUSES.items() if shown == status)


def agreement_status(decided_at: datetime, renewal: Renewal, now: datetime) -> tuple[str, str]:
    """(status, note) of an "I agree": still "signed", or "must sign again" once renewal is due.
    The rule in Python, for one agreement: the database applies it as `counts_from`'s moment."""
    end = expires_at(utc(decided_at), renewal, timezone.utc)
    if end is not None and now >= end:
        return "must sign again", f"the sign-off expired on {end:%Y-%m-%d} (the district's renewal)"
    return "signed", ""


def _note(found: Any, judgement: Judgement) -> str:
    """The words beside a state; the state itself is the database's (`signoff_state.judged`)."""
    if found.state == signoff_state.NO_POLICY:
        return f"no {found.audience} policy is published for this group"
    if found.state == signoff_state.NEVER_SIGNED:
        return "has not signed"
    if found.state == signoff_state.VERSION_CHANGED:
        return "signed an earlier version"
    if found.state == signoff_state.PAST_RENEWAL:
        end = expires_at(utc(found.decided_at), judgement.renewal_for(found.group_name), timezone.utc)
        return f"the sign-off expired on {end:%Y-%m-%d} (the district's renewal)" if end else ""
    return ""


def row_of(found: Any, judgement: Judgement) -> SignOffRow:
    """A row of `signoff_state.judged()` as the report, the pages and the API show it."""
    state = str(found.state)
    return SignOffRow(
        group=found.group_name,
        hostname=found.hostname,
        serial=found.serial,
        device_id=found.device_id,
        user=found.user,
        status=STATUSES[state],
        full_name=found.full_name,
        policy_id=found.policy_id,
        policy_version=found.policy_version,
        decided_at=_iso(found.decided_at) if found.decided_at is not None else None,
        note=_note(found, judgement),
        audience=found.audience,
        must_sign=state if state in signoff_state.MUST_SIGN else "",
    )


def report_order(people: Any) -> list[Any]:
    """School, laptop, then person: the order of the report, the Sign-offs page and its CSV. The
    school as `devices` holds it (the same as the person's copy), so that a page walks
    `ix_devices_group_hostname_id` and stops at its last row instead of sorting the district."""
    return [people.c.laptop_group, people.c.hostname, people.c.device_id, people.c.user]


def signoff_rows(
    session: Session | Connection,
    group: str | None = None,
    now: datetime | None = None,
    device_ids: Collection[str] | None = None,
) -> list[SignOffRow]:
    """One row per user seen on each device, judged against the policy and renewal that apply now.

    `device_ids` narrows it to those devices (a page of the console's device list). Every row is
    read: the console's pages and exports page through `signoff_state.judged()` instead."""
    connection = session.connection() if isinstance(session, Session) else session
    judgement = judgement_at(connection, now if now is not None else now_utc())
    people = judged(judgement, in_order=True).subquery("people")
    query = select(people).order_by(*report_order(people))
    if group:
        query = query.where(people.c.group_name == group)
    if device_ids is not None:
        query = query.where(among(people.c.device_id, list(device_ids), connection.dialect.name))
    return [row_of(found, judgement) for found in connection.execute(query)]


def _iso(moment: datetime) -> str:
    return utc(moment).isoformat()


def rows_as_json(rows: list[SignOffRow]) -> list[dict[str, object]]:
    return [asdict(row) for row in rows]


def rows_as_csv(rows: list[SignOffRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    fields = list(SignOffRow.__dataclass_fields__)
    writer.writerow(fields)
    for row in rows:
        writer.writerow([spreadsheet_safe(value) for value in asdict(row).values()])
    return out.getvalue()
