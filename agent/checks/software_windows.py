r"""Authorised software on Windows: the programs listed in Settings → Apps, from the Uninstall keys.

Installers register each program under an Uninstall key (Microsoft Learn, "Uninstall Registry
Key"): 64-bit machine-wide ones under HKLM\SOFTWARE, 32-bit ones under HKLM\SOFTWARE\WOW6432Node
(Microsoft Learn, "Registry Keys Affected by WOW64"), and per-user ones in each user's own hive.
The service runs as SYSTEM, whose HKCU is not any student's, so every loaded user hive is read:
HKU\<SID>\Software\Microsoft\Windows\CurrentVersion\Uninstall for each account SID under
HKU (HKCU\Software is not split by WOW64, so one per-user key holds 32- and 64-bit installs).
HKU holds a hive only while its user is signed in (or a service has it loaded); a profile
listed in ProfileList whose hive is not loaded is named in the evidence, not guessed at.

Every entry with a DisplayName goes into the inventory for IT. Only programs are judged: an
entry with SystemComponent = 1 is hidden from Apps by Windows itself (a part of another
product), and one with ParentKeyName is an update or patch of another entry.
"""

from __future__ import annotations

import re
from typing import Any

from agent.checks import software
from agent.checks.context import CheckContext
from agent.checks.results import Finding
from agent.checks.software import Inventory, SoftwareItem
from agent.probes import RegistryKey

UNINSTALL = "Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall"
MACHINE_ROOTS = (
    "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall",
    "HKLM\\SOFTWARE\\WOW6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall",
)
USERS = "HKU"
PROFILE_LIST = "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\ProfileList"
# People's accounts: local and domain (S-1-5-21-…), Microsoft Entra ID (S-1-12-1-…). Not .DEFAULT,
# the service accounts (S-1-5-18, -19, -20) or the `<SID>_Classes` hives of file associations.
ACCOUNT_SID = re.compile(r"^S-1-(5-21|12-1)(-\d+)+$", re.IGNORECASE)
REMOVAL_HINT = "To remove a program: Settings → Apps → Installed apps → … → Uninstall."


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def is_listed_program(values: dict[str, Any]) -> bool:
    """Whether Settings → Apps lists the entry as a program of its own."""
    return bool(_text(values.get("DisplayName"))) and not why_not_judged(values)


def why_not_judged(values: dict[str, Any]) -> str:
    """ "" for a program; else what the entry is (a hidden component, an update of another entry)."""
    if str(values.get("SystemComponent", "0")).strip() == "1":
        return "system component (Windows hides it from Apps)"
    parent = _text(values.get("ParentKeyName"))
    if parent:
        return f"update of {parent}"
    return ""


def item_from_entry(entry: RegistryKey) -> SoftwareItem | None:
    """The inventory item an Uninstall subkey describes (judged only when it is a program), or
    None when it names nothing."""
    name = _text(entry.values.get("DisplayName"))
    if entry.error or not name:
        return None
    reason = why_not_judged(entry.values)
    return SoftwareItem(
        name=name,
        version=_text(entry.values.get("DisplayVersion")),
        publisher=_text(entry.values.get("Publisher")),
        source=entry.path,
        judged=not reason,
        basis=reason or "listed in Settings → Apps",
    )


def user_uninstall_roots(users: RegistryKey) -> list[str]:
    """The per-user Uninstall key of each account hive loaded under HKU."""
    return [f"{USERS}\\{sid}\\{UNINSTALL}" for sid in users.subkeys if ACCOUNT_SID.match(sid)]


def profiles_not_loaded(users: RegistryKey, profiles: RegistryKey) -> list[str]:
    """Account profiles on the laptop whose hive is not in HKU now: their own installs are unseen."""
    loaded = {sid.casefold() for sid in users.subkeys}
    return [sid for sid in profiles.subkeys if ACCOUNT_SID.match(sid) and sid.casefold() not in loaded]


def build_inventory(
    roots: list[RegistryKey], entries: dict[str, list[RegistryKey]], notes: tuple[str, ...] = ()
) -> Inventory:
    """`entries` maps each root path to its subkeys as read. A root that does not exist is read and empty."""
    items: list[SoftwareItem] = []
    sources: list[str] = []
    problems: list[str] = list(notes)
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
    """Everything in the Uninstall keys (machine-wide, 32- and 64-bit, every loaded user hive), each
    item marked judged or not. Callable on its own: the report carries it, the watcher re-runs it."""
    probes = ctx.probes
    users = probes.registry_key(USERS)
    notes: list[str] = []
    if users.error:
        notes.append(f"{USERS}: {users.error}; no user's own installs were read")
    else:
        profiles = probes.registry_key(PROFILE_LIST)
        for sid in profiles_not_loaded(users, profiles):
            notes.append(
                f"{USERS}\\{sid}: not loaded (the user is not signed in); their own installs are not read"
            )
    paths = [*MACHINE_ROOTS, *user_uninstall_roots(users)]
    roots = [probes.registry_key(path) for path in paths]
    entries = {
        root.path: [probes.registry_key(f"{root.path}\\{sub}") for sub in root.subkeys]
        for root in roots
        if not root.error
    }
    return build_inventory(roots, entries, tuple(notes))


def check(ctx: CheckContext) -> Finding:
    return software.decide(inventory(ctx), ctx, REMOVAL_HINT)
