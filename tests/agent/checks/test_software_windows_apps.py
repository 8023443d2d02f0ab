"""Which Windows Uninstall entries are programs, read from every user's hive, not only HKCU.

`tests/fixtures/windows/uninstall-machine-and-users.json` holds the registry answers (see
`tests/fixtures/windows/SOURCES.md` for where each key, value and SID shape comes from). The
inventory runs with the POSIX-only functions removed from `os` and `pwd` unimportable, as on Windows.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator

import pytest

from agent.checks import software_windows as sw
from agent.checks.results import Status
from contract.requirements import Requirements, SoftwareRule
from tests.helpers.recorded import Recorded, fixture

POSIX_ONLY = (
    "fchmod",
    "pread",
    "pwrite",
    "getuid",
    "geteuid",
    "fchown",
    "chown",
    "lchown",
    "getpwnam",
    "uname",
)
STUDENT = "S-1-5-21-3623811015-3361044348-30300820-1001"
ENTRA = "S-1-12-1-1234567890-1122334455-2233445566-3344556677"
AWAY = "S-1-5-21-3623811015-3361044348-30300820-1002"


@pytest.fixture(autouse=True)
def like_windows(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in POSIX_ONLY:
        monkeypatch.delattr(os, name, raising=False)
    monkeypatch.setitem(sys.modules, "pwd", None)
    yield


def laptop() -> Recorded:
    recorded = Recorded()
    recorded.records.update(json.loads(fixture("windows/uninstall-machine-and-users.json")))
    return recorded


def test_every_signed_in_users_hive_is_read_and_only_programs_are_judged() -> None:
    inventory = sw.inventory(laptop().context("windows"))
    by_name = {item.name: item for item in inventory.items}
    assert sorted(item.name for item in inventory.apps) == [
        "7-Zip 23.01",
        "Adobe Acrobat (64-bit)",
        "Discord",
        "Microsoft Visual C++ 2015-2022 Redistributable (x64) - 14.38.33130",
        "Spotify",
        "Zoom",
    ]
    # Inventory only, each with why: the runtime's hidden MSI part, the patch. The nameless entry: not at all.
    runtime = by_name["Microsoft Visual C++ 2022 X64 Minimum Runtime - 14.38.33130"]
    assert not runtime.judged and runtime.basis == "system component (Windows hides it from Apps)"
    patch = by_name["Security Update for Adobe Acrobat"]
    assert not patch.judged and patch.basis == "update of {AC76BA86-1033-FF00-7760-BC15014EA700}"
    assert len(inventory.items) == 8
    assert by_name["Spotify"].source == f"HKU\\{STUDENT}\\{sw.UNINSTALL}\\Spotify"
    assert by_name["Discord"].source.startswith(f"HKU\\{ENTRA}\\")  # an Entra ID account
    # Not read: .DEFAULT, the service accounts, the _Classes hives. The profile not signed in is named.
    assert inventory.sources == (
        *sw.MACHINE_ROOTS,
        f"HKU\\{STUDENT}\\{sw.UNINSTALL}",
        f"HKU\\{ENTRA}\\{sw.UNINSTALL}",
    )
    assert inventory.problems == (
        f"HKU\\{AWAY}: not loaded (the user is not signed in); their own installs are not read",
    )


def test_a_per_user_install_of_another_student_fails_the_check() -> None:
    """Before, only HKCU was read: as SYSTEM that is the service's own hive, and Discord was never seen."""
    approved = tuple(
        SoftwareRule(name)
        for name in ("7-Zip*", "Adobe Acrobat*", "Microsoft Visual C++*", "Spotify", "Zoom")
    )
    requirements = Requirements(software_baseline=False, software_approved=approved)
    finding = sw.check(laptop().context("windows", requirements=requirements))
    assert finding.status is Status.FAIL
    assert [entry["name"] for entry in finding.evidence["unapproved"]] == ["Discord"]
    assert finding.evidence["items_seen"] == 8 and finding.evidence["apps_judged"] == 6
    with_discord = Requirements(
        software_baseline=False, software_approved=(*approved, SoftwareRule("Discord"))
    )
    assert sw.check(laptop().context("windows", requirements=with_discord)).status is Status.PASS


def test_hku_unreadable_still_reads_the_machine() -> None:
    recorded = laptop()
    recorded.registry("HKU", error="permission denied")
    inventory = sw.inventory(recorded.context("windows"))
    assert inventory.sources == sw.MACHINE_ROOTS
    assert inventory.problems == ("HKU: permission denied; no user's own installs were read",)


def test_account_sids() -> None:
    users = sw.RegistryKey("HKU", subkeys=(".DEFAULT", "S-1-5-18", "S-1-5-19", f"{STUDENT}_Classes", STUDENT))
    assert sw.user_uninstall_roots(users) == [f"HKU\\{STUDENT}\\{sw.UNINSTALL}"]
