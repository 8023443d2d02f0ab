"""One laptop, whole: what the console's device page and `homeroom-server devices show HOST` read.

Identity, each requirement's result (summary, evidence, remediation), a history timeline (reports,
software changes, audit entries, newest first), the software inventory judged by the rules its
school's laptops receive (`contract.software_rules`, as `homeroom-server software`), the sign-off
records and where each user stands now (`server.fleet.signoffs`), and the audit entries about it
(re-keys, group moves, commands: `server.trail`). Reading only; the caller decides who may read it.

Two columns other work adds are read when they exist (`optional_column`): an asset tag and a lost
status. Until then the record simply has none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, or_, select
from sqlalchemy.orm import Session

from contract.requirements import Requirements
from contract.software_rules import standing
from server.auth import utc
from server.db.lost_models import LOST_CASES
from server.db.tables import (
    DEVICE_INVENTORY,
    DEVICE_SOFTWARE,
    DEVICE_STATUS,
    DEVICE_USERS,
    DEVICES,
    REPORTS,
    SIGNOFFS,
    SOFTWARE_CHANGES,
)
from server.errors import CommandError
from server.fleet.requirement_status import TITLES, Cell, cells
from server.fleet.signoffs import SignOffRow, signoff_rows
from server.fleet.software_list import judging_requirements
from server.terminal import printable
from server.trail import audit_entries

# What the lost-device work (issue 12) adds: an asset tag, and the status of a laptop's open case.
ASSET_TAG = "asset_tag"
LOST_STATUS = "lost_status"
HISTORY_REPORTS = 30
HISTORY_CHANGES = 50
AUDIT_ENTRIES = 50


def optional_column(name: str) -> ColumnElement[Any] | None:
    """`devices.<name>` if the model has it, else None: the hook the list's search and filters use.

    The lost status is not a column of `devices`: it is the status of the case `lost_case_id`
    names (a drill leaves the status alone, so a drill's laptop lists as not lost)."""
    if name == LOST_STATUS:
        return (
            select(LOST_CASES.c.status)
            .where(LOST_CASES.c.id == DEVICES.c.lost_case_id, LOST_CASES.c.drill.is_(False))
            .scalar_subquery()
        )
    return DEVICES.c.get(name)


def _iso(moment: datetime | None) -> str:
    return utc(moment).isoformat(timespec="minutes") if moment else ""


@dataclass(frozen=True)
class Result:
    id: str
    title: str
    cell: Cell
    evidence: str  # JSON, indented: it is for IT to read
    remediation: str


@dataclass(frozen=True)
class Moment:
    at: str
    kind: str  # report | software | audit
    text: str


@dataclass(frozen=True)
class App:
    name: str
    version: str
    publisher: str
    source: str
    standing: str  # approved | blocked | neither | component (only part of the inventory, not judged)
    since: str

    @property
    def unapproved(self) -> bool:
        return self.standing in ("blocked", "neither")


@dataclass(frozen=True)
class SignOff:
    user: str
    full_name: str
    policy_id: str
    policy_version: str
    decision: str
    decided_at: str


@dataclass
class DeviceRecord:
    id: str
    hostname: str
    school: str
    audience: str
    serial: str
    asset_tag: str
    hardware_uuid: str
    manufacturer: str
    model: str
    os: str
    os_version: str
    agent_version: str
    macs: list[str]
    enrolled_at: str
    last_seen: str
    key_replaced_at: str
    identity_collision: str
    lost_status: str
    users: list[str]
    overall: str
    reported_at: str
    results: list[Result] = field(default_factory=list)
    history: list[Moment] = field(default_factory=list)
    software: list[App] = field(default_factory=list)
    software_judged_by: str = ""
    inventory_reported_at: str = ""
    signoffs: list[SignOff] = field(default_factory=list)
    signoff_status: list[SignOffRow] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)

    @property
    def unapproved_apps(self) -> int:
        return sum(app.unapproved for app in self.software)


def find_devices(connection: Connection, host: str) -> list[str]:
    """Ids of the devices whose id or hostname is `host` (the CLI names a laptop either way)."""
    rows = connection.execute(
        select(DEVICES.c.id)
        .where(or_(DEVICES.c.id == host, DEVICES.c.hostname == host))
        .order_by(DEVICES.c.id)
    )
    return list(rows.scalars())


def one_device(connection: Connection, host: str) -> str:
    found = find_devices(connection, host)
    if not found:
        raise CommandError(f"no device with id or hostname {printable(host)!r}")
    if len(found) > 1:
        raise CommandError(
            f"{len(found)} devices are called {printable(host)!r}: give the device id ({', '.join(found)})"
        )
    return found[0]


def _results(stored: Any) -> list[Result]:
    by_id = cells(stored.results if stored else None, stored is not None)
    raw = {str(r.get("id")): r for r in ((stored.results if stored else None) or []) if isinstance(r, dict)}
    shown = []
    for check_id, shown_cell in by_id.items():
        result = raw.get(check_id, {})
        evidence = result.get("evidence")
        shown.append(
            Result(
                id=check_id,
                title=str(result.get("title") or TITLES.get(check_id, check_id)),
                cell=shown_cell,
                evidence=json.dumps(evidence, indent=2, ensure_ascii=False, sort_keys=True)
                if evidence
                else "",
                remediation=str(result.get("remediation") or ""),
            )
        )
    return shown


