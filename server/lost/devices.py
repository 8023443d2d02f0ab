"""Finding the laptop a report or IT names: by serial, asset tag, hostname or id, without regard
to case, and the closest matches when none has it (a mistyped serial: `5CG1234XZY`)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, func, or_, select

from server.db.tables import DEVICES
from server.errors import CommandError
from server.terminal import printable

CLOSEST_MAX = 3
_COLUMNS = {"serial": DEVICES.c.serial, "asset_tag": DEVICES.c.asset_tag, "hostname": DEVICES.c.hostname}
WORDS = {"serial": "serial number", "asset_tag": "asset tag", "hostname": "hostname"}


def normal(value: str) -> str:
    return " ".join(value.split()).upper()


def closest_values(value: str, candidates: Sequence[str], limit: int = CLOSEST_MAX) -> list[str]:
    """The candidates nearest `value` (difflib's ratio, at least 0.6), best first; compared
    without regard to case or spacing, returned as stored."""
    by_normal: dict[str, str] = {}
    for candidate in candidates:
        by_normal.setdefault(normal(candidate), candidate)
    near = difflib.get_close_matches(normal(value), list(by_normal), n=limit, cutoff=0.6)
    return [by_normal[n] for n in near]


def devices_by(connection: Connection, by: str, value: str) -> list[Any]:
    """Devices whose serial, asset tag or hostname is `value` (any case, outer spaces ignored)."""
    column = _COLUMNS[by]
    return list(
        connection.execute(
            select(DEVICES).where(func.upper(func.trim(column)) == normal(value)).order_by(DEVICES.c.id)
        ).all()
    )


def closest(connection: Connection, by: str, value: str) -> list[str]:
    """What a person may have meant. Reads every value of the column: run only for an unknown one
    (a mistyped report), never on the heartbeat path."""
    column = _COLUMNS[by]
    candidates = [str(v) for v in connection.execute(select(column).where(column.is_not(None))).scalars()]
    return closest_values(value, candidates)


def device_for_it(connection: Connection, text: str) -> Any:
    """The one device an administrator named by id, serial, asset tag or hostname; a clear error
    for none (with the closest serials and hostnames) or several."""
    wanted = normal(text)
    rows = connection.execute(
        select(DEVICES)
        .where(
            or_(
                DEVICES.c.id == text.strip(),
                func.upper(func.trim(DEVICES.c.serial)) == wanted,
                func.upper(func.trim(DEVICES.c.asset_tag)) == wanted,
                func.upper(func.trim(DEVICES.c.hostname)) == wanted,
            )
        )
        .order_by(DEVICES.c.id)
    ).all()
    if len(rows) == 1:
        return rows[0]
    if not rows:
        near = closest(connection, "serial", text) + closest(connection, "hostname", text)
        hint = f" (closest: {', '.join(printable(n) for n in near)})" if near else ""
        raise CommandError(
            f"no device with id, serial number, asset tag or hostname {printable(text)!r}{hint}: "
            "`homeroom-server devices` lists them"
        )
    listed = ", ".join(
        f"{row.id} ({printable(row.hostname)}, serial {printable(row.serial)})" for row in rows
    )
    raise CommandError(
        f"{len(rows)} devices match {printable(text)!r}: give the device id or serial ({listed})"
    )
