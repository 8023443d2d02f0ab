"""One laptop's history of software changes as IT reads it (`homeroom-server software --device`).

What was added, removed or changed on the laptop, newest first, with the report that showed it:
the answer to "when did this appear, and what was it before?".
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass

from sqlalchemy import Connection, or_, select

from server.auth import utc
from server.db.tables import DEVICES, SOFTWARE_CHANGES
from server.errors import CommandError
from server.fleet.spreadsheet import spreadsheet_safe
from server.terminal import cell, printable


@dataclass(frozen=True)
class ChangeRow:
    reported_at: str
    report_id: str
    change: str  # added | removed | changed
    name: str
    source: str
    version: str
    previous_version: str | None
    publisher: str
    judged: bool | None


@dataclass(frozen=True)
class DeviceHistory:
    device_id: str
    hostname: str
    changes: list[ChangeRow]


def device_history(connection: Connection, device: str, limit: int = 200) -> DeviceHistory:
    """`device` is an id or a hostname; a hostname several laptops share must be given as an id."""
    if limit < 1:
        raise CommandError("--limit must be 1 or more")
    found = connection.execute(
        select(DEVICES.c.id, DEVICES.c.hostname).where(
            or_(DEVICES.c.id == device, DEVICES.c.hostname == device)
        )
    ).all()
    if not found:
        raise CommandError(f"no device with id or hostname {printable(device)!r}")
    if len(found) > 1:
        ids = ", ".join(row.id for row in found)
        raise CommandError(
            f"{len(found)} devices are called {printable(device)!r}: give the device id ({ids})"
        )
    (row,) = found
    changes = connection.execute(
        select(SOFTWARE_CHANGES)
        .where(SOFTWARE_CHANGES.c.device_id == row.id)
        .order_by(SOFTWARE_CHANGES.c.id.desc())
        .limit(limit)
    )
    return DeviceHistory(
        row.id,
        row.hostname,
        [
            ChangeRow(
                reported_at=utc(change.reported_at).isoformat(),
                report_id=change.report_id,
                change=change.change,
                name=change.name,
                source=change.source,
                version=change.version,
                previous_version=change.previous_version,
                publisher=change.publisher,
                judged=change.judged,
            )
            for change in changes
        ],
    )


def as_json(history: DeviceHistory) -> dict[str, object]:
    return {
        "device_id": history.device_id,
        "hostname": history.hostname,
        "changes": [asdict(change) for change in history.changes],
    }


def as_csv(history: DeviceHistory) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(list(ChangeRow.__dataclass_fields__))
    for change in history.changes:
        writer.writerow([spreadsheet_safe(value) for value in asdict(change).values()])
    return out.getvalue()


def as_table(history: DeviceHistory) -> str:
    if not history.changes:
        return f"No software changes recorded for {printable(history.hostname)} yet.\n"
    lines = [f"{'WHEN':<16} {'CHANGE':<8} {'NAME':<32} {'VERSION':<36} SOURCE"]
    for change in history.changes:
        when = change.reported_at[:16].replace("T", " ")
        version = change.version
        if change.change == "changed" and change.previous_version != change.version:
            version = f"{change.previous_version} -> {change.version}"
        name, shown_version = cell(change.name, 32), cell(version, 36)
        lines.append(f"{when:<16} {change.change:<8} {name} {shown_version} {printable(change.source)}")
    return "\n".join(lines) + "\n"


def render(shown: DeviceHistory, output: str) -> str:
    """As `output` says: "json", "csv" (spreadsheet-safe) or "table" (terminal-safe)."""
    if output == "json":
        return json.dumps(as_json(shown), indent=2) + "\n"
    return as_csv(shown) if output == "csv" else as_table(shown)
