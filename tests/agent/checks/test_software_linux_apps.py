"""Which Linux packages are apps: the parsers, and the issue's Chromium laptop replayed from a real capture.

`tests/fixtures/linux/software-debian12-chromium.json` is every probe answer the Linux inventory asked
for on the Debian 12 build machine (2026-12-01), recorded by `RecordingProbes(LiveProbes())`: real
`dpkg-query` output, the real /var/lib/apt/extended_states, real `dpkg-query -S` of the desktop
entries. Chromium was installed there with `apt-get install chromium`, which pulled in its
libraries (libasyncns0, libdouble-conversion3, libflac12 … all marked auto by apt).
"""

from __future__ import annotations

import json
from dataclasses import replace

from agent.checks import software_linux as sw
from agent.checks.context import CheckContext
from agent.checks.results import Status
from agent.checks.software import SoftwareItem
from agent.probes import ReplayProbes
from agent.probes.facts import PlatformFacts
from contract.requirements import Requirements, SoftwareRule
from tests.helpers.recorded import FIXED_NOW, Recorded, all_advice, fixture

CHROMIUM_LIBRARIES = ("libasyncns0", "libdouble-conversion3", "libflac12", "chromium-common")


class _Baseline:
    def __init__(self, items: frozenset[str]) -> None:
        self.items = items

    def establish(self, current: frozenset[str]) -> frozenset[str]:
        return self.items


def _captured(requirements: Requirements, baseline: frozenset[str] | None = None) -> CheckContext:
    records = json.loads(fixture("linux/software-debian12-chromium.json"))
    platform = PlatformFacts("linux", "Debian GNU/Linux 12", "", "x86_64", "build", "root", True, "", "/root")
    return CheckContext(
        ReplayProbes(records),
        platform,
        requirements,
        FIXED_NOW,
        None if baseline is None else _Baseline(baseline),
    )


def test_the_chromium_laptop_from_the_issue_is_green_with_chromium_approved() -> None:
    inventory = sw.inventory(_captured(Requirements()))
    by_name = {item.name: item for item in inventory.items}
    assert len(inventory.items) == 820 and len(inventory.apps) == 116  # `apt-mark showmanual | wc -l` = 116
    assert by_name["chromium"].judged
    for library in CHROMIUM_LIBRARIES:
        assert not by_name[library].judged, library
        assert by_name[library].basis == sw.DEPENDENCY
    assert "libflac12" in by_name["chromium"].needs
    # The district approves chromium*; everything else was there at enrolment (the baseline).
    others = frozenset(item.identity for item in inventory.items if not item.name.startswith("chromium"))
    requirements = Requirements(software_approved=(SoftwareRule("chromium*"),))
    finding = sw.check(_captured(requirements, others))
    assert finding.status is Status.PASS, finding.summary
    assert finding.summary == "116 installed apps, all approved (820 items in the full inventory)"
    # Not approved: chromium alone is named, never one of its libraries, and apt's own removal of it
    # is the one IT is given.
    finding = sw.check(_captured(Requirements(), others))
    assert finding.status is Status.FAIL
    assert [entry["name"] for entry in finding.evidence["unapproved"]] == ["chromium"]
    assert not any(library in all_advice(finding) for library in CHROMIUM_LIBRARIES)
    assert "sudo apt-get remove chromium (" in all_advice(finding)


def test_extended_states_stanzas() -> None:
    text = (
        "Package: libflac12\nArchitecture: amd64\nAuto-Installed: 1\n\n"
        "Package: vim\nArchitecture: amd64\nAuto-Installed: 0\n\n"
        "Package: old-style\nAuto-Installed: 1\n"
    )
    assert sw.parse_extended_states(text) == frozenset({("libflac12", "amd64"), ("old-style", "")})


def test_desktop_entry_owners() -> None:
    # The first three lines as on the build machine; a shared entry, an arch-qualified owner and a
    # diversion as dpkg-query(1) prints them.
    text = (
        "gcr: /usr/share/applications/gcr-viewer.desktop\n"
        "vim-common: /usr/share/applications/vim.desktop\n"
        "chromium: /usr/share/applications/chromium.desktop\n"
        "diversion by foo from: /usr/share/applications/bar.desktop\n"
        "pkg-a, pkg-b:amd64: /usr/share/applications/shared.desktop\n"
    )
    owners = sw.parse_desktop_owners(text)
    assert sorted(owners) == ["chromium", "gcr", "pkg-a", "pkg-b", "vim-common"]
    assert owners["pkg-b"] == ["/usr/share/applications/shared.desktop"]


def test_relations_resolve_alternatives_and_virtual_names() -> None:
    text = (
        "ii \tapp\tamd64\t\tlibfoo1 (>= 1.0), libbar1:any | libbaz1, www-browser\t\t\n"
        "ii \tlibfoo1\tamd64\t\tlibc6 (>= 2.34)\t\t\n"
        "ii \tlibbaz1\tamd64\t\t\t\t\n"
        "ii \tfirefox-esr\tamd64\t\t\t\tgnome-www-browser, www-browser\n"
        "ii \tlibc6\tamd64\t\t\t\t\n"
        "rc \tgone\tamd64\t\tapp\t\t\n"
    )
    relations = sw.parse_relations(text)
    assert relations.needs["app"] == ("firefox-esr", "libbaz1", "libfoo1")
    assert relations.needs["libfoo1"] == ("libc6",)
    assert "gone" not in relations.needs


