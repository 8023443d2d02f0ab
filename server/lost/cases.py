"""Lost cases: opened by a user's report or by IT, changed only by IT, each change a timeline
event with who and when, in the audit log too, and notified to the school's recipients (never for
a drill). The device row's `lost_case_id` names the case that keeps it in lost mode.

Every function here runs in the caller's transaction and locks the device's row first (PostgreSQL;
SQLite takes its write lock at BEGIN), so a user's report and IT's mark arriving at once cannot
open two cases for one laptop.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update

from contract.approvals import control_character
from contract.lost import NOTICE_MAX, STATUSES
from server.config_file import ServerConfig
from server.console.audit_log import command_line_address
from server.db.lost_models import LOST_CASES, LOST_EVENTS
from server.db.tables import AUDIT, DEVICES
from server.errors import CommandError
from server.fleet import counted
from server.fleet.ingest import now_utc
from server.lost.devices import device_for_it
from server.lost.summary import case_facts, iso
from server.notify import outbox
from server.terminal import printable

CLOSED = ("recovered", "written_off")
IT_STATUSES = tuple(s for s in STATUSES if s != "reported")


def lock_device(connection: Connection, device_id: str) -> Any:
    return connection.execute(select(DEVICES).where(DEVICES.c.id == device_id).with_for_update()).one()


def open_case_of(connection: Connection, device_id: str, drill: bool = False) -> Any:
    return connection.execute(
        select(LOST_CASES).where(
            LOST_CASES.c.device_id == device_id, LOST_CASES.c.closed_at.is_(None), LOST_CASES.c.drill == drill
        )
    ).first()


def add_event(
    connection: Connection,
    case_id: int,
    actor: str,
    event: str,
    status: str,
    detail: dict[str, Any],
    now: datetime,
) -> int:
    return int(
        connection.execute(
            insert(LOST_EVENTS)
            .values(case_id=case_id, at=now, actor=actor, event=event, status=status, detail=detail)
            .returning(LOST_EVENTS.c.id)
        ).scalar_one()
    )


def audit(
    connection: Connection, actor: str, action: str, detail: dict[str, Any], address: str | None
) -> None:
    connection.execute(
        insert(AUDIT).values(at=now_utc(), actor=actor, action=action, detail=detail, address=address)
    )


def open_case(
    connection: Connection,
    device_id: str,
    *,
    kind: str,
    status: str,
    actor: str,
    now: datetime,
    notice: str | None = None,
    lock_screen: bool = False,
    drill: bool = False,
    event: str = "opened",
    detail: dict[str, Any] | None = None,
) -> tuple[int, int]:
    """A new case and its first event; the laptop is in lost mode from its next heartbeat."""
    with counted.recounted(connection, device_id, now):
        case_id = int(
            connection.execute(
                insert(LOST_CASES)
                .values(
                    device_id=device_id,
                    kind=kind,
                    status=status,
                    drill=drill,
                    notice=notice,
                    lock_screen=lock_screen,
                    opened_at=now,
                    opened_by=actor,
                    closed_at=None,
                )
                .returning(LOST_CASES.c.id)
            ).scalar_one()
        )
        connection.execute(update(DEVICES).where(DEVICES.c.id == device_id).values(lost_case_id=case_id))
    event_id = add_event(
        connection,
        case_id,
        actor,
        event,
        status,
        {"kind": kind, "drill": drill, "notice": notice, "lock_screen": lock_screen, **(detail or {})},
        now,
    )
    return case_id, event_id


def end_drill(connection: Connection, drill_case: Any, actor: str, now: datetime, why: str) -> None:
    with counted.recounted(connection, drill_case.device_id, now):
        connection.execute(update(LOST_CASES).where(LOST_CASES.c.id == drill_case.id).values(closed_at=now))
        connection.execute(
            update(DEVICES)
            .where(DEVICES.c.id == drill_case.device_id, DEVICES.c.lost_case_id == drill_case.id)
            .values(lost_case_id=None)
        )
    add_event(connection, drill_case.id, actor, "drill_ended", drill_case.status, {"why": why}, now)


def notify(
    connection: Connection,
    case_id: int,
    event_id: int,
    event: str,
    actor: str,
    now: datetime,
    config: ServerConfig,
    note: str = "",
    previous_status: str | None = None,
) -> int:
    """Queues the case's facts as they are now for every recipient of the laptop's school."""
    facts = case_facts(connection, case_id)
    payload = {
        **facts,
        "event": event,
        "by": actor,
        "at": iso(now),
        "note": note,
        "previous_status": previous_status,
    }
    group = str(facts["device"]["school"])
    return outbox.queue(connection, case_id, event_id, group, payload, config.notify.recipients, now)


# --- what IT does (homeroom-server devices …) ---------------------------------------------------


def checked_notice(notice: str | None) -> str | None:
    if notice is None:
        return None
    notice = notice.strip()
    if not notice:
        raise CommandError("--notice is empty: write the message the laptop shows, or use --quiet")
    if len(notice) > NOTICE_MAX:
        raise CommandError(f"--notice is {len(notice)} characters: keep it to {NOTICE_MAX}")
    found = control_character(notice, allow_lines=True)
    if found:
        raise CommandError(f"--notice holds a control character ({found})")
    return notice


def _it_actor() -> tuple[str, str]:
    """The timeline's "who" for a command, and the audit log's address: the account that ran it."""
    address = command_line_address()
    return address.removeprefix("command line: "), address


def _who_by(by: tuple[str, str, str | None] | None) -> tuple[str, str, str | None]:
    """The timeline's "who", the audit log's actor and the address: the command's account when None."""
    if by is None:
        who, address = _it_actor()
        return who, "cli", address
    return by


