"""Authorised software on macOS: app bundles, and the package receipts of what is not one.

A Mac app is a folder `Name.app` whose `Contents/Info.plist` names it. Apps the district hands out
and apps a student drags in land in /Applications, or in a user's own ~/Applications (which needs
no administrator, and where Chrome puts its web apps); vendors with several apps put them one
folder deeper (e.g. "/Applications/Adobe Photoshop 2025/Adobe Photoshop 2025.app"), so one level of
sub-folder is read in each. Apple's own apps live on the sealed system volume (/System/Applications)
and are not the student's choice, so they are not listed.

Software installed by an Installer package that is not an app bundle (a driver, a command-line
tool, a VPN's system extension) is seen through its receipt: `pkgutil --pkgs` lists the receipt
database, and `pkgutil --pkg-info-plist ID` gives each one's version (pkgutil(1): "Always use
pkgutil to query" the receipts, whose files in /var/db/receipts "are subject to change"). Every
receipt is in the inventory; one is judged only when no app bundle of the same vendor (the first two
parts of its reverse-DNS id, as Office's com.microsoft.package.* receipts and Word's com.microsoft.Word)
was found, and never Apple's own (com.apple.*: the OS, its updates and Apple's tools).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from agent.checks.context import CheckContext
from agent.checks.results import Finding
from agent.checks.software import Inventory, SoftwareItem, decide
from agent.probes import NOT_FOUND, DirListing, Probes
from agent.probes.macos import parse_plist, read_plist

APPLICATIONS = "/Applications"
USERS = "/Users"
NOT_HOMES = frozenset({"Shared", "Guest"})
PKGUTIL_PKGS = ["pkgutil", "--pkgs"]
PKGUTIL_PKGS_ID = "macos.software.receipts"
MAX_RECEIPTS = 500  # one pkgutil call each; a Mac has a few hundred at most, mostly Apple's
REMOVAL_HINT = "To remove an app, open Finder → Applications and drag it to the Bin, then empty the Bin."
MAX_APPS = 2000  # bounds the probes on a Mac someone has filled with thousands of bundles


# --- the inventory -------------------------------------------------------------------


def publisher_from_bundle_id(bundle_id: str) -> str:
    """The reverse-DNS owner of a bundle id ("com.google.Chrome" -> "com.google"): a publisher hint."""
    parts = [part for part in bundle_id.strip().split(".") if part]
    return ".".join(parts[:2]) if len(parts) >= 2 else ".".join(parts)


def bundle_display_name(app_path: str) -> str:
    """The name Finder shows when the Info.plist gives none: the folder name without `.app`."""
    name = app_path.rstrip("/").rsplit("/", 1)[-1]
    return name[: -len(".app")] if name.lower().endswith(".app") else name


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def app_from_info_plist(app_path: str, info: dict[str, Any]) -> SoftwareItem:
    name = (
        _text(info.get("CFBundleDisplayName"))
        or _text(info.get("CFBundleName"))
        or bundle_display_name(app_path)
    )
    version = _text(info.get("CFBundleShortVersionString")) or _text(info.get("CFBundleVersion"))
    publisher = publisher_from_bundle_id(_text(info.get("CFBundleIdentifier")))
    return SoftwareItem(name=name, version=version, publisher=publisher, source=app_path)


def is_app_bundle(entry: str) -> bool:
    return entry.lower().endswith(".app") and not entry.startswith(".")


def may_hold_apps(entry: str) -> bool:
    """Any visible entry that is not an app may be a vendor folder; hidden ones (`.localized`) never are."""
    return not entry.startswith(".") and not entry.lower().endswith(".app")


def app_paths(
    probes: Probes, problems: list[str], root: str = APPLICATIONS, absent_ok: bool = False
) -> tuple[list[str], bool]:
    """Every .app in `root` and one folder below; the flag says whether `root` was read.
    `absent_ok`: a folder that does not exist (most users have no ~/Applications) is no problem."""
    top = probes.list_dir(root)
    if top.error:
        if not (absent_ok and top.error == NOT_FOUND):
            problems.append(f"{root}: {top.error}")
        return [], False
    found: list[str] = []
    for entry in top.entries:
        path = f"{root}/{entry}"
        if is_app_bundle(entry):
            found.append(path)
        elif may_hold_apps(entry):
            inner = probes.list_dir(path)
            # Files in /Applications (e.g. aliases) also answer with an error here: nothing to list.
            found.extend(f"{path}/{name}" for name in inner.entries if is_app_bundle(name))
    return found[:MAX_APPS], True


def user_application_folders(users: DirListing) -> list[str]:
    """~/Applications of each account folder in /Users (not Shared, Guest or hidden entries)."""
    return [
        f"{USERS}/{name}/Applications"
        for name in users.entries
        if not name.startswith(".") and name not in NOT_HOMES
    ]


def read_app(probes: Probes, app_path: str, problems: list[str]) -> SoftwareItem:
    info = read_plist(probes, f"{app_path}/Contents/Info.plist")
    if info.data is None:
        # An app without a readable Info.plist is still installed: list it under its folder name.
        problems.append(f"{app_path}: Info.plist {info.error}")
        return SoftwareItem(name=bundle_display_name(app_path), source=app_path)
    return app_from_info_plist(app_path, info.data)


def receipt_info_argv(package_id: str) -> list[str]:
    return ["pkgutil", "--pkg-info-plist", package_id]


def parse_receipt_ids(text: str) -> list[str]:
    """`pkgutil --pkgs`: one package id a line."""
    return [line.strip() for line in text.splitlines() if line.strip() and " " not in line.strip()]


def vendor_of(identifier: str) -> str:
    return publisher_from_bundle_id(identifier).casefold()


def receipt_item(package_id: str, info: dict[str, Any] | None, app_vendors: frozenset[str]) -> SoftwareItem:
    """A receipt as an inventory item, judged when no app bundle of its vendor accounts for it."""
    version = _text((info or {}).get("pkg-version"))
    source = f"pkgutil:{package_id}"
    publisher = publisher_from_bundle_id(package_id)
    if package_id.casefold().startswith("com.apple."):
        return SoftwareItem(package_id, version, publisher, source, False, "Apple's own package")
    if vendor_of(package_id) in app_vendors:
        return SoftwareItem(
            package_id, version, publisher, source, False, "installed with an app bundle of its vendor"
        )
    return SoftwareItem(package_id, version, publisher, source, True, "package receipt (no app bundle)")


def receipts(
    probes: Probes, app_vendors: frozenset[str], problems: list[str]
) -> tuple[list[SoftwareItem], bool]:
    listed = probes.run(PKGUTIL_PKGS, timeout=30.0, probe_id=PKGUTIL_PKGS_ID)
    if not listed.ok:
        problems.append(f"package receipts: {listed.describe()}")
        return [], False
    items = []
    for package_id in parse_receipt_ids(listed.stdout)[:MAX_RECEIPTS]:
        info: dict[str, Any] | None = None
        if not package_id.casefold().startswith("com.apple."):  # Apple's need no version: never judged
            out = probes.run(receipt_info_argv(package_id), timeout=15.0)
            info = parse_plist(out.stdout) if out.ok else None
        items.append(receipt_item(package_id, info, app_vendors))
    return items, True


def inventory(ctx: CheckContext) -> Inventory:
    """App bundles (judged) in /Applications and every user's ~/Applications, and package receipts
    (judged when no app bundle accounts for them). Callable on its own: the report carries it, the
    install watcher re-runs it."""
    problems: list[str] = []
    sources: list[str] = []
    paths, listed = app_paths(ctx.probes, problems)
    if listed:
        sources.append(APPLICATIONS)
    homes = ctx.probes.list_dir(USERS)
    if homes.error:
        problems.append(f"{USERS}: {homes.error}; no user's own apps were read")
    for folder in user_application_folders(homes):
        found, read = app_paths(ctx.probes, problems, folder, absent_ok=True)
        paths += found
        if read:
            sources.append(folder)
    apps = [replace(read_app(ctx.probes, path, problems), basis="app bundle") for path in paths[:MAX_APPS]]
    vendors = frozenset(item.publisher.casefold() for item in apps if "." in item.publisher)
    packages, read_receipts = receipts(ctx.probes, vendors, problems)
    if read_receipts:
        sources.append("pkgutil")
    return Inventory(tuple(apps + packages), tuple(sources), tuple(problems))


def check(ctx: CheckContext) -> Finding:
    return decide(inventory(ctx), ctx, REMOVAL_HINT)
