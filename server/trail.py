"""What IT reads about who changed a device record: the audit log, enrolment claims, collisions.

`homeroom-server audit` lists the log; `homeroom-server devices` marks re-keyed, claimed and
colliding records and lists the claims that wait; `devices approve-claim` lets IT decide one.
Everything a device sent is escaped before it reaches the terminal (`server.terminal`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Select, select

from server.db.tables import AUDIT, AUDIT_DEVICES, CLAIMS, DEVICES
from server.errors import CommandError
from server.fleet.claims import accept_claim, audit, utc
from server.terminal import cell, printable

SHOWN_CLAIM_STATES = ("pending", "contested")
DECIDABLE_CLAIM_STATES = ("pending", "refused", "contested")


def _iso(moment: datetime | None) -> str | None:
    stamped = utc(moment)
    return stamped.isoformat() if stamped else None


def _short_time(text: str | None) -> str:
    return (text or "")[:16].replace("T", " ")


@dataclass(frozen=True)
class ClaimRow:
    claim_id: int
    device_id: str
    state: str
    waits_for: str
    group: str
    claimant_hostname: str
    reason: str
    created_at: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "claim_id": self.claim_id,
            "device_id": self.device_id,
            "state": self.state,
            "waits_for": self.waits_for,
            "group": self.group,
            "claimant_hostname": self.claimant_hostname,
            "reason": self.reason,
            "created_at": self.created_at,
        }


def claim_rows(connection: Connection) -> list[ClaimRow]:
    rows = connection.execute(select(CLAIMS).order_by(CLAIMS.c.id)).all()
    return [
        ClaimRow(
            claim_id=row.id,
            device_id=row.device_id,
            state=row.state,
            waits_for=row.waits_for,
            group=row.group_name,
            claimant_hostname=str((row.identity or {}).get("hostname") or ""),
            reason=row.reason,
            created_at=_iso(row.created_at),
        )
        for row in rows
    ]


def device_flags(item: dict[str, Any]) -> str:
    """The short marks the devices table shows after the checks."""
    flags: list[str] = []
    if item.get("key_replaced_at"):
        flags.append(f"re-keyed {item['key_replaced_at'][:10]}")
    waiting = [c for c in item.get("claims", []) if c["state"] in SHOWN_CLAIM_STATES]
    if waiting:
        flags.append(f"{len(waiting)} claim{'s' if len(waiting) > 1 else ''} waiting")
    if item.get("identity_collision"):
        flags.append(f"identity collides with {item['identity_collision'][:8]}")
    if item.get("not_reporting"):
        flags.append("not reporting")
    return ", ".join(flags)


def print_waiting_claims(listed: list[dict[str, Any]]) -> None:
    waiting = [
        (item, c) for item in listed for c in item.get("claims", []) if c["state"] in SHOWN_CLAIM_STATES
    ]
    if not waiting:
        return
    print("\nEnrolment claims waiting (approve one with `homeroom-server devices approve-claim ID`):")
    print(
        f"{'ID':<6} {'DEVICE':<24} {'CLAIMANT':<24} {'TOKEN GROUP':<16} {'WAITS FOR':<10} {'SINCE':<17} WHY"
    )
    for item, claim in waiting:
        waits_for = claim["waits_for"] if claim["state"] == "pending" else "it"
        print(
            f"{claim['claim_id']:<6} {cell(item['hostname'], 24)} {cell(claim['claimant_hostname'], 24)} "
            f"{cell(claim['group'], 16)} {cell(waits_for, 10)} "
            f"{_short_time(claim['created_at']):<17} {printable(claim['reason'])}"
        )


def approve_claim(engine: Engine, claim_id: int) -> str:
    with engine.begin() as connection:
        claim = connection.execute(select(CLAIMS).where(CLAIMS.c.id == claim_id)).first()
        if claim is None:
            raise CommandError(f"no enrolment claim {claim_id}: `homeroom-server devices` lists them")
        if claim.state not in DECIDABLE_CLAIM_STATES:
            raise CommandError(f"claim {claim_id} is already {claim.state}")
        device = connection.execute(select(DEVICES).where(DEVICES.c.id == claim.device_id)).first()
        if device is None:  # pragma: no cover - the claim is deleted with its device
            raise CommandError(f"claim {claim_id}'s device no longer exists")
        # IT decided: the replaced key is not kept, so it cannot undo the decision by signing again.
        accept_claim(
            connection,
            claim,
            device,
            actor="cli",
            reason=f"claim {claim_id} approved by IT",
            keep_old_until=None,
        )
        audit(connection, "cli", "device.claim_approved", {"device": device.id, "claim": claim_id})
        return (
            f"Claim {claim_id} approved: {printable(device.hostname)} ({device.id}) now uses the "
            f"claimant's key, in group {printable(claim.group_name)}."
        )


def audit_entries(connection: Connection, limit: int, device: str | None) -> list[dict[str, Any]]:
    query = select(AUDIT).order_by(AUDIT.c.id.desc()).limit(limit)
    rows = connection.execute(query if device is None else device_audit_query(device, limit)).all()
    return [
        {
            "id": row.id,
            "at": _iso(row.at),
            "actor": row.actor,
            "action": row.action,
            "address": row.address,
            "detail": row.detail,
        }
        for row in reversed(rows)
    ]


def device_audit_query(device: str, limit: int) -> Select[Any]:
    """Entries by the device or about it, newest first: `audit_devices` (kept by a trigger on every
    insert, migration 0013) names them, so this reads `limit` rows of an index, not the whole log."""
    return (
        select(AUDIT)
        .join(AUDIT_DEVICES, AUDIT_DEVICES.c.audit_id == AUDIT.c.id)
        .where(AUDIT_DEVICES.c.device_id == device)
        .order_by(AUDIT_DEVICES.c.audit_id.desc())
        .limit(limit)
    )


def print_audit(entries: list[dict[str, Any]]) -> None:
    if not entries:
        print("The audit log is empty.")
        return
    print(f"{'WHEN':<17} {'ACTOR':<40} {'ACTION':<26} DETAIL")
    for entry in entries:
        detail = json.dumps(entry["detail"], ensure_ascii=False, sort_keys=True, separators=(", ", ": "))
        print(
            f"{_short_time(entry['at']):<17} {cell(entry['actor'], 40)} {cell(entry['action'], 26)} "
            f"{printable(detail)}"
        )


def claims_by_device(connection: Connection) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in claim_rows(connection):
        grouped.setdefault(row.device_id, []).append(row.as_json())
    return grouped