def _software(connection: Connection, device_id: str, school: str) -> tuple[list[App], str]:
    try:
        requirements, whose = judging_requirements(connection, school)
    except CommandError as exc:
        requirements, whose = Requirements(), str(exc)
    apps = []
    for row in connection.execute(
        select(DEVICE_SOFTWARE)
        .where(DEVICE_SOFTWARE.c.device_id == device_id)
        .order_by(DEVICE_SOFTWARE.c.name, DEVICE_SOFTWARE.c.source)
    ):
        judged = row.judged is not False
        apps.append(
            App(
                name=row.name,
                version=row.version,
                publisher=row.publisher,
                source=row.source,
                standing=standing(requirements, row.name, row.publisher) if judged else "component",
                since=_iso(row.since),
            )
        )
    # Unapproved apps first: they are what IT opens the page for.
    apps.sort(key=lambda app: (not app.unapproved, app.standing == "component", app.name.casefold()))
    return apps, whose


def audit_moment(entry: dict[str, Any]) -> Moment:
    """An audit entry (as `server.trail.audit_entries` gives it) in the timeline."""
    return Moment(
        _iso(datetime.fromisoformat(entry["at"])), "audit", f"{entry['action']} by {entry['actor']}"
    )


def _history(connection: Connection, device_id: str, audit: list[dict[str, Any]]) -> list[Moment]:
    moments: list[tuple[datetime, Moment]] = []
    for report in connection.execute(
        select(REPORTS.c.reported_at, REPORTS.c.overall, REPORTS.c.body)
        .where(REPORTS.c.device_id == device_id)
        .order_by(REPORTS.c.id.desc())
        .limit(HISTORY_REPORTS)
    ):
        body = report.body if isinstance(report.body, dict) else {}
        failed = [
            TITLES.get(str(r.get("id")), str(r.get("id")))
            for r in body.get("results") or []
            if isinstance(r, dict) and r.get("status") == "fail"
        ]
        text = f"report: {report.overall}" + (f" (failing: {', '.join(failed)})" if failed else "")
        moments.append((utc(report.reported_at), Moment(_iso(report.reported_at), "report", text)))
    for change in connection.execute(
        select(SOFTWARE_CHANGES)
        .where(SOFTWARE_CHANGES.c.device_id == device_id)
        .order_by(SOFTWARE_CHANGES.c.id.desc())
        .limit(HISTORY_CHANGES)
    ):
        version = change.version
        if change.change == "changed" and change.previous_version != change.version:
            version = f"{change.previous_version} → {change.version}"
        text = f"software {change.change}: {change.name} {version} ({change.source})"
        moments.append((utc(change.reported_at), Moment(_iso(change.reported_at), "software", text)))
    for entry in audit:
        moments.append((datetime.fromisoformat(entry["at"]), audit_moment(entry)))
    moments.sort(key=lambda item: item[0], reverse=True)
    return [moment for _, moment in moments]


def device_record(connection: Connection, device_id: str) -> DeviceRecord | None:
    row = connection.execute(select(DEVICES).where(DEVICES.c.id == device_id)).first()
    if row is None:
        return None
    stored = connection.execute(
        select(DEVICE_STATUS.c.overall, DEVICE_STATUS.c.reported_at, DEVICE_STATUS.c.results).where(
            DEVICE_STATUS.c.device_id == device_id
        )
    ).first()
    users = sorted(
        connection.execute(select(DEVICE_USERS.c.user).where(DEVICE_USERS.c.device_id == device_id)).scalars()
    )
    inventory_at = connection.execute(
        select(DEVICE_INVENTORY.c.reported_at).where(DEVICE_INVENTORY.c.device_id == device_id)
    ).scalar()
    audit = audit_entries(connection, AUDIT_ENTRIES, device_id)
    software, judged_by = _software(connection, device_id, row.group_name)
    record = DeviceRecord(
        id=row.id,
        hostname=row.hostname,
        school=row.group_name,
        audience=row.audience,
        serial=row.serial or "",
        asset_tag=str(getattr(row, ASSET_TAG, None) or ""),
        hardware_uuid=row.hardware_uuid or "",
        manufacturer=row.manufacturer or "",
        model=row.model or "",
        os=row.os,
        os_version=row.os_version,
        agent_version=row.agent_version,
        macs=[str(mac) for mac in (row.macs or [])],
        enrolled_at=_iso(row.enrolled_at),
        last_seen=_iso(row.last_seen_at) or "never",
        key_replaced_at=_iso(row.key_replaced_at),
        identity_collision=row.identity_collision or "",
        lost_status=str(getattr(row, LOST_STATUS, None) or ""),
        users=users,
        overall=stored.overall if stored else "not reported yet",
        reported_at=_iso(stored.reported_at) if stored else "",
        results=_results(stored),
        history=_history(connection, device_id, audit),
        software=software,
        software_judged_by=judged_by,
        inventory_reported_at=_iso(inventory_at),
        audit=list(reversed(audit)),  # newest first, as the page and the CLI show them
    )
    for signoff in connection.execute(
        select(SIGNOFFS).where(SIGNOFFS.c.device_id == device_id).order_by(SIGNOFFS.c.decided_at.desc())
    ):
        record.signoffs.append(
            SignOff(
                user=signoff.user,
                full_name=signoff.full_name,
                policy_id=signoff.policy_id,
                policy_version=signoff.policy_version,
                decision=signoff.decision,
                decided_at=_iso(signoff.decided_at),
            )
        )
    with Session(bind=connection) as session:
        record.signoff_status = signoff_rows(session, device_ids=[device_id])
    return record
