"""POST /api/v1/lost-evidence, and deleting evidence once its case has been closed long enough.

Evidence is taken only for a case of the laptop that sent it, collected while the case was open
(a record collected in lost mode and delivered after recovery, from an outbox that waited for the
network, is still taken; one collected after the case closed is refused with 409, even from a
laptop whose clock runs a little ahead: once IT says it is recovered, nothing more is kept). The
server adds the address it saw the request come from.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, delete, exists, func, select

from server.api.schemas import LostEvidenceIn, LostEvidenceOut
from server.auth import KnownDevice, utc
from server.console.audit_log import record as audit_record
from server.db.lost_models import LOST_CASES, LOST_EVIDENCE
from server.db.statements import insert_if_new
from server.errors import RequestRefused
from server.fleet.ingest import now_utc
from server.lost.cases import add_event
from server.lost.summary import aware

# A laptop's clock may run a little behind the server's (the signed-request window): evidence it
# dates just before the case opened is still the case's.
CLOCK_SLACK = timedelta(minutes=5)


def store_evidence(
    connection: Connection, device: KnownDevice, body: LostEvidenceIn, address: str | None
) -> LostEvidenceOut:
    already = connection.execute(
        select(LOST_EVIDENCE.c.device_id).where(LOST_EVIDENCE.c.record_id == body.record_id)
    ).first()
    if already is not None:
        if already.device_id != device.id:
            raise RequestRefused(409, "this record id belongs to other evidence: send it with a new id")
        return LostEvidenceOut(record_id=body.record_id, stored=False, duplicate=True)
    case = connection.execute(
        select(LOST_CASES).where(LOST_CASES.c.id == int(body.case_id), LOST_CASES.c.device_id == device.id)
    ).first()
    if case is None:
        raise RequestRefused(409, f"this laptop has no lost case {body.case_id}: it is not in lost mode")
    now = now_utc()
    collected = min(body.collected_at, now)
    closed = aware(case.closed_at)
    if closed is not None and collected > closed:
        raise RequestRefused(
            409,
            f"case {case.id} was closed at {closed.isoformat(timespec='seconds')}: "
            "this laptop is not in lost mode",
        )
    if collected < utc(case.opened_at) - CLOCK_SLACK:
        raise RequestRefused(
            409, f"collected before case {case.id} was opened: evidence is taken only in lost mode"
        )
    new = insert_if_new(
        connection,
        LOST_EVIDENCE,
        {
            "record_id": body.record_id,
            "case_id": case.id,
            "device_id": device.id,
            "collected_at": collected,
            "received_at": now,
            "public_address": address[:64] if address else None,
            "local_addresses": list(body.local_addresses),
            "gateway": body.gateway,
            "wifi": [network.model_dump(mode="json") for network in body.wifi],
            "logged_in_user": body.logged_in_user,
            "uptime_seconds": body.uptime_seconds,
            "unseen": list(body.unseen),
        },
    )
    return LostEvidenceOut(record_id=body.record_id, stored=new, duplicate=not new)


def evidence_expired(closed_at: datetime | None, now: datetime, keep_days: int) -> bool:
    """Whether a case's evidence is due for deletion: `keep_days` after it closed, never while open."""
    closed = aware(closed_at)
    return closed is not None and closed + timedelta(days=keep_days) <= now


def purge_expired_evidence(engine: Engine, keep_days: int, now: datetime, actor: str) -> dict[int, int]:
    """Deletes the evidence of every case closed `keep_days` ago or more; {case id: records deleted}.
    Each deletion is a timeline event and an audit entry. Cheap when there is nothing to delete:
    one read, without SQLite's write lock."""
    has_evidence = exists().where(LOST_EVIDENCE.c.case_id == LOST_CASES.c.id)
    with engine.connect().execution_options(homeroom_read_only=True) as connection:
        closed = connection.execute(
            select(LOST_CASES.c.id, LOST_CASES.c.closed_at).where(
                LOST_CASES.c.closed_at.is_not(None), has_evidence
            )
        ).all()
    due = [row.id for row in closed if evidence_expired(row.closed_at, now, keep_days)]
    deleted: dict[int, int] = {}
    if not due:
        return deleted
    with engine.begin() as connection:
        for case_id in due:
            count = int(
                connection.execute(
                    select(func.count()).select_from(LOST_EVIDENCE).where(LOST_EVIDENCE.c.case_id == case_id)
                ).scalar_one()
            )
            connection.execute(delete(LOST_EVIDENCE).where(LOST_EVIDENCE.c.case_id == case_id))
            status = connection.execute(
                select(LOST_CASES.c.status).where(LOST_CASES.c.id == case_id)
            ).scalar_one()
            add_event(
                connection,
                case_id,
                actor,
                "evidence_deleted",
                status,
                {"records": count, "keep_days": keep_days},
                now,
            )
            audit_record(
                connection,
                actor,
                "lost.evidence_deleted",
                {"case": case_id, "records": count, "keep_days": keep_days},
                None,
            )
            deleted[case_id] = count
    return deleted
