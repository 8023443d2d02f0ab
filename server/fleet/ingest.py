"""What the server does with what devices send: reports and heartbeats (enrolment: `claims`).

Each function runs inside one transaction given by the caller, together with
the request-id record, so a crash at any point leaves all of it or none of it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Executable,
    Row,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from contract.lost import DEFAULT_INTERVAL_SECONDS
from server.api.schemas import (
    CommandOut,
    HeartbeatIn,
    HeartbeatOut,
    IdentityIn,
    RefusedAnswersIn,
    ReportOut,
)
from server.auth import KnownDevice, utc
from server.db.driver_statements import DriverStatement
from server.db.keyed_update import KeyedUpdate
from server.db.statements import insert_if_new
from server.db.tables import (
    AUDIT,
    COMMANDS,
    DEVICE_STATUS,
    DEVICE_USERS,
    DEVICES,
    REPORTS,
)
from server.fleet import counted, report_writes
from server.fleet.approval_answers import answers_for
from server.fleet.completeness import complete_results, enabled_checks
from server.fleet.published import PoliciesCache, RequirementsCache, load_requirements
from server.fleet.report_body import read_report
from server.fleet.report_writes import IDENTIFYING, stored_report
from server.fleet.software_inventory import steady_move, store_inventory
from server.group_commit import defer, write_deferred
from server.lost.mode import lost_mode_for

SEVERITY = {"pass": 0, "unknown": 1, "error": 1, "fail": 2}


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def overall_status(statuses: list[str]) -> str:
    """The device's colour: fail if anything fails, unknown if anything is unconfirmed, else pass."""
    if not statuses:
        return "unknown"
    worst = max(statuses, key=lambda s: SEVERITY.get(s, 1))
    return "unknown" if worst == "error" else worst


def check_statuses(results: list[dict[str, Any]]) -> dict[str, str]:
    """Each requirement's status alone, kept beside the results (`device_status.checks`): what the
    fleet views count and filter at 100,000 devices without reading every result's evidence."""
    return {str(result["id"]): str(result["status"]) for result in results}


def report_time(claimed: datetime, received: datetime) -> datetime:
    """When a report counts as made: never after it arrived.

    A laptop whose clock ran ahead (or a forged date) must not pin the device's status:
    a report dated 9999-12-31 would otherwise beat every genuine report after it. The
    report is clamped, not refused: what it says was observed is real, only its date is
    wrong, and a refusal would lose it. Its body keeps the date the laptop claimed.
    """
    claimed = utc(claimed)
    return min(claimed, received)


