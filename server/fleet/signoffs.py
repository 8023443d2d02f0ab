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

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from contract.errors import ConfigError
from contract.renewal import Renewal, expires_at, renewal_from_settings
from contract.requirements import requirements_from_text
from server.api.schemas import (
    SignOffIn,
    SignOffOut,
)
from server.auth import KnownDevice, utc
from server.db.models import (
    Device,
    DeviceUser,
    Policy,
    RequirementsDocument,
    SignOffRecord,
)
from server.db.statements import insert_if_new
from server.db.tables import SIGNOFFS
from server.fleet.ingest import note_user, now_utc
from server.fleet.spreadsheet import spreadsheet_safe


def store_signoff(connection: Connection, device: KnownDevice, signoff: SignOffIn) -> SignOffOut:
    """Kept once per record id: a sign-off made offline and sent twice is one decision."""
    now = now_utc()
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
    if new:
        note_user(connection, device.id, signoff.user, now)
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


NEVER_SIGNED, VERSION_CHANGED, PAST_RENEWAL, NO_POLICY = (
    "never signed",
    "the version changed",
    "past renewal",
    "no policy published",
)


def group_renewals(session: Session) -> dict[str, Renewal]:
    """Each group's renewal rule from its published requirements ("" is the district-wide copy).

    A stored copy that no longer parses (it was checked when published) counts as no renewal
    rather than hiding the whole report.
    """
    renewals: dict[str, Renewal] = {}
    for document in session.scalars(select(RequirementsDocument)):
        try:
            requirements = requirements_from_text(
                f"requirements of {document.group_name!r}", document.content
            )
            renewals[document.group_name] = renewal_from_settings(
                requirements.signoff_renew_on, requirements.signoff_renew_after_days
            )
        except (ConfigError, ValueError):
            continue
    return renewals


def agreement_status(decided_at: datetime, renewal: Renewal, now: datetime) -> tuple[str, str]:
    """(status, note) of an "I agree": still "signed", or "must sign again" once renewal is due."""
    end = expires_at(utc(decided_at), renewal, timezone.utc)
    if end is not None and now >= end:
        return "must sign again", f"the sign-off expired on {end:%Y-%m-%d} (the district's renewal)"
    return "signed", ""


def signoff_rows(
    session: Session,
    group: str | None = None,
    now: datetime | None = None,
    device_ids: Collection[str] | None = None,
) -> list[SignOffRow]:
    """One row per user seen on each device, judged against the policy and renewal that apply now.

    `device_ids` narrows it to those devices (a page of the console's device list)."""
    now = utc(now) if now is not None else now_utc()
    renewals = group_renewals(session)
    devices_query = select(Device)
    if group:
        devices_query = devices_query.where(Device.group_name == group)
    if device_ids is not None:
        devices_query = devices_query.where(Device.id.in_(list(device_ids)))
    devices = {d.id: d for d in session.scalars(devices_query)}
    policies = {(p.group_name, p.audience): p for p in session.scalars(select(Policy))}
    users: dict[str, set[str]] = {}
    for row in session.scalars(select(DeviceUser).where(DeviceUser.device_id.in_(devices))):
        users.setdefault(row.device_id, set()).add(row.user)
    latest: dict[tuple[str, str, str], SignOffRecord] = {}
    agreed_before: set[tuple[str, str]] = set()
    for decision in session.scalars(
        select(SignOffRecord).where(SignOffRecord.device_id.in_(devices)).order_by(SignOffRecord.decided_at)
    ):
        latest[(decision.device_id, decision.user, decision.policy_version)] = decision
        users.setdefault(decision.device_id, set()).add(decision.user)
        if decision.decision == "agree":
            agreed_before.add((decision.device_id, decision.user))

    rows: list[SignOffRow] = []
    for device_id, device in sorted(devices.items(), key=lambda item: (item[1].group_name, item[1].hostname)):
        policy = policies.get((device.group_name, device.audience)) or policies.get(("", device.audience))
        for user in sorted(users.get(device_id, ())):
            record = latest.get((device_id, user, policy.version)) if policy else None
            must_sign = ""
            if policy is None:
                status, note = "not signed", f"no {device.audience} policy is published for this group"
                must_sign = NO_POLICY
            elif record is None:
                status = "not signed"
                changed = (device_id, user) in agreed_before
                note = "signed an earlier version" if changed else "has not signed"
                must_sign = VERSION_CHANGED if changed else NEVER_SIGNED
            elif record.decision == "agree":
                renewal = renewals.get(device.group_name) or renewals.get("") or Renewal()
                status, note = agreement_status(record.decided_at, renewal, now)
                must_sign = PAST_RENEWAL if status == "must sign again" else ""
            else:
                status, note = "declined", ""
            rows.append(
                SignOffRow(
                    group=device.group_name,
                    hostname=device.hostname,
                    serial=device.serial,
                    device_id=device_id,
                    user=user,
                    status=status,
                    full_name=record.full_name if record else None,
                    policy_id=policy.policy_id if policy else None,
                    policy_version=policy.version if policy else None,
                    decided_at=_iso(record.decided_at) if record else None,
                    note=note,
                    audience=device.audience,
                    must_sign=must_sign,
                )
            )
    return rows


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
