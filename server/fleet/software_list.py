"""The district's apps as IT reads them (`homeroom-server software`): what to approve next.

One row per app (name and publisher) across the laptops' current inventories: the versions seen,
how many laptops have it, and where it stands under the published requirements, judged by the same
rule the laptops apply (`contract.software_rules`). Items an agent marked as only part of the full
inventory (`judged` false: a library, runtime or update an app brought with it) are not apps and
are left out; agents from before the flag judged every item they sent, and so are listed.

Without `--group` the district-wide requirements judge; with it, that group's laptops and the
requirements its laptops receive (its own copy, else the district-wide one).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass

from sqlalchemy import Connection, distinct, func, or_, select, union

from contract.errors import ConfigError
from contract.requirements import Requirements, requirements_from_text
from contract.software_rules import Standing, standing
from server.db.tables import DEVICE_SOFTWARE, DEVICES, ENROLMENT_TOKENS, POLICIES, REQUIREMENTS
from server.errors import CommandError
from server.fleet.spreadsheet import spreadsheet_safe
from server.terminal import cell, printable


@dataclass(frozen=True)
class AppRow:
    name: str
    publisher: str
    versions: tuple[str, ...]
    laptops: int
    status: Standing


@dataclass(frozen=True)
class AppList:
    rows: list[AppRow]
    judged_by: str  # whose requirements decided the status, in words


def known_groups(connection: Connection) -> list[str]:
    """Groups named by a device, an enrolment token or something published for them."""
    names = connection.execute(
        union(
            select(DEVICES.c.group_name),
            select(ENROLMENT_TOKENS.c.group_name),
            select(REQUIREMENTS.c.group_name),
            select(POLICIES.c.group_name),
        )
    ).scalars()
    return sorted(name for name in names if name)


def judging_requirements(connection: Connection, group: str | None) -> tuple[Requirements, str]:
    """The requirements a group's laptops receive (its own, else the district-wide copy), and whose."""
    docs = {
        row.group_name: row.content
        for row in connection.execute(
            select(REQUIREMENTS.c.group_name, REQUIREMENTS.c.content).where(
                REQUIREMENTS.c.group_name.in_([group or "", ""])
            )
        )
    }
    if group and group in docs:
        whose, content = f"the requirements published for {group}", docs[group]
    elif "" in docs:
        whose, content = "the district-wide requirements", docs[""]
    else:
        return Requirements(), "no published requirements (nothing is approved or blocked yet)"
    try:
        return requirements_from_text(whose, content), whose
    except ConfigError as exc:
        raise CommandError(f"{whose} cannot be read any more: {exc}; publish them again") from None


def app_list(connection: Connection, group: str | None = None, unapproved: bool = False) -> AppList:
    if group is not None:
        groups = known_groups(connection)
        if group not in groups:
            known = ", ".join(repr(name) for name in groups) or "none yet"
            raise CommandError(
                f"no group named {group!r} (known groups: {known}); groups come from "
                "`homeroom-server token create --group NAME`"
            )
    requirements, whose = judging_requirements(connection, group)
    is_app = or_(DEVICE_SOFTWARE.c.judged.is_(None), DEVICE_SOFTWARE.c.judged.is_(True))
    where = [is_app]
    if group is not None:
        where.append(
            DEVICE_SOFTWARE.c.device_id.in_(select(DEVICES.c.id).where(DEVICES.c.group_name == group))
        )
    name, publisher = DEVICE_SOFTWARE.c.name, DEVICE_SOFTWARE.c.publisher
    laptops = {
        (row.name, row.publisher): int(row.laptops)
        for row in connection.execute(
            select(name, publisher, func.count(distinct(DEVICE_SOFTWARE.c.device_id)).label("laptops"))
            .where(*where)
            .group_by(name, publisher)
        )
    }
    versions: dict[tuple[str, str], list[str]] = {}
    for row in connection.execute(
        select(name, publisher, DEVICE_SOFTWARE.c.version).where(*where).distinct()
    ):
        versions.setdefault((row.name, row.publisher), []).append(row.version)
    rows = []
    for (app_name, app_publisher), count in laptops.items():
        status = standing(requirements, app_name, app_publisher)
        if unapproved and status == "approved":
            continue
        found = tuple(sorted(versions.get((app_name, app_publisher), [])))
        rows.append(AppRow(app_name, app_publisher, found, count, status))
    rows.sort(key=lambda row: (-row.laptops, row.name.casefold(), row.name, row.publisher))
    return AppList(rows, whose)


def as_json(listed: AppList) -> dict[str, object]:
    return {
        "judged_by": listed.judged_by,
        "apps": [{**asdict(row), "versions": list(row.versions)} for row in listed.rows],
    }


def as_csv(listed: AppList) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["name", "publisher", "versions", "laptops", "status"])
    for row in listed.rows:
        values = (row.name, row.publisher, " ".join(row.versions), row.laptops, row.status)
        writer.writerow([spreadsheet_safe(value) for value in values])
    return out.getvalue()


def as_table(listed: AppList) -> str:
    if not listed.rows:
        return "No apps in the laptops' inventories yet (they arrive with each laptop's next report).\n"
    lines = [f"{'NAME':<32} {'PUBLISHER':<28} {'LAPTOPS':>7} {'STATUS':<9} VERSIONS"]
    for row in listed.rows:
        versions = ", ".join(row.versions)
        lines.append(
            f"{cell(row.name, 32)} {cell(row.publisher, 28)} {row.laptops:>7} {row.status:<9} "
            f"{printable(versions)[:80]}"
        )
    counts = {status: sum(row.status == status for row in listed.rows) for status in ("approved", "blocked")}
    neither = len(listed.rows) - counts["approved"] - counts["blocked"]
    lines.append(
        f"\n{len(listed.rows)} apps: {counts['approved']} approved, {counts['blocked']} blocked, "
        f"{neither} neither (judged by {listed.judged_by})."
    )
    return "\n".join(lines) + "\n"


def render(shown: AppList, output: str) -> str:
    """As `output` says: "json", "csv" (spreadsheet-safe) or "table" (terminal-safe)."""
    if output == "json":
        return json.dumps(as_json(shown), indent=2) + "\n"
    return as_csv(shown) if output == "csv" else as_table(shown)
