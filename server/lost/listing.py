"""What `homeroom-server devices lost` shows: the cases, where the district's networks last put each
laptop ("seen near Lincoln High, library"), and one case's timeline, reports and evidence."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, select

from server.db.lost_models import LOST_CASES, LOST_EVENTS, LOST_EVIDENCE, LOST_REPORTS, NOTIFICATIONS
from server.db.tables import DEVICES
from server.errors import CommandError
from server.lost.summary import assigned_user, district_networks, iso, sighting_of
from server.terminal import cell, printable

# The newest evidence read per case to find where it was last seen near a district network.
EVIDENCE_LOOKED_AT = 200


@dataclass
class CaseRow:
    case_id: int
    status: str
    kind: str
    drill: bool
    device_id: str
    hostname: str
    serial: str | None
    asset_tag: str | None
    school: str
    manufacturer: str | None
    model: str | None
    assigned_user: str | None
    opened_at: str | None
    closed_at: str | None
    notice: str | None
    lock_screen: bool
    evidence: int
    last_evidence_at: str | None
    last_public_address: str | None
    seen_near: str | None
    seen_near_at: str | None
    timeline: list[dict[str, Any]] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)
    evidence_records: list[dict[str, Any]] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)


def case_rows(
    connection: Connection,
    everything: bool = False,
    case_id: int | None = None,
    schools: ColumnElement[bool] | None = None,
) -> list[CaseRow]:
    """Open cases (every case with `everything`, one with `case_id`), newest first; `schools`
    narrows them to a console user's schools (a clause on the device's group)."""
    query = (
        select(
            LOST_CASES,
            DEVICES.c.hostname,
            DEVICES.c.serial,
            DEVICES.c.asset_tag,
            DEVICES.c.group_name,
            DEVICES.c.manufacturer,
            DEVICES.c.model,
        )
        .join(DEVICES, DEVICES.c.id == LOST_CASES.c.device_id)
        .order_by(LOST_CASES.c.id.desc())
    )
    if schools is not None:
        query = query.where(schools)
    if case_id is not None:
        query = query.where(LOST_CASES.c.id == case_id)
    elif not everything:
        query = query.where(LOST_CASES.c.closed_at.is_(None))
    ranges, points = district_networks(connection)
    rows: list[CaseRow] = []
    for case in connection.execute(query).all():
        evidence = list(
            connection.execute(
                select(LOST_EVIDENCE)
                .where(LOST_EVIDENCE.c.case_id == case.id)
                .order_by(LOST_EVIDENCE.c.collected_at.desc(), LOST_EVIDENCE.c.id.desc())
                .limit(EVIDENCE_LOOKED_AT if case_id is None else 10_000)
            ).all()
        )
        near, near_at = None, None
        for record in evidence:
            seen = sighting_of(record, ranges, points)
            if seen is not None:
                near, near_at = seen.words, iso(record.collected_at)
                break
        row = CaseRow(
            case_id=case.id,
            status=case.status,
            kind=case.kind,
            drill=bool(case.drill),
            device_id=case.device_id,
            hostname=case.hostname,
            serial=case.serial,
            asset_tag=case.asset_tag,
            school=case.group_name,
            manufacturer=case.manufacturer,
            model=case.model,
            assigned_user=assigned_user(connection, case.device_id) if case_id is not None else None,
            opened_at=iso(case.opened_at),
            closed_at=iso(case.closed_at),
            notice=case.notice,
            lock_screen=bool(case.lock_screen),
            evidence=len(evidence),
            last_evidence_at=iso(evidence[0].collected_at) if evidence else None,
            last_public_address=evidence[0].public_address if evidence else None,
            seen_near=near,
            seen_near_at=near_at,
        )
        if case_id is not None:
            _details(connection, row, evidence, ranges, points)
        rows.append(row)
    if case_id is not None and not rows:
        raise CommandError(f"no lost case {case_id}: `homeroom-server devices lost --all` lists them")
    return rows


def _event(e: Any) -> dict[str, Any]:
    """A `lost_events` row as the timelines show it."""
    return {"at": iso(e.at), "actor": e.actor, "event": e.event, "status": e.status, "detail": e.detail}


@dataclass(frozen=True)
class DeviceCase:
    """One case of one laptop as its device page shows it: what it was, and every change to it."""

    case_id: int
    kind: str
    status: str
    drill: bool
    opened_at: str | None
    closed_at: str | None
    timeline: list[dict[str, Any]]


def device_cases(connection: Connection, device_id: str) -> list[DeviceCase]:
    """Every case of one laptop, closed ones too, newest first, each with its whole timeline: a
    laptop lost twice shows both losses. Two statements whatever the number of cases."""
    cases = connection.execute(
        select(LOST_CASES).where(LOST_CASES.c.device_id == device_id).order_by(LOST_CASES.c.id.desc())
    ).all()
    if not cases:
        return []
    events: dict[int, list[dict[str, Any]]] = {case.id: [] for case in cases}
    for e in connection.execute(
        select(LOST_EVENTS)
        .where(LOST_EVENTS.c.case_id.in_(list(events)))
        .order_by(LOST_EVENTS.c.case_id, LOST_EVENTS.c.id)
    ):
        events[e.case_id].append(_event(e))
    return [
        DeviceCase(
            case_id=case.id,
            kind=case.kind,
            status=case.status,
            drill=bool(case.drill),
            opened_at=iso(case.opened_at),
            closed_at=iso(case.closed_at),
            timeline=events[case.id],
        )
        for case in cases
    ]


def _details(connection: Connection, row: CaseRow, evidence: list[Any], ranges: Any, points: Any) -> None:
    row.timeline = [
        _event(e)
        for e in connection.execute(
            select(LOST_EVENTS).where(LOST_EVENTS.c.case_id == row.case_id).order_by(LOST_EVENTS.c.id)
        )
    ]
    row.reports = [
        {
            "record_id": r.record_id,
            "outcome": r.outcome,
            "reporter": r.reporter,
            "reporter_name": r.reporter_name,
            "contact": r.contact,
            "kind": r.kind,
            "last_seen_at": iso(r.last_seen_at),
            "last_seen_where": r.last_seen_where,
            "what_happened": r.what_happened,
            "police_report": r.police_report,
            "made_at": iso(r.made_at),
        }
        for r in connection.execute(
            select(LOST_REPORTS).where(LOST_REPORTS.c.case_id == row.case_id).order_by(LOST_REPORTS.c.id)
        )
    ]
    row.evidence_records = []
    for record in reversed(evidence):
        seen = sighting_of(record, ranges, points)
        row.evidence_records.append(
            {
                "collected_at": iso(record.collected_at),
                "public_address": record.public_address,
                "local_addresses": record.local_addresses,
                "gateway": record.gateway,
                "wifi": record.wifi,
                "logged_in_user": record.logged_in_user,
                "uptime_seconds": record.uptime_seconds,
                "unseen": record.unseen,
                "seen_near": seen.words if seen else None,
                "seen_by": seen.by if seen else None,
            }
        )
    row.notifications = [
        {
            "channel": n.channel,
            "recipient": n.recipient,
            "sent_at": iso(n.sent_at),
            "attempts": n.attempts,
            "last_error": n.last_error,
        }
        for n in connection.execute(
            select(NOTIFICATIONS).where(NOTIFICATIONS.c.case_id == row.case_id).order_by(NOTIFICATIONS.c.id)
        )
    ]


def as_json(rows: list[CaseRow]) -> list[dict[str, Any]]:
    return [asdict(row) for row in rows]


def _time(text: str | None) -> str:
    return (text or "-")[:16].replace("T", " ")


def render_table(rows: list[CaseRow]) -> str:
    if not rows:
        return "No laptops are lost. `homeroom-server devices mark-lost SERIAL --kind lost` marks one.\n"
    lines = [
        f"{'CASE':<5} {'STATUS':<17} {'HOSTNAME':<20} {'SERIAL':<14} {'ASSET TAG':<12} {'SINCE':<16} "
        f"{'LAST EVIDENCE':<16} WHERE"
    ]
    for row in rows:
        status = "drill" if row.drill else row.status
        where = row.seen_near or (f"from {row.last_public_address}" if row.last_public_address else "-")
        if row.seen_near and row.seen_near_at != row.last_evidence_at:
            where += f" (at {_time(row.seen_near_at)})"
        lines.append(
            f"{row.case_id:<5} {status:<17} {cell(row.hostname, 20)} {cell(row.serial or '-', 14)} "
            f"{cell(row.asset_tag or '-', 12)} {_time(row.opened_at):<16} {_time(row.last_evidence_at):<16} "
            f"{printable(where)}"
        )
    return "\n".join(lines) + "\n"


def render_case(row: CaseRow) -> str:
    status = f"{row.status} (a drill)" if row.drill else row.status
    lines = [
        f"Case {row.case_id}: {printable(row.hostname)}, serial {printable(row.serial or '-')}, "
        f"asset tag {printable(row.asset_tag or '-')}, {printable(row.school)}",
        f"Status: {status}, {row.kind}; opened {_time(row.opened_at)}"
        + (f", closed {_time(row.closed_at)}" if row.closed_at else ""),
        f"Laptop: {'notice: ' + printable(row.notice) if row.notice else 'quiet (no notice)'}; "
        f"{'locks its screen' if row.lock_screen else 'screen not locked'}",
    ]
    if row.seen_near:
        lines.append(
            f"SEEN NEAR: {printable(row.seen_near.removeprefix('seen near '))} at {_time(row.seen_near_at)}"
        )
    lines.append("")
    lines.append("Timeline:")
    for event in row.timeline:
        detail = ", ".join(
            f"{k}={printable(v)}" for k, v in sorted(event["detail"].items()) if v not in (None, "")
        )
        lines.append(f"  {_time(event['at'])}  {event['event']:<20} {printable(event['actor'])}  {detail}")
    if row.reports:
        lines.append("Reports:")
        for report in row.reports:
            lines.append(
                f"  {_time(report['made_at'])}  {printable(report['reporter_name'])} "
                f"({printable(report['reporter'])}), contact {printable(report['contact'])}: "
                f"{report['kind']}, last seen {printable(report['last_seen_where'] or '-')}; "
                f"police report {printable(report['police_report'] or '-')}"
            )
            lines.append(f"    {printable(report['what_happened'])}")
    lines.append(f"Evidence ({len(row.evidence_records)}):")
    for record in row.evidence_records:
        networks = ", ".join(printable(w.get("ssid", "")) for w in record["wifi"][:5]) or "-"
        near = f"  ** {record['seen_near']}" if record["seen_near"] else ""
        lines.append(
            f"  {_time(record['collected_at'])}  from {printable(record['public_address'] or '-')}, "
            f"Wi-Fi {networks}, user {printable(record['logged_in_user'] or '-')}{printable(near)}"
        )
    if row.notifications:
        lines.append("Notifications:")
        for n in row.notifications:
            state = f"sent {_time(n['sent_at'])}" if n["sent_at"] else f"waiting ({n['attempts']} attempts)"
            error = f": {printable(n['last_error'])}" if n["last_error"] and not n["sent_at"] else ""
            lines.append(f"  {n['channel']:<8} {printable(n['recipient'])}  {state}{error}")
    return "\n".join(lines) + "\n"
