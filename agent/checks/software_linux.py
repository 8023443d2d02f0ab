"""Software inventory on Linux: dpkg, rpm, flatpak and snap, and which of it is an app.

Each package manager is asked for what it has installed; one that is not
installed is skipped, one that fails is named in the evidence. Everything goes
into the inventory IT receives; only applications are judged:

- dpkg: a package apt marks as manually installed (a person asked for it: apt's
  auto marks in /var/lib/apt/extended_states, apt-mark(8) FILES; a package dpkg
  installed without apt has no mark and is manual, as apt-mark showmanual says),
  or one that ships a desktop entry under /usr/share/applications (dpkg-query -S
  searches dpkg's info/*.list files) and that no installed package needs. A
  package apt installed automatically that something needs belongs to what needs
  it. Each package's Pre-Depends, Depends and Recommends (resolved among installed
  packages, through Provides) are kept, so an approved app's approval covers what
  it needs even when a person installed that first.
- rpm: the packages dnf says a user installed (`dnf repoquery --userinstalled`,
  dnf(8): "Limit the resulting set only to packages installed by user", from
  dnf's history database); without dnf every rpm package is judged, and the
  evidence says why.
- flatpak: apps are judged, runtimes are inventory only (`flatpak list --app` /
  `--runtime`, flatpak-list(1)).
- snap: every snap but the system's own: the `Notes` column of `snap list` names
  base, core, snapd, gadget and kernel snaps (snap's `type`).

Whether a judged item is allowed is decided by `software.decide`, the same on
every OS.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from agent.checks.context import CheckContext
from agent.checks.results import Finding
from agent.checks.software import Inventory, SoftwareItem, decide
from agent.probes import NOT_FOUND, Probes

DPKG_QUERY = ["dpkg-query", "-W", "-f", "${db:Status-Abbrev}\\t${Package}\\t${Version}\\t${Maintainer}\\n"]
DPKG_RELATIONS = [
    "dpkg-query",
    "-W",
    "-f",
    "${db:Status-Abbrev}\\t${Package}\\t${Architecture}\\t${Pre-Depends}\\t${Depends}\\t${Recommends}"
    "\\t${Provides}\\n",
]
DPKG_RELATIONS_ID = "linux.software.dpkg_relations"
# dpkg-query matches the pattern itself (fnmatch over its file lists); `*` crosses `/`, so entries in
# sub-folders (kde4/...) are found too.
DPKG_DESKTOP_ENTRIES = ["dpkg-query", "-S", "/usr/share/applications/*.desktop"]
DPKG_DESKTOP_ENTRIES_ID = "linux.software.dpkg_desktop_entries"
APT_EXTENDED_STATES = "/var/lib/apt/extended_states"
RPM_QUERY = ["rpm", "-qa", "--qf", "%{NAME}\\t%{VERSION}-%{RELEASE}\\t%{VENDOR}\\n"]
# No repository is needed to know what a user installed, and none is reachable offline.
DNF_USERINSTALLED = ["dnf", "-q", "--disablerepo=*", "repoquery", "--userinstalled"]
DNF_USERINSTALLED_ID = "linux.software.dnf_userinstalled"
FLATPAK_LIST = ["flatpak", "list", "--app", "--columns=application,name,version,origin"]
FLATPAK_RUNTIMES = ["flatpak", "list", "--runtime", "--columns=application,name,version,origin"]
FLATPAK_RUNTIMES_ID = "linux.software.flatpak_runtimes"
SNAP_LIST = ["snap", "list"]
SYSTEM_SNAP_NOTES = frozenset({"base", "core", "snapd", "gadget", "kernel"})
MAX_IN_COMMAND = 50
REMEDY = "Remove it with the Software app (GNOME Software, Discover or the Software Manager)."

MANUAL = "manually installed (apt marks it manual)"
NO_MARKS = "judged: apt's auto/manual marks could not be read"
DESKTOP_ENTRY = "ships a desktop entry and nothing installed needs it"
# The same words for every dependency, not "of X, Y": a basis that named who needs a library would
# change whenever another package came to need it, and every such change is a change in the
# inventory IT stores (libc6 would change with every install).
DEPENDENCY = "installed as a dependency (apt marks it auto)"


# --- dpkg ------------------------------------------------------------------------------


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


def parse_extended_states(text: str) -> frozenset[tuple[str, str]]:
    """(package, architecture) of each stanza with `Auto-Installed: 1` in apt's extended_states.

    The file is deb822 stanzas (Package, Architecture, Auto-Installed) separated by blank lines;
    a stanza from before multi-arch has no Architecture and gives "" (any architecture).
    """
    marks: set[tuple[str, str]] = set()
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            key, sep, value = line.partition(":")
            if sep and not line[:1].isspace():
                fields[key.strip().casefold()] = value.strip()
        if fields.get("package") and fields.get("auto-installed") == "1":
            marks.add((fields["package"], fields.get("architecture", "")))
    return frozenset(marks)


def _names_in_relation(field_text: str) -> list[list[str]]:
    """`a (>= 1), b:any | c [amd64]` -> [["a"], ["b", "c"]]: each dependency's alternatives."""
    groups = []
    for clause in field_text.split(","):
        names = []
        for alternative in clause.split("|"):
            name = re.sub(r"\(.*?\)|\[.*?\]|<.*?>", "", alternative).strip().split(":")[0].strip()
            if name:
                names.append(name)
        if names:
            groups.append(names)
    return groups


