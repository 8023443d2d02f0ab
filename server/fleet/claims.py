"""Enrolment and the claims it makes on existing records, inside the caller's transaction.

The decisions are `server.fleet.rekey`'s (pure); this module reads what they need and writes
what they decide, with an audit entry for every re-key, group move and refused claim.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update

from contract.wire import load_public_key
from server.api.schemas import EnrolIn, IdentityIn
from server.db.tables import AUDIT, CLAIMS, DEVICES, ENROLMENT_TOKENS
from server.errors import RequestRefused
from server.fleet import counted
from server.fleet.rekey import MatchedRecord, ReKeyNow, RekeyRule, Wait, WaitsFor, decide_claim

# Facts an enrolment or an accepted claim writes into the record.
IDENTITY_COLUMNS = ("hostname", "manufacturer", "model", "os", "os_version", "machine_id")


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def utc(moment: datetime | None) -> datetime | None:
    """SQLite hands datetimes back without a zone; everything stored is UTC."""
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Enrolled:
    device_id: str
    group: str
    replaced_key: bool


@dataclass(frozen=True)
class ClaimWaiting:
    claim_id: int
    device_id: str
    group: str
    waits_for: WaitsFor
    reason: str


def audit(
    connection: Connection, actor: str, action: str, detail: dict[str, Any], address: str | None = None
) -> None:
    connection.execute(
        insert(AUDIT).values(at=now_utc(), actor=actor, action=action, detail=detail, address=address)
    )


def _token_group(connection: Connection, token_hash: str, now: datetime) -> str:
    row = connection.execute(
        select(
            ENROLMENT_TOKENS.c.group_name, ENROLMENT_TOKENS.c.revoked_at, ENROLMENT_TOKENS.c.expires_at
        ).where(ENROLMENT_TOKENS.c.token_hash == token_hash)
    ).first()
    if row is None:
        raise RequestRefused(403, "enrolment token not recognised: ask IT for a current token")
    if row.revoked_at is not None:
        raise RequestRefused(403, "enrolment token was revoked: ask IT for a current token")
    expires = utc(row.expires_at)
    if expires is not None and expires <= now:
        raise RequestRefused(403, f"enrolment token expired on {expires:%Y-%m-%d}: ask IT for a new one")
    return str(row.group_name)


def _matching(connection: Connection, identity: IdentityIn) -> tuple[list[Any], bool]:
    """Records this identity names, and whether the match is by firmware identity."""
    columns = (
        DEVICES.c.id,
        DEVICES.c.group_name,
        DEVICES.c.last_seen_at,
        DEVICES.c.public_key,
    )
    if identity.serial and identity.hardware_uuid:
        rows = connection.execute(
            select(*columns)
            .where(DEVICES.c.serial == identity.serial, DEVICES.c.hardware_uuid == identity.hardware_uuid)
            .order_by(DEVICES.c.enrolled_at)
        ).all()
        return list(rows), True
    if identity.serial or identity.hardware_uuid:
        # Half a firmware identity: both facts must agree where known, as before.
        rows = connection.execute(
            select(*columns)
            .where(DEVICES.c.serial == identity.serial, DEVICES.c.hardware_uuid == identity.hardware_uuid)
            .order_by(DEVICES.c.enrolled_at)
        ).all()
        return list(rows), True
    if identity.machine_id:
        rows = connection.execute(
            select(*columns)
            .where(
                DEVICES.c.serial.is_(None),
                DEVICES.c.hardware_uuid.is_(None),
                DEVICES.c.machine_id == identity.machine_id,
            )
            .order_by(DEVICES.c.enrolled_at)
        ).all()
        return list(rows), False
    return [], False


def _identity_values(identity: IdentityIn) -> dict[str, Any]:
    values: dict[str, Any] = {name: getattr(identity, name) for name in IDENTITY_COLUMNS}
    values["macs"] = list(identity.macs)
    return values


def enrol(
    connection: Connection, request: EnrolIn, token_hash: str, rule: RekeyRule
) -> Enrolled | ClaimWaiting:
    try:
        load_public_key(request.public_key)
    except ValueError as exc:
        raise RequestRefused(400, str(exc)) from None
    now = now_utc()
    group = _token_group(connection, token_hash, now)
    identity = request.identity
    rows, by_firmware = _matching(connection, identity)
    if not rows:
        device_id = uuid.uuid4().hex
        with counted.recounted(connection, device_id, now):
            connection.execute(
                insert(DEVICES).values(
                    id=device_id,
                    group_name=group,
                    serial=identity.serial,
                    hardware_uuid=identity.hardware_uuid,
                    identity_unreadable=dict(identity.unreadable),
                    public_key=request.public_key,
                    agent_version=request.agent_version,
                    enrolled_at=now,
                    last_seen_at=now,
                    commands_pending=False,
                    claims_pending=False,
                    **_identity_values(identity),
                )
            )
        audit(
            connection,
            f"device:{device_id}",
            "device.enrolled",
            {"group": group, "hostname": identity.hostname, "serial": identity.serial},
        )
        return Enrolled(device_id, group, replaced_key=False)
    record = rows[0]
    matched = MatchedRecord(
        group_name=record.group_name,
        last_seen_at=utc(record.last_seen_at),
        by_firmware=by_firmware,
        matches=len(rows),
    )
    decision = decide_claim(matched, group, now, rule)
    if isinstance(decision, ReKeyNow):
        rekey(
            connection,
            record.id,
            old_group=record.group_name,
            new_group=group,
            old_key=record.public_key,
            new_key=request.public_key,
            identity=identity.model_dump(mode="json"),
            agent_version=request.agent_version,
            keep_old_until=now + rule.keep,
            actor=f"device:{record.id}",
            reason=decision.reason,
        )
        return Enrolled(record.id, group, replaced_key=True)
    return _wait(connection, record.id, record.group_name, request, group, decision, rule, now)


def _wait(
    connection: Connection,
    device_id: str,
    device_group: str,
    request: EnrolIn,
    group: str,
    decision: Wait,
    rule: RekeyRule,
    now: datetime,
) -> ClaimWaiting:
    waiting = connection.execute(
        select(CLAIMS.c.id, CLAIMS.c.public_key, CLAIMS.c.waits_for, CLAIMS.c.reason).where(
            CLAIMS.c.device_id == device_id, CLAIMS.c.state == "pending"
        )
    ).all()
    for claim in waiting:
        if claim.public_key == request.public_key:  # the same agent asking again
            return ClaimWaiting(claim.id, device_id, group, claim.waits_for, claim.reason)
    if len(waiting) >= rule.max_pending_claims:
        raise RequestRefused(
            409, f"{len(waiting)} claims on this laptop's record already wait for IT: ask IT to review them"
        )
    claim_id = connection.execute(
        insert(CLAIMS)
        .values(
            device_id=device_id,
            public_key=request.public_key,
            group_name=group,
            identity=request.identity.model_dump(mode="json"),
            agent_version=request.agent_version,
            state="pending",
            waits_for=decision.waits_for,
            reason=decision.reason,
            created_at=now,
        )
        .returning(CLAIMS.c.id)
    ).scalar_one()
    connection.execute(update(DEVICES).where(DEVICES.c.id == device_id).values(claims_pending=True))
    audit(
        connection,
        "enrolment",
        "device.claim_waiting",
        {
            "device": device_id,
            "claim": claim_id,
            "device_group": device_group,
            "token_group": group,
            "claimant_hostname": request.identity.hostname,
            "waits_for": decision.waits_for,
            "reason": decision.reason,
        },
    )
    return ClaimWaiting(claim_id, device_id, group, decision.waits_for, decision.reason)


def rekey(
    connection: Connection,
    device_id: str,
    *,
    old_group: str,
    new_group: str,
    old_key: str,
    new_key: str,
    identity: dict[str, Any],
    agent_version: str,
    keep_old_until: datetime | None,
    actor: str,
    reason: str,
) -> None:
    """The record takes the new key; the old one is kept until `keep_old_until` (None: dropped).

    When an earlier automatic re-key's replaced key is still kept, that one stays: a taker who re-keys
    twice must not push the real laptop's key out, so that laptop can still undo both.
    """
    now = now_utc()
    kept_key: str | None = None
    if keep_old_until is not None:
        earlier = connection.execute(
            select(DEVICES.c.previous_public_key, DEVICES.c.previous_key_until).where(
                DEVICES.c.id == device_id
            )
        ).first()
        earlier_until = utc(earlier.previous_key_until) if earlier else None
        if earlier is not None and earlier.previous_public_key and earlier_until and earlier_until > now:
            kept_key = earlier.previous_public_key
        else:
            kept_key = old_key
    values: dict[str, Any] = {name: identity.get(name) for name in IDENTITY_COLUMNS}
    values["macs"] = list(identity.get("macs") or [])
    values["hostname"] = values["hostname"] or "unknown"
    with counted.recounted(connection, device_id, now):
        connection.execute(
            update(DEVICES)
            .where(DEVICES.c.id == device_id)
            .values(
                public_key=new_key,
                previous_public_key=kept_key,
                previous_key_until=keep_old_until,
                group_name=new_group,
                agent_version=agent_version,
                key_replaced_at=now,
                last_seen_at=now,
                identity_unreadable=dict(identity.get("unreadable") or {}),
                **values,
            )
        )
    audit(connection, actor, "device.re-keyed", {"device": device_id, "reason": reason})
    if old_group != new_group:
        audit(
            connection, actor, "device.group_moved", {"device": device_id, "from": old_group, "to": new_group}
        )
    _refuse_other_claims(connection, device_id, new_key, "the record was re-keyed to another key")


def _refuse_other_claims(connection: Connection, device_id: str, kept_key: str | None, why: str) -> None:
    now = now_utc()
    waiting = connection.execute(
        select(CLAIMS.c.id, CLAIMS.c.public_key).where(
            CLAIMS.c.device_id == device_id, CLAIMS.c.state == "pending"
        )
    ).all()
    for claim in waiting:
        if claim.public_key == kept_key:
            continue
        _refuse_claim(connection, device_id, claim.id, why, now)
    connection.execute(update(DEVICES).where(DEVICES.c.id == device_id).values(claims_pending=False))


def _refuse_claim(connection: Connection, device_id: str, claim_id: int, why: str, now: datetime) -> None:
    """One claim refused by the server itself, and the audit line that says why."""
    connection.execute(
        update(CLAIMS)
        .where(CLAIMS.c.id == claim_id)
        .values(state="refused", decided_at=now, decided_by="server", reason=why)
    )
    audit(
        connection, "server", "device.claim_refused", {"device": device_id, "claim": claim_id, "reason": why}
    )


def refuse_waiting_claims(connection: Connection, device_id: str) -> None:
    """The record's current key just signed: the laptop it belongs to is alive, so claims waiting for
    quiet lose (claims waiting for IT stay for IT to see)."""
    now = now_utc()
    why = "the laptop's current key reported again after the claim"
    waiting = connection.execute(
        select(CLAIMS.c.id).where(
            CLAIMS.c.device_id == device_id, CLAIMS.c.state == "pending", CLAIMS.c.waits_for == "quiet"
        )
    ).all()
    for claim in waiting:
        _refuse_claim(connection, device_id, claim.id, why, now)
    still = connection.execute(
        select(func.count())
        .select_from(CLAIMS)
        .where(CLAIMS.c.device_id == device_id, CLAIMS.c.state == "pending")
    ).scalar_one()
    if not still:
        connection.execute(update(DEVICES).where(DEVICES.c.id == device_id).values(claims_pending=False))


def waiting_claims(connection: Connection, device_id: str) -> list[Row[Any]]:
    return list(
        connection.execute(
            select(CLAIMS)
            .where(CLAIMS.c.device_id == device_id, CLAIMS.c.state == "pending")
            .order_by(CLAIMS.c.id)
        ).all()
    )


def accept_claim(
    connection: Connection,
    claim: Row[Any],
    device: Row[Any],
    *,
    actor: str,
    reason: str,
    keep_old_until: datetime | None,
) -> None:
    connection.execute(
        update(CLAIMS)
        .where(CLAIMS.c.id == claim.id)
        .values(state="approved", decided_at=now_utc(), decided_by=actor)
    )
    rekey(
        connection,
        device.id,
        old_group=device.group_name,
        new_group=claim.group_name,
        old_key=device.public_key,
        new_key=claim.public_key,
        identity=dict(claim.identity),
        agent_version=claim.agent_version,
        keep_old_until=keep_old_until,
        actor=actor,
        reason=reason,
    )


def undo_takeover(connection: Connection, device: Row[Any]) -> None:
    """The key replaced by an automatic re-key signed again: the laptop it belongs to is alive.

    Its key goes back; the key that took over becomes a claim for IT ("contested"), so nothing is lost
    and a real re-install that raced an old agent can still be approved.
    """
    now = now_utc()
    connection.execute(
        update(DEVICES)
        .where(DEVICES.c.id == device.id)
        .values(public_key=device.previous_public_key, previous_public_key=None, previous_key_until=None)
    )
    claim_id = connection.execute(
        insert(CLAIMS)
        .values(
            device_id=device.id,
            public_key=device.public_key,
            group_name=device.group_name,
            identity={"hostname": device.hostname},
            agent_version=device.agent_version,
            state="contested",
            waits_for="it",
            reason="re-keyed automatically, then the previous key reported again: the re-key was undone",
            created_at=now,
        )
        .returning(CLAIMS.c.id)
    ).scalar_one()
    audit(
        connection,
        "server",
        "device.re-key_undone",
        {
            "device": device.id,
            "claim": claim_id,
            "reason": "the previous key signed a request after the re-key",
        },
    )