def store_report(
    connection: Connection,
    device: KnownDevice,
    body: bytes,
    clock_ahead: timedelta,
    requirements: RequirementsCache | None = None,
) -> ReportOut:
    """Stored once per report id; the current status only moves forward in time.

    A report dated more than `clock_ahead` (the clock-skew window) in the future is noted in
    the audit log. The device record carries every requirement enabled for the group
    (`requirements`, the published copy; none published means all): one the report left
    out is `unknown`. The device's row is locked first and its counted and inventory state read in
    one statement (`counted.before_report`); then the body is read (`report_body.read_report`): a
    software list the same as the stored one, byte for byte, is not parsed again; a bad body
    refuses the whole report (422).
    """
    before = counted.before_report(connection, device.id)
    report, inventory = read_report(body, before.inventory if before is not None else None)
    now = now_utc()
    reported_at = report_time(report.reported_at, now)
    if utc(report.reported_at) > now + clock_ahead:
        note_clock_ahead(connection, device.id, utc(report.reported_at), now)
    published = requirements.get(connection, device.group_name) if requirements is not None else None
    # Dumped once: the stored body and the device's status share the results.
    dumped = report.model_dump(mode="json", exclude={"software"})
    results = complete_results(dumped["results"], enabled_checks(published))
    overall = overall_status([r["status"] for r in results])
    stored = {
        "report_id": report.report_id,
        "device_id": device.id,
        "reported_at": reported_at,
        "received_at": now,
        "overall": overall,
        "body": {**dumped, **inventory.summary()},
    }
    checks = check_statuses(results)
    identity = report.identity
    seen = {
        "device_id": device.id,
        "now": now,
        "agent_version": report.agent_version,
        "hostname": identity.hostname,
        "os_version": identity.os_version,
        "macs": list(identity.macs),
        "audience": report.audience,
        "manufacturer": identity.manufacturer or None,
        "model": identity.model or None,
    }
    if connection.dialect.name == "postgresql" and inventory.reported is None:
        # No list to apply (the stored one again, or none): every write in one statement.
        moved = steady_move(inventory, reported_at)
        identifying = stored_report(moved is not None).first(
            connection,
            report_writes.parameters(
                {
                    **stored,
                    **seen,
                    "results": results,
                    "checks": checks,
                    "users": list(report.users),
                    **{f"inventory_{name}": value for name, value in (moved or {}).items()},
                }
            ),
        )
        if identifying is None:
            return ReportOut(report_id=report.report_id, stored=False, duplicate=True)
        if identifying.device_id is None:
            identifying = None  # the device is gone
    else:
        if not insert_if_new(connection, REPORTS, stored):
            return ReportOut(report_id=report.report_id, stored=False, duplicate=True)
        store_inventory(connection, device.id, report.report_id, reported_at, inventory)
        status = {
            "report_id": report.report_id,
            "reported_at": reported_at,
            "received_at": now,
            "overall": overall,
            "results": results,
            "checks": checks,
        }
        # A report delayed by an outage must not overwrite a newer one that arrived first.
        _status_upsert(connection.dialect.name).execute(connection, {"device_id": device.id, **status})
        identifying = _REPORT_SEEN.first(connection, seen)
        # Nothing later in a report's transaction reads them: a batch's go in one statement (`defer`).
        upsert = _user_upsert(connection.dialect.name)
        for user in report.users:
            defer(connection, upsert, {"device_id": device.id, "user": user, "now": now})
    if identifying is not None:
        fill_in_identifying(connection, device.id, identifying, identity)
    counted.after_report(
        connection,
        before,
        reported_at=reported_at,
        overall=overall,
        checks=checks,
        audience=report.audience,
        now=now,
    )
    if report.dropped:
        note_dropped(connection, device.id, report.dropped)
    if report.local_problems:
        note_local_problems(connection, device.id, report.local_problems)
    return ReportOut(report_id=report.report_id, stored=True, duplicate=False)


# Every report's one statement for the device row: when it was seen and what it says of itself, the
# audience if the report names one, and the facts an unprivileged enrolment could not read filled in
# where empty (`fill_in_identifying`). The identifying facts come back as they stood, so that filling one
# in (rare: once per device) can be checked against the fleet first.
REPORT_SEEN = (
    update(DEVICES)
    .where(DEVICES.c.id == bindparam("device_id"))
    .values(
        last_seen_at=bindparam("now"),
        agent_version=bindparam("agent_version"),
        hostname=bindparam("hostname"),
        os_version=bindparam("os_version"),
        macs=bindparam("macs", type_=DEVICES.c.macs.type),
        audience=func.coalesce(bindparam("audience", type_=DEVICES.c.audience.type), DEVICES.c.audience),
        manufacturer=func.coalesce(
            DEVICES.c.manufacturer, bindparam("manufacturer", type_=DEVICES.c.manufacturer.type)
        ),
        model=func.coalesce(DEVICES.c.model, bindparam("model", type_=DEVICES.c.model.type)),
    )
    .returning(*(DEVICES.c[name] for name in IDENTIFYING), DEVICES.c.identity_collision)
)
_REPORT_SEEN = DriverStatement(REPORT_SEEN)


@lru_cache(maxsize=4)
def _status_upsert(dialect: str) -> DriverStatement:
    """The device's current status, inserted or replaced in one statement, but never by an older report."""
    module: Any = postgresql if dialect == "postgresql" else sqlite
    columns = ("device_id", "report_id", "reported_at", "received_at", "overall", "results", "checks")
    statement = module.insert(DEVICE_STATUS).values({name: bindparam(name) for name in columns})
    upsert: Executable = statement.on_conflict_do_update(
        index_elements=[DEVICE_STATUS.c.device_id],
        set_={name: statement.excluded[name] for name in columns if name != "device_id"},
        where=DEVICE_STATUS.c.reported_at <= statement.excluded.reported_at,
    )
    return DriverStatement(upsert)