def set_asset_tag(
    engine: Engine, target: str, tag: str, *, by: tuple[str, str, str | None] | None = None
) -> str:
    """`by` as for `change_status`: the console passes its user, the CLI leaves it out."""
    tag = " ".join(tag.split())
    if not tag or len(tag) > 100 or control_character(tag):
        raise CommandError("the asset tag must be 1 to 100 printable characters")
    _who, audit_actor, address = _who_by(by)
    with engine.begin() as connection:
        device = device_for_it(connection, target)
        lock_device(connection, device.id)
        holder = connection.execute(
            select(DEVICES.c.id, DEVICES.c.hostname).where(
                func.upper(func.trim(DEVICES.c.asset_tag)) == tag.upper(), DEVICES.c.id != device.id
            )
        ).first()
        if holder is not None:
            raise CommandError(f"asset tag {tag!r} is already on {printable(holder.hostname)} ({holder.id})")
        connection.execute(update(DEVICES).where(DEVICES.c.id == device.id).values(asset_tag=tag))
        audit(
            connection,
            audit_actor,
            "device.asset_tag_set",
            {"device": device.id, "asset_tag": tag, "before": device.asset_tag},
            address,
        )
    return f"{printable(device.hostname)} (serial {printable(device.serial)}) has asset tag {tag}."


def mark_lost(
    engine: Engine,
    target: str,
    kind: str,
    config: ServerConfig,
    *,
    notice: str | None = None,
    quiet: bool = False,
    lock: bool = False,
    drill: bool = False,
    by: tuple[str, str, str | None] | None = None,
) -> str:
    """`by` as for `change_status`: the console passes its user, the CLI leaves it out."""
    if quiet and notice is not None:
        raise CommandError("--quiet shows nothing: leave out --notice, or --quiet")
    shown = None if quiet else (checked_notice(notice) or config.lost.notice)
    who, audit_actor, address = _who_by(by)
    now = now_utc()
    with engine.begin() as connection:
        device = device_for_it(connection, target)
        lock_device(connection, device.id)
        real, practice = open_case_of(connection, device.id), open_case_of(connection, device.id, drill=True)
        if real is not None:
            raise CommandError(
                f"{printable(device.hostname)} is already {real.status.replace('_', ' ')} (case {real.id}): "
                f"change it with `homeroom-server devices lost-status {real.id} STATUS`"
            )
        if drill and practice is not None:
            raise CommandError(
                f"a drill is already on for {printable(device.hostname)} (case {practice.id}): "
                f"end it with `homeroom-server devices lost-status {practice.id} recovered`"
            )
        if practice is not None:
            end_drill(connection, practice, who, now, "IT marked the laptop lost")
        status = "reported" if drill else f"confirmed_{kind}"
        case_id, event_id = open_case(
            connection,
            device.id,
            kind=kind,
            status=status,
            actor=who,
            now=now,
            notice=shown,
            lock_screen=lock,
            drill=drill,
        )
        queued = 0 if drill else notify(connection, case_id, event_id, "opened", who, now, config)
        audit(
            connection,
            audit_actor,
            "lost.drill_started" if drill else "lost.marked",
            {
                "device": device.id,
                "case": case_id,
                "kind": kind,
                "status": status,
                "notice": shown,
                "lock": lock,
            },
            address,
        )
    what = f"A drill (case {case_id})" if drill else f"Case {case_id}"
    mode = "shows a notice" if shown else "stays quiet"
    locks = " and locks its screen" if lock else ""
    told = " Nobody is notified (a drill)." if drill else f" {queued} notification(s) queued."
    return (
        f"{what}: {printable(device.hostname)} (serial {printable(device.serial)}) enters "
        f"lost mode at its next heartbeat, {mode}{locks}.{told}"
    )