@dataclass(frozen=True)
class DpkgRelations:
    """What each installed package needs (names of installed packages) and its architecture."""

    needs: dict[str, tuple[str, ...]]
    architecture: dict[str, str]


def parse_relations(text: str) -> DpkgRelations:
    """Lines of DPKG_RELATIONS; each dependency resolved to the installed packages that satisfy it.

    An alternative (`a | b`) or a virtual name (`Provides`) can be satisfied by several installed
    packages: all of them count as needed, so no advice ever names one an app may be using.
    """
    rows = []
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) >= 7 and fields[0].startswith("ii") and fields[1]:
            rows.append(fields)
    installed = {row[1] for row in rows}
    providers: dict[str, set[str]] = {}
    for row in rows:
        for group in _names_in_relation(row[6]):
            for name in group:
                providers.setdefault(name, set()).add(row[1])
    needs: dict[str, tuple[str, ...]] = {}
    architecture: dict[str, str] = {}
    for row in rows:
        found: set[str] = set()
        for group in _names_in_relation(",".join(row[3:6])):
            for name in group:
                if name in installed:
                    found.add(name)
                found |= providers.get(name, set())
        found.discard(row[1])
        needs[row[1]] = tuple(sorted(found))
        architecture[row[1]] = row[2]
    return DpkgRelations(needs, architecture)


def parse_desktop_owners(text: str) -> dict[str, list[str]]:
    """`dpkg-query -S PATTERN` lines (`pkg1, pkg2:amd64: /path`) -> package -> its desktop entries.

    Diversion lines ("diversion by X from: /path", "local diversion …") are not ownership.
    """
    owners: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith(("diversion by ", "local diversion ")):
            continue
        packages, sep, path = line.rpartition(": ")
        if not sep or not path.startswith("/"):
            continue
        for package in packages.split(","):
            name = package.strip().split(":")[0]
            if name:
                owners.setdefault(name, []).append(path.strip())
    return owners


def judge_dpkg(
    packages: list[SoftwareItem],
    auto_marks: frozenset[tuple[str, str]] | None,
    desktop_owners: dict[str, list[str]],
    relations: DpkgRelations,
) -> list[SoftwareItem]:
    """Which dpkg packages are apps. `auto_marks` is None when apt's marks could not be read:
    then every package is judged (as before marks were read) and the evidence says why."""
    needed_by: dict[str, list[str]] = {}
    for package, needs in relations.needs.items():
        for name in needs:
            needed_by.setdefault(name, []).append(package)
    auto_names = {name for name, _arch in auto_marks or ()}
    judged = []
    for item in packages:
        needs = relations.needs.get(item.name, ())
        if auto_marks is None:
            judged.append(replace(item, judged=True, basis=NO_MARKS, needs=needs))
            continue
        # By name: apt records arch:all packages under the native architecture, and one package
        # installed for two architectures with different marks is too rare to split hairs over.
        auto = item.name in auto_names
        needed = bool(needed_by.get(item.name))
        if not auto:
            judged.append(replace(item, judged=True, basis=MANUAL, needs=needs))
        elif item.name in desktop_owners and not needed:
            judged.append(replace(item, judged=True, basis=DESKTOP_ENTRY, needs=needs))
        else:
            judged.append(replace(item, judged=False, basis=DEPENDENCY, needs=needs))
    return judged


def dpkg_inventory(probes: Probes, packages: list[SoftwareItem], problems: list[str]) -> list[SoftwareItem]:
    """Marks, desktop entries and relations added to what dpkg lists."""
    marks_file = probes.read_file(APT_EXTENDED_STATES)
    auto_marks: frozenset[tuple[str, str]] | None
    if marks_file.text is not None:
        auto_marks = parse_extended_states(marks_file.text)
    elif marks_file.error == NOT_FOUND:
        auto_marks = frozenset()  # apt never marked anything automatic (or dpkg alone installs here)
    else:
        auto_marks = None
        problems.append(f"{APT_EXTENDED_STATES}: {marks_file.error}; every dpkg package is judged")
    entries = probes.run(DPKG_DESKTOP_ENTRIES, timeout=60.0, probe_id=DPKG_DESKTOP_ENTRIES_ID)
    owners: dict[str, list[str]] = {}
    if entries.ok or (entries.exit_code == 1 and "no path found" in entries.stderr):
        owners = parse_desktop_owners(entries.stdout)
    else:
        problems.append(f"desktop entries: {entries.describe()}")
    relations_out = probes.run(DPKG_RELATIONS, timeout=60.0, probe_id=DPKG_RELATIONS_ID)
    relations = DpkgRelations({}, {})
    if relations_out.ok:
        relations = parse_relations(relations_out.stdout)
    else:
        problems.append(f"dpkg dependencies: {relations_out.describe()}")
    return judge_dpkg(packages, auto_marks, owners, relations)


