"""`homeroom-server software`: the district's apps from real reports, each format and filter."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from tests.helpers.servers import ServerProcess
from tests.server.test_software_inventory import enrolled, package, send

LINCOLN_RULES = """
[software]
mode = "allowlist"
approved = ["firefox*", { name = "vlc", publisher = "VideoLAN*" }]
blocked = ["tor*"]
"""

DISTRICT_RULES = """
[software]
mode = "allowlist"
approved = ["firefox*", "gimp"]
"""


def listing(server: ServerProcess, *args: str) -> Any:
    done = server.cli("software", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if "--json" in args else done.stdout


def publish(server: ServerProcess, tmp_path: Path, rules: str, *group: str) -> None:
    path = tmp_path / f"requirements-{len(group)}.toml"
    path.write_text(rules, encoding="utf-8")
    done = server.cli("requirements", "publish", str(path), *group)
    assert done.returncode == 0, done.stderr


def test_the_apps_list_in_each_format_and_filter(server: ServerProcess, tmp_path: Path) -> None:
    publish(server, tmp_path, DISTRICT_RULES)
    publish(server, tmp_path, LINCOLN_RULES, "--group", "Lincoln High")
    vlc = package("vlc", "3.0.18") | {"publisher": "VideoLAN Team"}
    first, second = enrolled(server, 1), enrolled(server, 2)
    third = enrolled(server, 3, group="Jefferson Elementary")
    assert send(first, [package("firefox-esr", "115.12"), vlc, package("torbrowser-launcher", "0.3")]).ok
    assert send(second, [package("firefox-esr", "128.3"), package("gimp", "2.10")]).ok
    # A library the agent marks as only part of the inventory is not an app; a formula-like name is.
    assert send(
        third, [package("gimp", "2.10"), package("libflac12", judged=False), package("=cmd|' /C calc'!A0")]
    ).ok

    everyone = listing(server, "--json")
    assert everyone["judged_by"] == "the district-wide requirements"
    apps = {app["name"]: app for app in everyone["apps"]}
    assert set(apps) == {"firefox-esr", "gimp", "vlc", "torbrowser-launcher", "=cmd|' /C calc'!A0"}
    assert apps["firefox-esr"]["laptops"] == 2 and apps["firefox-esr"]["versions"] == ["115.12", "128.3"]
    assert apps["gimp"]["laptops"] == 2 and apps["gimp"]["status"] == "approved"
    assert apps["vlc"]["status"] == "neither" and apps["vlc"]["publisher"] == "VideoLAN Team"
    assert everyone["apps"][0]["name"] in {"firefox-esr", "gimp"}  # the most common first

    lincoln = listing(server, "--group", "Lincoln High", "--json")
    assert lincoln["judged_by"] == "the requirements published for Lincoln High"
    standing = {app["name"]: (app["status"], app["laptops"]) for app in lincoln["apps"]}
    assert standing == {
        "firefox-esr": ("approved", 2),
        "vlc": ("approved", 1),  # the publisher glob matches
        "gimp": ("neither", 1),  # approved district-wide, not in Lincoln High's own list
        "torbrowser-launcher": ("blocked", 1),
    }
    unapproved = listing(server, "--group", "Lincoln High", "--unapproved", "--json")
    assert {app["name"] for app in unapproved["apps"]} == {"gimp", "torbrowser-launcher"}
    # A group without its own requirements is judged by the district-wide ones.
    jefferson = listing(server, "--group", "Jefferson Elementary", "--unapproved", "--json")
    assert jefferson["judged_by"] == "the district-wide requirements"
    assert [app["name"] for app in jefferson["apps"]] == ["=cmd|' /C calc'!A0"]

    table = listing(server, "--group", "Lincoln High")
    assert "NAME" in table and "torbrowser-launcher" in table and "blocked" in table
    assert (
        "4 apps: 2 approved, 1 blocked, 1 neither (judged by the requirements published for Lincoln High)."
        in table
    )

    rows = list(csv.reader(io.StringIO(listing(server, "--csv", "--unapproved"))))
    assert rows[0] == ["name", "publisher", "versions", "laptops", "status"]
    by_name = {row[0]: row for row in rows[1:]}
    assert "'=cmd|' /C calc'!A0" in by_name  # neutralised: a spreadsheet shows it as text
    assert by_name["vlc"][1:] == ["VideoLAN Team", "3.0.18", "1", "neither"]
    assert "gimp" not in by_name and "firefox-esr" not in by_name


def test_an_unknown_group_is_a_clear_error(server: ServerProcess) -> None:
    enrolled(server, 1)
    done = server.cli("software", "--group", "Lincon High")
    assert done.returncode == 2
    assert "no group named 'Lincon High'" in done.stderr and "'Lincoln High'" in done.stderr
    assert "Traceback" not in done.stderr


def test_device_text_cannot_drive_the_terminal(server: ServerProcess) -> None:
    device = enrolled(server, 1)
    assert send(device, [package("evil\x1b]0;owned\x07\nforged row", "1\u202e2")]).ok
    table = listing(server)
    assert "\x1b" not in table and "\u202e" not in table
    assert "evil\\x1b]0;owned\\x07\\nforged" in table
    assert "No apps" not in table


def test_one_laptops_history_of_changes(server: ServerProcess) -> None:
    device = enrolled(server, 1)
    enrolled(server, 2)
    assert send(device, [package("firefox-esr", "115.12"), package("libreoffice", "7.4")]).ok
    assert send(device, [package("firefox-esr", "128.3"), package('=HYPERLINK("x")', "1")]).ok
    history = listing(server, "--device", "lt001", "--json")
    assert history["hostname"] == "lt001" and history["device_id"] == device.device_id
    changes = [(c["change"], c["name"], c["version"], c["previous_version"]) for c in history["changes"]]
    assert sorted(changes[:3]) == [
        ("added", '=HYPERLINK("x")', "1", None),
        ("changed", "firefox-esr", "128.3", "115.12"),
        ("removed", "libreoffice", "7.4", None),
    ]
    assert sorted(changes[3:]) == [
        ("added", "firefox-esr", "115.12", None),
        ("added", "libreoffice", "7.4", None),
    ]
    assert len({c["report_id"] for c in history["changes"][:3]}) == 1  # the report that showed them
    table = listing(server, "--device", device.device_id)
    assert "115.12 -> 128.3" in table and "removed" in table
    rows = list(csv.reader(io.StringIO(listing(server, "--device", "lt001", "--csv", "--limit", "3"))))
    assert len(rows) == 4 and '\'=HYPERLINK("x")' in [row[3] for row in rows]
    assert "No software changes recorded for lt002" in listing(server, "--device", "lt002")
    unknown = server.cli("software", "--device", "lt999")
    assert unknown.returncode == 2 and "no device with id or hostname 'lt999'" in unknown.stderr
    mixed = server.cli("software", "--device", "lt001", "--unapproved")
    assert mixed.returncode == 2 and "leave out --group and --unapproved" in mixed.stderr
