"""Requests to approve an app: stored once per record as laptops send them, listed for IT, decided by IT.

Approving publishes the device's group's requirements again with the app on the approved list, so
their ETag changes and every laptop of the group takes them at its next heartbeat (the one that
asked turns green once its software check runs). A group that had no requirements of its own gets
its own copy of the district-wide ones, with the app added. Declining keeps a message for the user.
Either answer reaches the laptop in a heartbeat's signed answer: deciding sets the device's
`commands_pending`, the flag the heartbeat already reads, so heartbeats cost nothing more until then.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

import tomlkit
from sqlalchemy import Connection, Engine, select, update

from contract.approvals import MESSAGE_MAX, control_character
from contract.errors import ConfigError
from contract.requirements import requirements_from_text
from server.api.schemas import ApprovalRequestIn, ApprovalRequestOut
from server.auth import KnownDevice
from server.db.statements import insert_if_new
from server.db.tables import APPROVALS, DEVICES, REQUIREMENTS
from server.errors import CommandError
from server.fleet.claims import audit, utc
from server.fleet.ingest import note_user, now_utc
from server.fleet.published import load_requirements, store_requirements
from server.terminal import printable


def store_request(
    connection: Connection, device: KnownDevice, request: ApprovalRequestIn
) -> ApprovalRequestOut:
    """Kept once per record id: a request queued offline and sent twice is one request."""
    now = now_utc()
    new = insert_if_new(
        connection,
        APPROVALS,
        {
            "record_id": request.record_id,
            "device_id": device.id,
            "user": request.user,
            "full_name": request.full_name,
            "app": request.app,
            "publisher": request.publisher,
            "reason": request.reason,
            "requested_at": utc(request.requested_at),
            "received_at": now,
            "state": "waiting",
            "message": "",
        },
    )
    if new:
        note_user(connection, device.id, request.user, now)
        return ApprovalRequestOut(
            record_id=request.record_id, stored=True, duplicate=False, decision="waiting"
        )
    found = connection.execute(
        select(APPROVALS.c.state, APPROVALS.c.message).where(
            APPROVALS.c.record_id == request.record_id, APPROVALS.c.device_id == device.id
        )
    ).first()
    decision: Literal["waiting", "approved", "declined"] = "waiting"
    if found is not None and found.state in ("approved", "declined"):
        decision = found.state
    message = found.message if found is not None else ""
    return ApprovalRequestOut(
        record_id=request.record_id, stored=False, duplicate=True, decision=decision, message=message
    )


@dataclass(frozen=True)
class ApprovalRow:
    id: int
    state: str
    group: str
    hostname: str
    device_id: str
    user: str
    full_name: str
    app: str
    publisher: str
    reason: str
    requested_at: str
    decided_at: str | None
    decided_by: str | None
    message: str


def approval_rows(connection: Connection, group: str | None = None) -> list[ApprovalRow]:
    """Every request, oldest first, with the device's group and hostname as they are now."""
    query = (
        select(APPROVALS, DEVICES.c.group_name, DEVICES.c.hostname)
        .join(DEVICES, DEVICES.c.id == APPROVALS.c.device_id)
        .order_by(APPROVALS.c.id)
    )
    if group:
        query = query.where(DEVICES.c.group_name == group)
    return [
        ApprovalRow(
            id=row.id,
            state=row.state,
            group=row.group_name,
            hostname=row.hostname,
            device_id=row.device_id,
            user=row.user,
            full_name=row.full_name,
            app=row.app,
            publisher=row.publisher,
            reason=row.reason,
            requested_at=_iso(row.requested_at) or "",
            decided_at=_iso(row.decided_at),
            decided_by=row.decided_by,
            message=row.message,
        )
        for row in connection.execute(query)
    ]


def rows_as_json(rows: list[ApprovalRow]) -> list[dict[str, Any]]:
    return [asdict(row) for row in rows]


def _iso(moment: datetime | None) -> str | None:
    stamped = utc(moment)
    return stamped.isoformat() if stamped else None


# --- what IT decides ----------------------------------------------------------------------------