# --- rpm -------------------------------------------------------------------------------


def parse_rpm(text: str) -> list[SoftwareItem]:
    items = []
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) >= 2 and fields[0]:
            vendor = fields[2] if len(fields) > 2 and fields[2] != "(none)" else ""
            items.append(SoftwareItem(fields[0], fields[1], vendor, "rpm"))
    return items


def parse_dnf_userinstalled(text: str) -> frozenset[str]:
    """Package names from `dnf repoquery --userinstalled`: one NEVRA a line.

    NEVRA is `name-[epoch:]version-release.arch`; a name may hold hyphens, version and release do not.
    """
    names = set()
    for line in text.splitlines():
        nevra = line.strip()
        if not nevra or " " in nevra or nevra.count("-") < 2:
            continue
        name = nevra.rsplit(".", 1)[0].rsplit("-", 2)[0]
        if name:
            names.add(name)
    return frozenset(names)


def rpm_inventory(probes: Probes, packages: list[SoftwareItem], problems: list[str]) -> list[SoftwareItem]:
    out = probes.run(DNF_USERINSTALLED, timeout=60.0, probe_id=DNF_USERINSTALLED_ID)
    if not out.ok:
        problems.append(
            f"dnf (which rpm packages a user installed): {out.describe()}; every rpm package is judged"
        )
        return [
            replace(item, judged=True, basis="judged: no record of what a user installed")
            for item in packages
        ]
    chosen = parse_dnf_userinstalled(out.stdout)
    return [
        replace(item, judged=True, basis="installed by a user (dnf)")
        if item.name in chosen
        else replace(item, judged=False, basis="installed as a dependency (dnf)")
        for item in packages
    ]


# --- flatpak and snap ----------------------------------------------------------------


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


def flatpak_apps(text: str) -> list[SoftwareItem]:
    return [replace(item, judged=True, basis="flatpak app") for item in parse_flatpak(text)]


def flatpak_runtimes(text: str) -> list[SoftwareItem]:
    return [replace(item, judged=False, basis="flatpak runtime") for item in parse_flatpak(text)]


def parse_snap(text: str) -> list[SoftwareItem]:
    """`snap list`: a header row (Name Version Rev Tracking Publisher Notes), then columns split by spaces.

    Base, core, snapd, gadget and kernel snaps (named in Notes) are the system's: inventory only.
    """
    items = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 5:
            publisher = fields[4].rstrip("✓*").rstrip("*")
            notes = set(fields[5].split(",")) if len(fields) > 5 else set()
            system = notes & SYSTEM_SNAP_NOTES
            if system:
                items.append(
                    SoftwareItem(fields[0], fields[1], publisher, "snap", False, f"{min(system)} snap")
                )
            else:
                items.append(SoftwareItem(fields[0], fields[1], publisher, "snap", True, "snap"))
    return items


# --- the inventory -------------------------------------------------------------------

Source = tuple[str, list[str], Callable[[str], list[SoftwareItem]]]
SOURCES: tuple[Source, ...] = (
    ("dpkg", DPKG_QUERY, parse_dpkg),
    ("rpm", RPM_QUERY, parse_rpm),
    ("flatpak", FLATPAK_LIST, flatpak_apps),
    ("snap", SNAP_LIST, parse_snap),
)


def inventory(ctx: CheckContext) -> Inventory:
    """Everything installed, each item marked judged (an app) or not. Callable on its own: the report
    carries it whole, and the install watcher re-runs it."""
    probes = ctx.probes
    items: list[SoftwareItem] = []
    read: list[str] = []
    problems: list[str] = []
    for name, argv, parse in SOURCES:
        out = probes.run(argv, timeout=60.0)
        if out.missing:
            continue
        if not out.ok:
            problems.append(f"{name}: {out.describe()}")
            continue
        read.append(name)
        found = parse(out.stdout)
        if name == "dpkg":
            found = dpkg_inventory(probes, found, problems)
        elif name == "rpm":
            found = rpm_inventory(probes, found, problems)
        elif name == "flatpak":
            runtimes = probes.run(FLATPAK_RUNTIMES, timeout=60.0, probe_id=FLATPAK_RUNTIMES_ID)
            if runtimes.ok:
                found += flatpak_runtimes(runtimes.stdout)
            else:
                problems.append(f"flatpak runtimes: {runtimes.describe()}")
        items.extend(found)
    return Inventory(tuple(items), tuple(read), tuple(problems))


def apt_remove_command(unapproved: list[SoftwareItem]) -> str | None:
    """IT's command for the unapproved dpkg apps. `software.decide` never passes it a package an
    approved app needs, so apt cannot take an approved app away with it."""
    names = sorted({item.name for item in unapproved if item.source == "dpkg"})[:MAX_IN_COMMAND]
    return f"sudo apt-get remove {' '.join(names)}" if names else None


def check(ctx: CheckContext) -> Finding:
    return decide(inventory(ctx), ctx, REMEDY, apt_remove_command)