def change_status(
    engine: Engine,
    case_id: int,
    status: str,
    config: ServerConfig,
    *,
    note: str = "",
    notice: str | None = None,
    quiet: bool = False,
    lock: bool | None = None,
    by: tuple[str, str, str | None] | None = None,
) -> str:
    """`by`: who changes it (the timeline's words), the audit log's actor and address; the
    account that runs the command when None."""
    if status not in IT_STATUSES:
        raise CommandError(f"the status must be one of {', '.join(IT_STATUSES)}")
    if quiet and notice is not None:
        raise CommandError("--quiet shows nothing: leave out --notice, or --quiet")
    note = note.strip()
    if control_character(note, allow_lines=True):
        raise CommandError("--note holds a control character")
    new_notice = checked_notice(notice)
    who: str
    address: str | None
    if by is None:
        who, address = _it_actor()
        audit_actor = "cli"
    else:
        who, audit_actor, address = by
    now = now_utc()
    with engine.begin() as connection:
        case = connection.execute(select(LOST_CASES).where(LOST_CASES.c.id == case_id)).first()
        if case is None:
            raise CommandError(f"no lost case {case_id}: `homeroom-server devices lost` lists them")
        lock_device(connection, case.device_id)
        case = connection.execute(select(LOST_CASES).where(LOST_CASES.c.id == case_id)).one()
        if case.closed_at is not None:
            closed_as = case.status.replace("_", " ") + (", a drill" if case.drill else "")
            raise CommandError(
                f"case {case_id} is closed ({closed_as}): a new loss is a new case "
                "(`homeroom-server devices mark-lost`)"
            )
        if case.drill:
            if status != "recovered":
                raise CommandError(
                    f"case {case_id} is a drill: end it with `devices lost-status {case_id} recovered`"
                )
            end_drill(connection, case, who, now, note or "IT ended the drill")
            audit(
                connection,
                audit_actor,
                "lost.drill_ended",
                {"case": case_id, "device": case.device_id},
                address,
            )
            return f"The drill (case {case_id}) is over: the laptop leaves lost mode at its next heartbeat."
        values: dict[str, Any] = {"status": status}
        detail: dict[str, Any] = {"from": case.status, "to": status}
        if note:
            detail["note"] = note
        if quiet or new_notice is not None:
            values["notice"] = None if quiet else new_notice
            detail["notice"] = values["notice"]
        if lock is not None:
            values["lock_screen"] = lock
            detail["lock_screen"] = lock
        if status == case.status and len(values) == 1:
            raise CommandError(f"case {case_id} is already {status.replace('_', ' ')}: nothing to change")
        with counted.recounted(connection, case.device_id, now):
            if status in CLOSED:
                values["closed_at"] = now
                connection.execute(
                    update(DEVICES)
                    .where(DEVICES.c.id == case.device_id, DEVICES.c.lost_case_id == case.id)
                    .values(lost_case_id=None)
                )
            connection.execute(update(LOST_CASES).where(LOST_CASES.c.id == case_id).values(values))
        event_id = add_event(connection, case_id, who, "status", status, detail, now)
        queued = notify(connection, case_id, event_id, "status", who, now, config, note, case.status)
        audit(
            connection,
            audit_actor,
            "lost.status_changed",
            {"case": case_id, "device": case.device_id, **detail},
            address,
        )
    after = (
        "it leaves lost mode at its next heartbeat"
        if status in CLOSED
        else "the laptop takes the change at its next heartbeat"
    )
    return f"Case {case_id} is {status.replace('_', ' ')}: {after}. {queued} notification(s) queued."
