"""The console's side of the audit log: entries with the address they came from, the page's
query, and the CSV export (cells neutralised for spreadsheets)."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, func, insert, or_, select

from server.db.tables import AUDIT
from server.fleet.spreadsheet import spreadsheet_safe

PAGE_SIZE = 100


def record(
    connection: Connection, actor: str, action: str, detail: dict[str, Any], address: str | None
) -> None:
    connection.execute(
        insert(AUDIT).values(
            at=datetime.now(timezone.utc), actor=actor, action=action, detail=detail, address=address
        )
    )


def command_line_address() -> str:
    """Where a `homeroom-server` command was run from: the account and machine (no network address)."""
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        user = f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return f"command line: {user}@{socket.gethostname()}"[:64]


def actor_for(email: str) -> str:
    return f"user:{email}"


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: str
    actor: str
    action: str
    address: str
    detail: str


def _row(row: Any) -> AuditRow:
    at = row.at if row.at.tzinfo else row.at.replace(tzinfo=timezone.utc)
    detail = json.dumps(row.detail, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))
    return AuditRow(
        row.id, at.isoformat(timespec="seconds"), row.actor, row.action, row.address or "", detail
    )


def _filtered(search: str) -> Any:
    query = select(AUDIT)
    if search:
        pattern = f"%{search.replace('%', '').replace('_', '')}%"
        query = query.where(or_(AUDIT.c.actor.like(pattern), AUDIT.c.action.like(pattern)))
    return query


def audit_page(connection: Connection, search: str, page: int) -> tuple[list[AuditRow], int]:
    """The newest entries first, `PAGE_SIZE` a page; and how many match in all."""
    query = _filtered(search)
    total = connection.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = connection.execute(query.order_by(AUDIT.c.id.desc()).limit(PAGE_SIZE).offset(page * PAGE_SIZE))
    return [_row(row) for row in rows], int(total)


CSV_FIELDS = ("id", "at", "actor", "action", "address", "detail")


def audit_csv(connect: Callable[[], Connection], search: str) -> Iterator[str]:
    """Oldest first, streamed in pieces of a thousand rows, each read on a connection of its own."""
    header = io.StringIO()
    csv.writer(header).writerow(CSV_FIELDS)
    yield header.getvalue()
    last = 0
    while True:
        with connect() as connection:
            rows = connection.execute(
                _filtered(search).where(AUDIT.c.id > last).order_by(AUDIT.c.id).limit(1000)
            ).all()
        if not rows:
            return
        out = io.StringIO()
        writer = csv.writer(out)
        for row in rows:
            shown = _row(row)
            writer.writerow([spreadsheet_safe(getattr(shown, field)) for field in CSV_FIELDS])
        last = rows[-1].id
        yield out.getvalue()
