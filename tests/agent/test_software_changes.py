"""What an install changed: the inventory compared per source, and kept in the state directory."""

from __future__ import annotations

import json
from pathlib import Path

from agent.checks.software import Inventory, SoftwareItem
from agent.software_changes import InventoryFile, KeptInventory, changes, source_of

VIM = SoftwareItem("vim", "9.0", "Debian", "dpkg")
LIBC = SoftwareItem("libc6", "2.36", "GNU", "dpkg")
GIMP = SoftwareItem("GIMP", "2.10", "flathub", "flatpak:org.gimp.GIMP")


def linux(
    *items: SoftwareItem, sources: tuple[str, ...] = ("dpkg", "flatpak"), problems: tuple[str, ...] = ()
) -> Inventory:
    return Inventory(items, sources, problems)


def kept_after(*inventories: Inventory) -> KeptInventory | None:
    kept = None
    for number, inventory in enumerate(inventories):
        kept, _ = changes(kept, inventory, f"2026-12-01T10:0{number}:00+00:00", "watch")
    return kept


def names(items: tuple[dict[str, str], ...]) -> list[str]:
    return [f"{item['name']} {item['version']}" for item in items]


def test_the_first_inventory_has_nothing_to_compare_with() -> None:
    kept, found = changes(None, linux(VIM, LIBC), "2026-12-01T10:00:00+00:00", "schedule")
    assert found is None
    assert kept.by_source["dpkg"] == [VIM.to_json(), LIBC.to_json()]


def test_an_install_an_update_and_a_removal() -> None:
    kept = kept_after(linux(VIM, LIBC))
    newer_vim = SoftwareItem("vim", "9.1", "Debian", "dpkg")
    _, found = changes(kept, linux(newer_vim, GIMP), "2026-12-01T11:00:00+00:00", "watch")
    assert found
    assert names(found.added) == ["GIMP 2.10", "vim 9.1"]
    assert names(found.removed) == ["libc6 2.36", "vim 9.0"], "an update is the old version removed"
    assert found.to_json()["since"] == "2026-12-01T10:00:00+00:00"
    assert found.to_json()["seen_by"] == "watch"


def test_nothing_changed_is_no_change() -> None:
    kept = kept_after(linux(VIM, LIBC))
    _, found = changes(kept, linux(LIBC, VIM), "later", "watch")
    assert found is not None and not found


def test_a_source_that_failed_this_time_is_not_everything_removed() -> None:
    kept = kept_after(linux(VIM, GIMP))
    failed = linux(GIMP, sources=("flatpak",), problems=("dpkg: exit status 2: database locked",))
    kept, found = changes(kept, failed, "later", "watch")
    assert found is not None and not found
    assert kept.by_source["dpkg"] == [VIM.to_json()], "kept until dpkg can be read again"
    _, found = changes(kept, linux(GIMP), "even later", "watch")
    assert names(found.removed) == ["vim 9.0"], "once read again, what is gone is gone"


def test_a_source_read_with_some_entries_unreadable_reports_additions_only() -> None:
    machine = "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall"
    office = SoftwareItem("Office", "16", "Microsoft", machine + "\\{9012}")
    zoom = SoftwareItem("Zoom", "6", "Zoom", machine + "\\ZoomUMX")
    kept = kept_after(Inventory((office,), (machine,)))
    partly = Inventory((zoom,), (machine,), (f"{machine}\\{{9012}}: access denied",))
    kept, found = changes(kept, partly, "later", "watch")
    assert names(found.added) == ["Zoom 6"] and found.removed == ()
    assert {item["name"] for item in kept.by_source[machine]} == {"Office", "Zoom"}


def test_a_package_manager_that_was_removed_reports_its_items_removed() -> None:
    kept = kept_after(linux(VIM, GIMP))
    _, found = changes(kept, linux(VIM, sources=("dpkg",)), "later", "schedule")
    assert names(found.removed) == ["GIMP 2.10"]


def test_items_belong_to_the_source_whose_name_begins_their_own() -> None:
    sources = (
        "dpkg",
        "flatpak",
        "/Applications",
        "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall",
    )
    assert source_of("dpkg", sources) == "dpkg"
    assert source_of("flatpak:org.gimp.GIMP", sources) == "flatpak"
    assert source_of("/Applications/Zoom.app", sources) == "/Applications"
    assert source_of("/ApplicationsX/Zoom.app", sources) == ""
    assert (
        source_of("HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\Zoom", sources)
        == sources[3]
    )


def test_the_kept_inventory_survives_a_restart_and_a_damaged_one_starts_afresh(tmp_path: Path) -> None:
    file = InventoryFile(tmp_path)
    assert file.load() is None
    kept = kept_after(linux(VIM))
    file.save(kept)
    assert (tmp_path / "software-inventory.json").stat().st_mode & 0o777 == 0o600
    assert InventoryFile(tmp_path).load() == kept
    (tmp_path / "software-inventory.json").write_text(json.dumps({"at": 1, "by_source": {"dpkg": [3]}}))
    assert file.load() is None
    (tmp_path / "software-inventory.json").write_text("{not json")
    assert file.load() is None