def _dpkg(*names: str) -> list[SoftwareItem]:
    return [SoftwareItem(name, "1", "", "dpkg") for name in names]


def test_judging_dpkg_packages() -> None:
    relations = sw.DpkgRelations({"app": ("lib",), "lib": (), "game": (), "orphan": ()}, {})
    marks = frozenset({("lib", "amd64"), ("game", "amd64"), ("orphan", "amd64")})
    judged = {
        i.name: i
        for i in sw.judge_dpkg(_dpkg("app", "lib", "game", "orphan"), marks, {"game": ["/g"]}, relations)
    }
    assert judged["app"].judged and judged["app"].basis == sw.MANUAL
    assert not judged["lib"].judged and judged["lib"].basis == sw.DEPENDENCY
    assert judged["game"].judged and judged["game"].basis == sw.DESKTOP_ENTRY  # `apt-mark auto` hides no app
    assert not judged["orphan"].judged
    everything = sw.judge_dpkg(_dpkg("app", "lib"), None, {}, relations)
    assert all(item.judged and item.basis == sw.NO_MARKS for item in everything)


def test_unreadable_marks_judge_every_package_and_say_why() -> None:
    recorded = (
        Recorded()
        .command(sw.DPKG_QUERY, "ii \tlibfoo1\t1.0\tX\n")
        .file(sw.APT_EXTENDED_STATES, None, "permission denied")
        .command(sw.DPKG_DESKTOP_ENTRIES, "")
        .command(sw.DPKG_RELATIONS, "")
        .command(sw.RPM_QUERY, exit_code=None, error="not found")
        .command(sw.FLATPAK_LIST, exit_code=None, error="not found")
        .command(sw.SNAP_LIST, exit_code=None, error="not found")
    )
    finding = sw.check(recorded.context("linux", requirements=Requirements(software_baseline=False)))
    assert finding.status is Status.FAIL
    assert finding.evidence["problems"] == [
        f"{sw.APT_EXTENDED_STATES}: permission denied; every dpkg package is judged"
    ]


def test_rpm_judges_what_dnf_says_a_user_installed() -> None:
    # NEVRA lines as dnf prints them (dnf5-repoquery(8): --userinstalled, "installed by user";
    # default format name-epoch:version-release.arch, as in `dnf mark install` output of Fedora 23).
    rpm = "firefox\t128.0-1.fc40\tFedora Project\nlibogg\t1.3.5-8.fc40\tFedora Project\n"
    userinstalled = "firefox-0:128.0-1.fc40.x86_64\nqemu-kvm-2:2.4.1-10.fc23.x86_64\n"
    assert sw.parse_dnf_userinstalled(userinstalled) == frozenset({"firefox", "qemu-kvm"})
    base = (
        Recorded()
        .command(sw.DPKG_QUERY, exit_code=None, error="not found")
        .command(sw.RPM_QUERY, rpm)
        .command(sw.FLATPAK_LIST, exit_code=None, error="not found")
        .command(sw.SNAP_LIST, exit_code=None, error="not found")
    )
    inventory = sw.inventory(base.command(sw.DNF_USERINSTALLED, userinstalled).context("linux"))
    assert [(i.name, i.judged) for i in inventory.items] == [("firefox", True), ("libogg", False)]
    no_dnf = sw.inventory(
        Recorded()
        .command(sw.RPM_QUERY, rpm)
        .command(sw.DNF_USERINSTALLED, exit_code=None, error="not found")
        .context("linux")
    )
    assert all(item.judged for item in no_dnf.items)
    assert any("every rpm package is judged" in problem for problem in no_dnf.problems)


def test_flatpak_runtimes_and_system_snaps_are_inventory_only() -> None:
    snap = (
        "Name               Version          Rev    Tracking         Publisher   Notes\n"
        "core22             20240111         1122   latest/stable    canonical✓  base\n"
        "firefox            122.0-2          3728   latest/stable/…  mozilla✓    -\n"
        "snapd              2.61.1           20671  latest/stable    canonical✓  snapd\n"
    )
    assert [(i.name, i.judged) for i in sw.parse_snap(snap)] == [
        ("core22", False),
        ("firefox", True),
        ("snapd", False),
    ]
    runtimes = sw.flatpak_runtimes("org.gnome.Platform\tGNOME Application Platform version 45\t\tflathub\n")
    assert [replace(i, needs=()) for i in runtimes] == [
        SoftwareItem(
            "GNOME Application Platform version 45",
            "",
            "flathub",
            "flatpak:org.gnome.Platform",
            False,
            "flatpak runtime",
        )
    ]
