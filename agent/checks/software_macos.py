"""Authorised software on macOS: the app bundles in /Applications.

A Mac app is a folder `Name.app` whose `Contents/Info.plist` names it. Apps the
district hands out and apps a student drags in both land in /Applications, and
vendors with several apps put them one folder deeper (e.g. "/Applications/Adobe
Photoshop 2025/Adobe Photoshop 2025.app"), so one level of sub-folder is read
as well. Apple's own apps live on the sealed system volume (/System/Applications)
and are not the student's choice, so they are not listed.
"""

from __future__ import annotations

from typing import Any

from agent.checks.context import CheckContext
from agent.checks.results import Finding
from agent.checks.software import Inventory, SoftwareItem, decide
from agent.probes import Probes
from agent.probes.macos import read_plist

APPLICATIONS = "/Applications"
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


def app_paths(probes: Probes, problems: list[str]) -> tuple[list[str], bool]:
    """Every .app in /Applications and one folder below; the flag says whether /Applications was read."""
    top = probes.list_dir(APPLICATIONS)
    if top.error:
        problems.append(f"{APPLICATIONS}: {top.error}")
        return [], False
    found: list[str] = []
    for entry in top.entries:
        path = f"{APPLICATIONS}/{entry}"
        if is_app_bundle(entry):
            found.append(path)
        elif may_hold_apps(entry):
            inner = probes.list_dir(path)
            # Files in /Applications (e.g. aliases) also answer with an error here: nothing to list.
            found.extend(f"{path}/{name}" for name in inner.entries if is_app_bundle(name))
    return found[:MAX_APPS], True


def read_app(probes: Probes, app_path: str, problems: list[str]) -> SoftwareItem:
    info = read_plist(probes, f"{app_path}/Contents/Info.plist")
    if info.data is None:
        # An app without a readable Info.plist is still installed: list it under its folder name.
        problems.append(f"{app_path}: Info.plist {info.error}")
        return SoftwareItem(name=bundle_display_name(app_path), source=app_path)
    return app_from_info_plist(app_path, info.data)


def inventory(ctx: CheckContext) -> Inventory:
    problems: list[str] = []
    paths, listed = app_paths(ctx.probes, problems)
    items = tuple(read_app(ctx.probes, path, problems) for path in paths)
    return Inventory(items, (APPLICATIONS,) if listed else (), tuple(problems))


def check(ctx: CheckContext) -> Finding:
    return decide(inventory(ctx), ctx, REMOVAL_HINT)