def exact_name(name: str) -> str:
    """A name as an approval rule that matches it alone: the glob characters * ? [ taken literally."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def with_app_approved(content: str, app: str, publisher: str) -> str:
    """requirements.toml with the app added to [software] approved; comments and layout kept.

    The publisher narrows the rule when the laptop reported one (a name alone could be anyone's app).
    """
    document = tomlkit.parse(content)
    software = document.get("software")
    if software is None:
        software = tomlkit.table()
        document["software"] = software
    approved = software.get("approved")
    if approved is None:
        approved = tomlkit.array()
        approved.multiline(True)
        software["approved"] = approved
    if publisher:
        rule = tomlkit.inline_table()
        rule["name"], rule["publisher"] = exact_name(app), exact_name(publisher)
        approved.append(rule)
    else:
        approved.append(exact_name(app))
    return tomlkit.dumps(document)


def _decide(
    connection: Connection,
    request_id: int,
    state: str,
    message: str,
    actor: str,
    allowed_group: Callable[[str], bool] | None = None,
) -> Any:
    """Takes the request from waiting to `state`, as the transaction's first statement.

    An UPDATE that only matches a waiting request, first: two administrators deciding at once
    cannot both succeed, and on SQLite the write lock is taken before anything is read, so the
    requirements read next are the latest (no approval lost to a concurrent one).
    """
    decided = connection.execute(
        update(APPROVALS)
        .where(APPROVALS.c.id == request_id, APPROVALS.c.state == "waiting")
        .values(state=state, message=message, decided_at=now_utc(), decided_by=actor)
    ).rowcount
    row = connection.execute(
        select(APPROVALS, DEVICES.c.group_name, DEVICES.c.hostname)
        .join(DEVICES, DEVICES.c.id == APPROVALS.c.device_id)
        .where(APPROVALS.c.id == request_id)
    ).first()
    if row is None or (allowed_group is not None and not allowed_group(row.group_name)):
        # Outside the console user's schools it does not exist for them; the update rolls back.
        raise CommandError(f"no approval request {request_id}: `homeroom-server approvals` lists them")
    if not decided:
        raise CommandError(f"request {request_id} is already {row.state}")
    # The device's next heartbeat carries the answer (server.fleet.ingest.record_heartbeat).
    connection.execute(update(DEVICES).where(DEVICES.c.id == row.device_id).values(commands_pending=True))
    return row


def approve_request(
    engine: Engine,
    request_id: int,
    actor: str = "cli",
    address: str | None = None,
    allowed_group: Callable[[str], bool] | None = None,
) -> str:
    """`allowed_group` and `address` are the console's: the reader's scope, and where they are."""
    with engine.begin() as connection:
        row = _decide(connection, request_id, "approved", "", actor, allowed_group)
        group = row.group_name
        # PostgreSQL: the group's copy is locked until commit, so a concurrent approval waits for this one.
        published = connection.execute(
            select(REQUIREMENTS.c.group_name).where(REQUIREMENTS.c.group_name == group).with_for_update()
        ).first()
        current = load_requirements(connection, group)
        if current is None:
            raise CommandError("no requirements are published: `homeroom-server requirements publish FILE`")
        content = with_app_approved(current.content, row.app, row.publisher)
        try:
            requirements_from_text(f"the requirements of {group!r} with {row.app!r} approved", content)
        except ConfigError as exc:  # pragma: no cover - the rule added is a plain quoted string
            raise CommandError(str(exc)) from None
        etag = store_requirements(connection, content, group, actor)
        audit(
            connection,
            actor,
            "approval.approved",
            {"device": row.device_id, "request": row.id, "app": row.app, "group": group, "etag": etag},
            address,
        )
        audit(connection, actor, "requirements.published", {"group": group, "etag": etag}, address)
    copied = "" if published else " (its own copy of the district-wide requirements, from now on)"
    return (
        f"Approved {_shown(row.app)} for group {_shown(group)}: its requirements are published again{copied} "
        f"(ETag {etag[:12]}…); {_shown(row.hostname)} turns green at its next heartbeat."
    )


def decline_request(
    engine: Engine,
    request_id: int,
    message: str,
    actor: str = "cli",
    address: str | None = None,
    allowed_group: Callable[[str], bool] | None = None,
) -> str:
    message = message.strip()
    if not message:
        raise CommandError("say why in --message: the user reads it in the tray")
    if len(message) > MESSAGE_MAX:
        raise CommandError(f"--message is {len(message)} characters: keep it to {MESSAGE_MAX}")
    found = control_character(message, allow_lines=True)
    if found:
        raise CommandError(f"--message holds a control character ({found})")
    with engine.begin() as connection:
        row = _decide(connection, request_id, "declined", message, actor, allowed_group)
        audit(
            connection,
            actor,
            "approval.declined",
            {"device": row.device_id, "request": row.id, "app": row.app, "message": message},
            address,
        )
    return (
        f"Declined {_shown(row.app)} for {_shown(row.user)} on {_shown(row.hostname)}: "
        "they see your message in the tray."
    )


def _shown(text: str) -> str:
    return printable(text)
