"""macOS: every user's ~/Applications, and package receipts for software that is not an app bundle.

Recorded answers: the Info.plist files and pkgutil outputs in tests/fixtures/macos (README.md there
says the format source of each); /Users holds what a Mac's does (`.localized`, `Shared`, one folder
per account).
"""

from __future__ import annotations

import plistlib

from agent.checks import software_macos as software
from agent.checks.results import Status
from agent.probes import NOT_FOUND
from contract.requirements import Requirements, SoftwareRule
from tests.helpers.recorded import Recorded, fixture

WORD = "/Applications/Microsoft Word.app"
ZOOM = "/Applications/zoom.us.app"
ADA_APPS = "/Users/ada/Applications"
WEB_APPS = f"{ADA_APPS}/Chrome Apps.localized"
MINECRAFT = f"{ADA_APPS}/Minecraft.app"


def _info(name: str, identifier: str, version: str) -> str:
    return plistlib.dumps(
        {"CFBundleName": name, "CFBundleIdentifier": identifier, "CFBundleShortVersionString": version}
    ).decode()


def mac() -> Recorded:
    recorded = (
        Recorded()
        .directory("/Applications", [".localized", "Microsoft Word.app", "zoom.us.app"])
        .file(f"{WORD}/Contents/Info.plist", _info("Microsoft Word", "com.microsoft.Word", "16.91"))
        .file(f"{ZOOM}/Contents/Info.plist", _info("zoom.us", "us.zoom.xos", "6.2.11"))
        .directory("/Users", [".localized", "Shared", "ada", "ben"])
        .directory(ADA_APPS, ["Chrome Apps.localized", "Minecraft.app"])
        .directory(WEB_APPS, [])
        .file(f"{MINECRAFT}/Contents/Info.plist", _info("Minecraft", "com.mojang.minecraftlauncher", "1.0"))
        .directory("/Users/ben/Applications", [], error=NOT_FOUND)
        .command(software.PKGUTIL_PKGS, fixture("macos/pkgutil_pkgs.txt"))
        .command(
            software.receipt_info_argv("org.nodejs.node.pkg"),
            fixture("macos/pkgutil_pkg-info-plist_node.plist"),
        )
    )
    for package_id in software.parse_receipt_ids(fixture("macos/pkgutil_pkgs.txt")):
        if not package_id.startswith(("com.apple.", "org.nodejs.")):
            recorded.command(software.receipt_info_argv(package_id), exit_code=1, stderr="")
    return recorded


def test_apps_in_a_users_own_folder_and_receipts_without_an_app_are_judged() -> None:
    inventory = software.inventory(mac().context("macos"))
    judged = {item.name: item for item in inventory.apps}
    assert sorted(judged) == ["Microsoft Word", "Minecraft", "org.nodejs.node.pkg", "zoom.us"]
    assert judged["Minecraft"].source == MINECRAFT
    assert judged["org.nodejs.node.pkg"].version == "22.11.0"
    assert judged["org.nodejs.node.pkg"].basis == "package receipt (no app bundle)"
    everything = {item.name: item for item in inventory.items}
    # Office's and Zoom's receipts belong to their app bundles; Apple's are the OS: inventory only.
    assert everything["com.microsoft.package.DFonts"].basis == "installed with an app bundle of its vendor"
    assert not everything["us.zoom.pkg.videomeeting"].judged
    assert everything["com.apple.pkg.XProtectPayloads"].basis == "Apple's own package"
    assert len(inventory.items) == 13
    assert inventory.sources == ("/Applications", ADA_APPS, "pkgutil")
    assert inventory.problems == ()  # ben has no ~/Applications: nothing wrong with that


def test_a_game_in_home_applications_fails_an_allowlist() -> None:
    """Before, only /Applications was read: Minecraft in ~/Applications (no admin needed) was unseen."""
    approved = (SoftwareRule("Microsoft*"), SoftwareRule("zoom.us"), SoftwareRule("org.nodejs.*"))
    finding = software.check(
        mac().context("macos", requirements=Requirements(software_baseline=False, software_approved=approved))
    )
    assert finding.status is Status.FAIL
    assert [entry["name"] for entry in finding.evidence["unapproved"]] == ["Minecraft"]


def test_a_command_line_package_fails_an_allowlist_without_it() -> None:
    approved = (SoftwareRule("Microsoft*"), SoftwareRule("zoom.us"), SoftwareRule("Minecraft"))
    finding = software.check(
        mac().context("macos", requirements=Requirements(software_baseline=False, software_approved=approved))
    )
    assert [entry["name"] for entry in finding.evidence["unapproved"]] == ["org.nodejs.node.pkg"]


def test_no_pkgutil_answer_is_a_problem_not_a_verdict() -> None:
    recorded = mac().command(software.PKGUTIL_PKGS, exit_code=None, error="timed out after 30 s")
    inventory = software.inventory(recorded.context("macos"))
    assert "pkgutil" not in inventory.sources
    assert inventory.problems == ("package receipts: pkgutil: timed out after 30 s",)
