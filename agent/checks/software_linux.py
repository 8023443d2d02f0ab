"""Software inventory on Linux: dpkg, rpm, flatpak and snap.

Each package manager is asked for what it has installed; one that is not
installed is skipped, one that fails is named in the evidence. Whether an
item is allowed is decided by `software.decide`, the same on every OS.
"""

from __future__ import annotations

from collections.abc import Callable

from agent.checks.context import CheckContext
from agent.checks.results import Finding
from agent.checks.software import Inventory, SoftwareItem, decide

DPKG_QUERY = ["dpkg-query", "-W", "-f", "${db:Status-Abbrev}\\t${Package}\\t${Version}\\t${Maintainer}\\n"]
RPM_QUERY = ["rpm", "-qa", "--qf", "%{NAME}\\t%{VERSION}-%{RELEASE}\\t%{VENDOR}\\n"]
FLATPAK_LIST = ["flatpak", "list", "--app", "--columns=application,name,version,origin"]
SNAP_LIST = ["snap", "list"]
REMEDY = "Remove it with the Software app (GNOME Software, Discover or the Software Manager)."


def parse_dpkg(text: str) -> list[SoftwareItem]:
    """Lines of `dpkg-query -W -f '${db:Status-Abbrev}\\t${Package}\\t${Version}\\t${Maintainer}\\n'`.

    Only "ii" (desired install, installed) counts: removed packages leave "rc" config behind.
    """
    items = []
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) < 3 or not fields[0].startswith("ii"):
            continue
        maintainer = fields[3] if len(fields) > 3 else ""
        items.append(SoftwareItem(fields[1], fields[2], maintainer, "dpkg"))
    return items


def parse_rpm(text: str) -> list[SoftwareItem]:
    items = []
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) >= 2 and fields[0]:
            vendor = fields[2] if len(fields) > 2 and fields[2] != "(none)" else ""
            items.append(SoftwareItem(fields[0], fields[1], vendor, "rpm"))
    return items


def parse_flatpak(text: str) -> list[SoftwareItem]:
    """`flatpak list --app --columns=application,name,version,origin`.

    Tab-separated; flatpak prints a header row only on a terminal.
    """
    items = []
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) < 2 or fields[0] in {"Application ID", "Application"}:
            continue
        version = fields[2] if len(fields) > 2 else ""
        origin = fields[3] if len(fields) > 3 else ""
        items.append(SoftwareItem(fields[1] or fields[0], version, origin, f"flatpak:{fields[0]}"))
    return items


def parse_snap(text: str) -> list[SoftwareItem]:
    """`snap list`: a header row (Name Version Rev Tracking Publisher Notes), then columns split by spaces."""
    items = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 5:
            publisher = fields[4].rstrip("✓*").rstrip("*")
            items.append(SoftwareItem(fields[0], fields[1], publisher, "snap"))
    return items


SOURCES: tuple[tuple[str, list[str], Callable[[str], list[SoftwareItem]]], ...] = (
    ("dpkg", DPKG_QUERY, parse_dpkg),
    ("rpm", RPM_QUERY, parse_rpm),
    ("flatpak", FLATPAK_LIST, parse_flatpak),
    ("snap", SNAP_LIST, parse_snap),
)


def inventory(ctx: CheckContext) -> Inventory:
    items: list[SoftwareItem] = []
    read: list[str] = []
    problems: list[str] = []
    for name, argv, parse in SOURCES:
        out = ctx.probes.run(argv, timeout=60.0)
        if out.missing:
            continue
        if not out.ok:
            problems.append(f"{name}: {out.describe()}")
            continue
        read.append(name)
        items.extend(parse(out.stdout))
    return Inventory(tuple(items), tuple(read), tuple(problems))


def check(ctx: CheckContext) -> Finding:
    return decide(inventory(ctx), ctx, REMEDY)
