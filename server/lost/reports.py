"""POST /api/v1/lost-reports: a user's report from a laptop's tray, for that laptop or another one.

Kept once per record id (a report queued offline and sent twice is one report). What the server
made of it is the answer's `outcome`:

- `recorded`: a new case, status "reported"; the laptop is in lost mode from its next heartbeat
  (quiet and unlocked until IT decides otherwise) and the school's recipients are notified;
- `unknown_device`: no laptop has that serial, asset tag or hostname (or several have that
  hostname); nothing is stored and `closest` names what the person may have meant;
- `already_reported`: the laptop's case is open (the report is added to it, nobody is notified
  again), or IT wrote the laptop off after the report was made;
- `already_recovered`: the laptop was recovered after the report was made (a report that waited
  in an outbox while the laptop was found); kept with that case.
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from server.api.schemas import LostReportIn, LostReportOut
from server.auth import KnownDevice
from server.config_file import ServerConfig
from server.db.lost_models import LOST_CASES, LOST_REPORTS
from server.db.statements import insert_if_new
from server.db.tables import DEVICES
from server.errors import RequestRefused
from server.fleet.ingest import now_utc
from server.lost import cases
from server.lost.devices import WORDS, closest, devices_by

MESSAGES = {
    "recorded": "Your report was recorded (case {case}): IT has it, and lost mode is on for the laptop.",
    "already_reported": (
        "This laptop is already reported (case {case}, {status}): your report was added to it."
    ),
    "written_off": (
        "IT has already closed this laptop's case (case {case}, written off): your report was added to it."
    ),
    "already_recovered": (
        "This laptop was recovered after your report was made (case {case}): nothing more to do."
    ),
}


def _answer(
    body: LostReportIn,
    outcome: str,
    message: str,
    stored: bool,
    duplicate: bool,
    near: list[str] | None = None,
) -> LostReportOut:
    return LostReportOut(
        record_id=body.record_id,
        stored=stored,
        duplicate=duplicate,
        outcome=outcome,  # type: ignore[arg-type]
        message=message,
        closest=near or [],
    )


def _message(outcome: str, case: object) -> str:
    status = getattr(case, "status", "")
    key = "written_off" if outcome == "already_reported" and status == "written_off" else outcome
    return MESSAGES[key].format(case=getattr(case, "id", ""), status=str(status).replace("_", " "))


def store_lost_report(
    connection: Connection, device: KnownDevice, body: LostReportIn, config: ServerConfig
) -> LostReportOut:
    now = now_utc()
    earlier = connection.execute(
        select(LOST_REPORTS.c.from_device_id, LOST_REPORTS.c.outcome, LOST_REPORTS.c.case_id).where(
            LOST_REPORTS.c.record_id == body.record_id
        )
    ).first()
    if earlier is not None:
        if earlier.from_device_id != device.id:
            raise RequestRefused(
                409, "this record id belongs to another report: send the report with a new id"
            )
        case = connection.execute(select(LOST_CASES).where(LOST_CASES.c.id == earlier.case_id)).one()
        return _answer(body, earlier.outcome, _message(earlier.outcome, case), stored=False, duplicate=True)

    by, value = body.device.by, body.device.value.strip()
    if by == "this":
        target_id = device.id
    else:
        if not value:
            return _answer(
                body,
                "unknown_device",
                f"Please type the laptop's {WORDS[by]}.",
                stored=False,
                duplicate=False,
            )
        found = devices_by(connection, by, value)
        if len(found) != 1:
            if found:  # several laptops share a hostname
                message = (
                    f"{len(found)} district laptops are called {value!r}: please give the serial number or "
                    "asset tag instead."
                )
                near = [str(row.serial) for row in found if row.serial][:3]
            else:
                near = closest(connection, by, value)
                hint = f" Did you mean {', '.join(near)}?" if near else ""
                message = f"No district laptop has the {WORDS[by]} {value!r}.{hint}"
            return _answer(body, "unknown_device", message, stored=False, duplicate=False, near=near)
        target_id = found[0].id

    cases.lock_device(connection, target_id)
    made_at = min(body.made_at, now)
    sender = connection.execute(select(DEVICES.c.hostname).where(DEVICES.c.id == device.id)).scalar_one()
    actor = f"{body.reporter_name or body.reporter} ({body.reporter} on {sender})"[:300]
    report_detail = {"record_id": body.record_id, "reporter": body.reporter, "from_device": device.id}
    event_id: int | None = None  # the event notified: only a new case's
    open_case = cases.open_case_of(connection, target_id)
    if open_case is not None:
        outcome, case_id = "already_reported", int(open_case.id)
        cases.add_event(connection, case_id, actor, "reported", open_case.status, report_detail, now)
    else:
        closed = connection.execute(
            select(LOST_CASES)
            .where(
                LOST_CASES.c.device_id == target_id,
                LOST_CASES.c.drill.is_(False),
                LOST_CASES.c.closed_at.is_not(None),
                LOST_CASES.c.closed_at >= made_at,
            )
            .order_by(LOST_CASES.c.closed_at.desc())
            .limit(1)
        ).first()
        if closed is not None:
            outcome = "already_recovered" if closed.status == "recovered" else "already_reported"
            case_id = int(closed.id)
            cases.add_event(
                connection, case_id, actor, "reported_after_close", closed.status, report_detail, now
            )
        else:
            outcome = "recorded"
            drill = cases.open_case_of(connection, target_id, drill=True)
            if drill is not None:
                cases.end_drill(connection, drill, actor, now, "a user reported the laptop lost")
            case_id, event_id = cases.open_case(
                connection,
                target_id,
                kind=body.kind,
                status="reported",
                actor=actor,
                now=now,
                event="reported",
                detail=report_detail,
            )
    insert_if_new(
        connection,
        LOST_REPORTS,
        {
            "record_id": body.record_id,
            "from_device_id": device.id,
            "case_id": case_id,
            "outcome": outcome,
            "reporter": body.reporter,
            "reporter_name": body.reporter_name,
            "contact": body.contact,
            "device_by": by,
            "device_value": value,
            "kind": body.kind,
            "last_seen_at": body.last_seen_at,
            "last_seen_where": body.last_seen_where,
            "what_happened": body.what_happened,
            "police_report": body.police_report,
            "made_at": made_at,
            "received_at": now,
        },
    )
    if event_id is not None:
        # After the report row, so the notification carries what the user wrote.
        cases.notify(connection, case_id, event_id, "reported", actor, now, config)
    cases.audit(
        connection,
        f"device:{device.id}",
        "lost.reported",
        {
            "case": case_id,
            "device": target_id,
            "outcome": outcome,
            "reporter": body.reporter,
            "kind": body.kind,
        },
        None,
    )
    case = connection.execute(select(LOST_CASES).where(LOST_CASES.c.id == case_id)).one()
    return _answer(body, outcome, _message(outcome, case), stored=True, duplicate=False)