def fill_in_identifying(connection: Connection, device_id: str, row: Row[Any], identity: IdentityIn) -> None:
    """Facts an unprivileged enrolment could not read are filled in once the service (root/SYSTEM) reports.

    `row` holds the record's identifying facts and its collision mark as they stood (`REPORT_SEEN`,
    which has already filled in the others). Only empty fields are filled: a serial that changes
    under a known device is not silently rewritten. A fill-in that would give this record another
    device's identity (a serial and SMBIOS UUID pair, or a machine id) is not made: both records are
    flagged and the audit log says so, because a device planting another laptop's serial in its own
    record would otherwise catch that laptop's next re-install.
    """
    current = {name: getattr(row, name) for name in IDENTIFYING}
    filled = {
        name: getattr(identity, name)
        for name in IDENTIFYING
        if current[name] is None and getattr(identity, name)
    }
    if not filled:
        return
    after = {**current, **filled}
    twin = _identity_twin(connection, device_id, after)
    if twin is None:
        connection.execute(update(DEVICES).where(DEVICES.c.id == device_id).values(filled))
        return
    if row.identity_collision is None:
        connection.execute(update(DEVICES).where(DEVICES.c.id == device_id).values(identity_collision=twin))
        connection.execute(update(DEVICES).where(DEVICES.c.id == twin).values(identity_collision=device_id))
        connection.execute(
            insert(AUDIT).values(
                at=now_utc(),
                actor=f"device:{device_id}",
                action="device.identity_collision",
                detail={
                    "device": device_id,
                    "other": twin,
                    "serial": after["serial"],
                    "hardware_uuid": after["hardware_uuid"],
                    "machine_id": after["machine_id"],
                },
            )
        )


def _identity_twin(connection: Connection, device_id: str, identity: dict[str, str | None]) -> str | None:
    """Another record enrolment would confuse with this one, or None."""
    same: list[ColumnElement[bool]] = []
    if identity["serial"] and identity["hardware_uuid"]:
        same.append(
            (DEVICES.c.serial == identity["serial"]) & (DEVICES.c.hardware_uuid == identity["hardware_uuid"])
        )
    if identity["machine_id"]:
        same.append(DEVICES.c.machine_id == identity["machine_id"])
    if not same:
        return None
    found = connection.execute(
        select(DEVICES.c.id).where(DEVICES.c.id != device_id, or_(*same)).limit(1)
    ).scalar()
    return None if found is None else str(found)


@lru_cache(maxsize=4)
def _user_upsert(dialect: str) -> DriverStatement:
    module: Any = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(DEVICE_USERS).values(
        device_id=bindparam("device_id"), user=bindparam("user"), last_seen_at=bindparam("now")
    )
    upsert: Executable = statement.on_conflict_do_update(
        index_elements=[DEVICE_USERS.c.device_id, DEVICE_USERS.c.user],
        set_={"last_seen_at": statement.excluded.last_seen_at},
    )
    return DriverStatement(upsert)


def note_user(connection: Connection, device_id: str, user: str, now: datetime) -> None:
    """The account was seen on the device now (one upsert: every report names its users)."""
    row = {"device_id": device_id, "user": user, "now": now}
    _user_upsert(connection.dialect.name).execute(connection, row)


def note_dropped(connection: Connection, device_id: str, dropped: dict[str, int]) -> None:
    """A laptop whose outbox overflowed says what it had to drop; IT sees it in the audit log."""
    connection.execute(
        insert(AUDIT).values(
            at=now_utc(), actor=f"device:{device_id}", action="device.outbox_dropped", detail=dict(dropped)
        )
    )


def note_refused_answers(connection: Connection, device_id: str, refused: RefusedAnswersIn) -> None:
    """Answers a laptop refused as not this server's (something else answered in its place): IT
    sees who, how often and why in the audit log."""
    connection.execute(
        insert(AUDIT).values(
            at=now_utc(),
            actor=f"device:{device_id}",
            action="device.answers_refused",
            detail=refused.model_dump(mode="json"),
        )
    )


