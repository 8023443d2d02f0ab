"""Authorised software on Windows: the programs listed in Settings → Apps, from the Uninstall keys.

Installers register each program under an Uninstall key: 64-bit and
machine-wide ones under HKLM, 32-bit ones under WOW6432Node, per-user ones
under HKCU. An entry without DisplayName, or with SystemComponent = 1, is
hidden from Apps by Windows itself, and one with ParentKeyName is an update
of another entry, so neither counts as a program. Whether an item is allowed
is decided in `agent.checks.software`.
"""

from __future__ import annotations

from typing import Any

from agent.checks import software
from agent.checks.context import CheckContext
from agent.checks.results import Finding
from agent.checks.software import Inventory, SoftwareItem
from agent.probes import RegistryKey

UNINSTALL_ROOTS = (
    "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall",
    "HKLM\\SOFTWARE\\WOW6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall",
    "HKCU\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall",
)
REMOVAL_HINT = "To remove a program: Settings → Apps → Installed apps → … → Uninstall."


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def is_listed_program(values: dict[str, Any]) -> bool:
    if not _text(values.get("DisplayName")):
        return False
    if str(values.get("SystemComponent", "0")).strip() == "1":
        return False
    return not _text(values.get("ParentKeyName"))


def item_from_entry(entry: RegistryKey) -> SoftwareItem | None:
    """The program an Uninstall subkey describes, or None when Windows does not list it as one."""
    if entry.error or not is_listed_program(entry.values):
        return None
    return SoftwareItem(
        name=_text(entry.values.get("DisplayName")),
        version=_text(entry.values.get("DisplayVersion")),
        publisher=_text(entry.values.get("Publisher")),
        source=entry.path,
    )


def build_inventory(roots: list[RegistryKey], entries: dict[str, list[RegistryKey]]) -> Inventory:
    """`entries` maps each root path to its subkeys as read. A root that does not exist is read and empty."""
    items: list[SoftwareItem] = []
    sources: list[str] = []
    problems: list[str] = []
    for root in roots:
        if root.error and not root.missing:
            problems.append(f"{root.path}: {root.error}")
            continue
        sources.append(root.path)
        for entry in entries.get(root.path, []):
            if entry.error:
                problems.append(f"{entry.path}: {entry.error}")
                continue
            item = item_from_entry(entry)
            if item is not None:
                items.append(item)
    return Inventory(tuple(items), tuple(sources), tuple(problems))


def inventory(ctx: CheckContext) -> Inventory:
    roots = [ctx.probes.registry_key(path) for path in UNINSTALL_ROOTS]
    entries = {
        root.path: [ctx.probes.registry_key(f"{root.path}\\{sub}") for sub in root.subkeys]
        for root in roots
        if not root.error
    }
    return build_inventory(roots, entries)


def check(ctx: CheckContext) -> Finding:
    return software.decide(inventory(ctx), ctx, REMOVAL_HINT)