def note_clock_ahead(connection: Connection, device_id: str, claimed: datetime, now: datetime) -> None:
    """IT sees a laptop whose reports are dated in the future (its clock, or someone forging them)."""
    connection.execute(
        insert(AUDIT).values(
            at=now,
            actor=f"device:{device_id}",
            action="device.report_dated_ahead",
            detail={"claimed": claimed.isoformat()[:40], "received": now.isoformat()},
        )
    )


def note_local_problems(connection: Connection, device_id: str, problems: list[str]) -> None:
    """A laptop kept running on bad local state (a damaged outbox set aside, a broken local file): IT must
    know, since what the outbox held may be lost and the file needs fixing."""
    connection.execute(
        insert(AUDIT).values(
            at=now_utc(),
            actor=f"device:{device_id}",
            action="device.local_problem",
            detail={"problems": list(problems)},
        )
    )


# A heartbeat whose device's flags were read with its key for this request (`KnownDevice.flags`)
# and say nothing waits: its one write, sent with the batch's others in one statement (`defer`).
HEARTBEAT_SEEN = KeyedUpdate(
    DEVICES, "id", {"last_seen_at": "now", "agent_version": "agent_version"}, key_parameter="device_id"
)
SEEN_NOW = DriverStatement(
    update(DEVICES)
    .where(DEVICES.c.id == bindparam("device_id"))
    .values(last_seen_at=bindparam("now"), agent_version=bindparam("agent_version"))
    # Read in the same statement, not from the key cache: a command queued a second ago must go out now,
    # and a laptop reported lost a second ago must enter lost mode now.
    .returning(DEVICES.c.commands_pending, DEVICES.c.lost_case_id)
)


def record_heartbeat(
    connection: Connection,
    device: KnownDevice,
    heartbeat: HeartbeatIn,
    requirements: RequirementsCache,
    policies: PoliciesCache,
    lost_interval_seconds: int = DEFAULT_INTERVAL_SECONDS,
) -> HeartbeatOut:
    """The device was seen now. Commands waiting go out with the answer (and are marked delivered in
    the same transaction), as do new requirements and policies and lost mode."""
    now = now_utc()
    written = {"device_id": device.id, "now": now, "agent_version": heartbeat.agent_version}
    flags = device.flags
    if flags is not None and not flags.commands_pending:
        defer(connection, HEARTBEAT_SEEN, written)
        pending, lost_case_id = False, flags.lost_case_id
    else:  # a cached key, or commands wait: the row is locked and read as it is written
        write_deferred(connection)  # the batch's earlier devices first: one lock order
        seen = SEEN_NOW.first(connection, written)
        pending, lost_case_id = (
            (seen.commands_pending, seen.lost_case_id) if seen is not None else (False, None)
        )
    if heartbeat.dropped:
        note_dropped(connection, device.id, heartbeat.dropped)
    if heartbeat.refused_answers:
        note_refused_answers(connection, device.id, heartbeat.refused_answers)
    if heartbeat.local_problems:
        note_local_problems(connection, device.id, heartbeat.local_problems)
    doc = requirements.get(connection, device.group_name)
    commands: list[CommandOut] = []
    if pending:
        queued = connection.execute(
            select(COMMANDS.c.id, COMMANDS.c.command).where(
                COMMANDS.c.device_id == device.id, COMMANDS.c.delivered_at.is_(None)
            )
        ).all()
        commands = [CommandOut(id=row.id, command=row.command) for row in queued]
        if commands:
            connection.execute(
                update(COMMANDS).where(COMMANDS.c.id.in_([c.id for c in commands])).values(delivered_at=now)
            )
        connection.execute(update(DEVICES).where(DEVICES.c.id == device.id).values(commands_pending=False))
    approvals = answers_for(connection, device.id, now) if pending else []
    if approvals:  # an approval comes with the requirements that approve it, not a cached older copy
        doc = load_requirements(connection, device.group_name)
    policy_set = policies.get(connection, device.group_name)
    return HeartbeatOut(
        server_time=now,
        requirements=doc if doc and doc.etag != heartbeat.requirements_etag else None,
        policies=policy_set if policy_set and policy_set.etag != heartbeat.policies_etag else None,
        commands=commands,
        approvals=approvals,
        lost_mode=lost_mode_for(connection, lost_case_id, lost_interval_seconds) if lost_case_id else None,
    )
