"""Which installed Debian packages are apps, shown with real packages installed by real dpkg and apt.

Each test builds small packages with `dpkg-deb` (an app with a desktop entry that depends on a
library, a second app, the library on its own), serves them from a throwaway local apt repository
(so apt installs the library *as a dependency*, marking it auto exactly as it would from Debian's
archive), and reads the machine's real dpkg database and /var/lib/apt/extended_states through
`LiveProbes`. Everything is purged afterwards. dpkg holds a machine-wide lock, so these tests run
in one xdist group.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest

from agent.checks import software_linux as sw
from agent.checks.context import CheckContext
from agent.checks.results import Finding, Status
from agent.checks.software import Inventory, decide
from agent.probes import LiveProbes
from agent.probes.facts import detect
from agent.state import FixedBaseline
from contract.requirements import Requirements, SoftwareRule
from tests.helpers.need import need
from tests.helpers.recorded import all_advice

pytestmark = pytest.mark.machine_wide  # installs real packages: the dpkg database is the machine's


@pytest.fixture(autouse=True)
def _debian_as_root() -> None:
    """Skipped on a developer's machine without them; in CI (Debian, as root) their lack fails."""
    need(
        shutil.which("dpkg-deb") is not None and shutil.which("apt-get") is not None and os.geteuid() == 0,
        "needs root, dpkg-deb and apt-get (Debian)",
    )


@dataclass(frozen=True)
class Packages:
    app: str  # ships a desktop entry, Depends: lib
    other: str  # a second app, with no dependencies
    lib: str  # a library, no desktop entry
    repo: Path
    apt_options: tuple[str, ...]


def _control(name: str, depends: str = "") -> str:
    lines = [
        f"Package: {name}",
        "Version: 1.0",
        "Architecture: all",
        "Maintainer: Homeroom tests <tests@example.org>",
        f"Description: Homeroom test package {name}",
    ]
    if depends:
        lines.append(f"Depends: {depends}")
    return "\n".join(lines) + "\n"


def _build(root: Path, name: str, depends: str = "", desktop_entry: bool = False) -> Path:
    tree = root / name
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(_control(name, depends))
    (tree / "usr" / "share" / "doc" / name).mkdir(parents=True)
    (tree / "usr" / "share" / "doc" / name / "README").write_text("test package\n")
    if desktop_entry:
        (tree / "usr" / "share" / "applications").mkdir(parents=True)
        (tree / "usr" / "share" / "applications" / f"{name}.desktop").write_text(
            f"[Desktop Entry]\nType=Application\nName={name}\nExec=/bin/true\n"
        )
    deb = root / f"{name}_1.0_all.deb"
    subprocess.run(
        ["dpkg-deb", "--build", "--root-owner-group", str(tree), str(deb)], check=True, capture_output=True
    )
    return deb


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Packages:
    """Built once per module: three packages, their index, apt's lists for them."""
    tmp_path = tmp_path_factory.mktemp("apt")
    tag = uuid.uuid4().hex[:8]
    app, other, lib = f"hr-swapps-app-{tag}", f"hr-swapps-other-{tag}", f"hr-swapps-lib{tag}"
    repo = tmp_path / "repo"
    repo.mkdir()
    _build(repo, lib)
    _build(repo, app, depends=lib, desktop_entry=True)
    _build(repo, other, desktop_entry=True)
    index = subprocess.run(["dpkg-scanpackages", "."], cwd=repo, check=True, capture_output=True, text=True)
    (repo / "Packages").write_text(index.stdout)
    (tmp_path / "sources.list").write_text(f"deb [trusted=yes] file:{repo} ./\n")
    (tmp_path / "lists" / "partial").mkdir(parents=True)
    (tmp_path / "archives" / "partial").mkdir(parents=True)
    # Only the throwaway repository, with its own lists and caches: the machine's apt sources, lists
    # and caches are untouched; the dpkg database and extended_states are the real, shared ones.
    options = (
        f"-oDir::Etc::SourceList={tmp_path / 'sources.list'}",
        "-oDir::Etc::SourceParts=/nonexistent",
        f"-oDir::State::Lists={tmp_path / 'lists'}",
        f"-oDir::Cache::Archives={tmp_path / 'archives'}",
        "-oDir::Cache::pkgcache=",
        "-oDir::Cache::srcpkgcache=",
        "-oAPT::Install-Recommends=false",
    )
    subprocess.run(["apt-get", *options, "update", "-qq"], check=True, capture_output=True)
    return Packages(app, other, lib, repo, options)


@pytest.fixture
def packages(repository: Packages) -> Iterator[Packages]:
    """The repository, with whatever a test installed purged afterwards (and checked gone)."""
    names = (repository.app, repository.other, repository.lib)
    try:
        yield repository
    finally:
        installed = subprocess.run(["dpkg-query", "-W", *names], capture_output=True, text=True).stdout
        present = [line.split()[0] for line in installed.splitlines() if len(line.split()) > 1]
        if present:  # apt's purge also forgets apt's marks for them
            subprocess.run(
                ["apt-get", *repository.apt_options, "purge", "-y", "-qq", *present],
                capture_output=True,
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            )
        left = subprocess.run(["dpkg-query", "-W", *names], capture_output=True, text=True)
        assert "1.0" not in left.stdout, f"test packages left installed: {left.stdout}"


def apt(packages: Packages, *args: str) -> None:
    subprocess.run(
        ["apt-get", *packages.apt_options, "-y", "-qq", *args],
        check=True,
        capture_output=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )


def mark(how: str, name: str) -> None:
    subprocess.run(["apt-mark", how, name], check=True, capture_output=True)


def everything_here_now() -> frozenset[str]:
    """The baseline an enrolment would take on this machine now (before the test installs)."""
    return frozenset(item.identity for item in look().inventory.items)


def context(requirements: Requirements, baseline: frozenset[str] | None = None) -> CheckContext:
    return CheckContext(
        LiveProbes(),
        detect(),
        requirements,
        datetime.now(timezone.utc),
        None if baseline is None else FixedBaseline(baseline),
    )


def allowlist(*approved: str) -> Requirements:
    return Requirements(
        software_mode="allowlist",
        software_baseline=True,
        software_approved=tuple(SoftwareRule(name) for name in approved),
    )


@dataclass(frozen=True)
class Seen:
    """One real inventory of the machine as it is now, judged as often as a test likes."""

    inventory: Inventory

    def item(self, name: str) -> sw.SoftwareItem:
        [found] = [i for i in self.inventory.items if i.name == name]
        return found

    def check(self, requirements: Requirements, baseline: frozenset[str]) -> Finding:
        return decide(self.inventory, context(requirements, baseline), sw.REMEDY, sw.apt_remove_command)


def look() -> Seen:
    return Seen(sw.inventory(context(Requirements())))


def unapproved(finding: Finding, packages: Packages) -> list[str]:
    """The unapproved items among this test's own packages: on a shared build machine another
    test may install packages of its own while this one runs, and those are not this test's."""
    own = {packages.app, packages.other, packages.lib}
    return [entry["name"] for entry in finding.evidence.get("unapproved", []) if entry["name"] in own]


def test_an_app_and_the_library_it_pulled_in(packages: Packages) -> None:
    """`apt-get install APP`: APP is judged (manual, desktop entry), its library is not (auto)."""
    baseline = everything_here_now()
    apt(packages, "install", packages.app)
    seen = look()
    app, lib = seen.item(packages.app), seen.item(packages.lib)
    assert app.judged and app.basis == sw.MANUAL
    assert not lib.judged and lib.basis == sw.DEPENDENCY
    assert packages.lib in app.needs

    # Approved app + its dependency: green (before, the library alone turned the laptop red).
    approved = sw.check(context(allowlist("hr-swapps-app-*"), baseline))  # the check itself, end to end
    assert approved.status is Status.PASS, approved.summary
    # Not approved: only the app is named; the library is never listed on its own.
    finding = seen.check(allowlist(), baseline)
    assert finding.status is Status.FAIL
    assert unapproved(finding, packages) == [packages.app]
    assert packages.lib not in all_advice(finding)
    # The full inventory still carries the library, marked as not judged, for IT.
    sent = {entry["name"]: entry for entry in (i.to_json() for i in seen.inventory.items)}
    assert sent[packages.lib]["judged"] is False and sent[packages.app]["judged"] is True


def test_a_library_installed_by_hand_is_judged_until_marked_auto(packages: Packages) -> None:
    baseline = everything_here_now()
    apt(packages, "install", packages.lib)
    seen = look()
    assert seen.item(packages.lib).judged  # a person chose it
    finding = seen.check(allowlist(), baseline)
    assert finding.status is Status.FAIL and unapproved(finding, packages) == [packages.lib]

    mark("auto", packages.lib)  # the same package, now apt's "installed as a dependency"
    seen = look()
    assert not seen.item(packages.lib).judged
    assert seen.check(allowlist(), baseline).status is Status.PASS

    mark("manual", packages.lib)
    assert look().check(allowlist(), baseline).status is Status.FAIL


def test_dpkg_i_without_apt_is_a_manual_install(packages: Packages) -> None:
    """dpkg alone leaves no apt mark: apt-mark showmanual lists it, and so is it judged."""
    subprocess.run(
        ["dpkg", "-i", str(packages.repo / f"{packages.lib}_1.0_all.deb")], check=True, capture_output=True
    )
    shown = subprocess.run(
        ["apt-mark", "showmanual"], check=True, capture_output=True, text=True
    ).stdout.split()
    assert packages.lib in shown
    lib = look().item(packages.lib)
    assert lib.judged and lib.basis == sw.MANUAL


def test_an_app_marked_auto_is_still_judged_by_its_desktop_entry(packages: Packages) -> None:
    """`apt-mark auto` does not hide an app: it ships a desktop entry and nothing needs it."""
    baseline = everything_here_now()
    apt(packages, "install", packages.other)
    mark("auto", packages.other)
    seen = look()
    assert seen.item(packages.other).judged and seen.item(packages.other).basis == sw.DESKTOP_ENTRY
    assert unapproved(seen.check(allowlist(), baseline), packages) == [packages.other]


def test_advice_never_removes_an_approved_app(packages: Packages) -> None:
    """The library was installed by hand first, then the approved app that needs it: the library is
    covered by the app's approval, and IT's command (checked by apt itself) removes no approved app."""
    baseline = everything_here_now()
    apt(packages, "install", packages.lib)
    apt(packages, "install", packages.app, packages.other)
    seen = look()
    assert seen.item(packages.lib).judged  # still manual
    finding = seen.check(allowlist("hr-swapps-app-*"), baseline)
    assert finding.status is Status.FAIL
    assert unapproved(finding, packages) == [packages.other]
    assert finding.evidence["covered_by_approved_apps"] == [{"name": packages.lib, "needed_by": packages.app}]
    assert packages.lib not in all_advice(finding)
    command = (
        finding.remediation.it if finding.remediation and not isinstance(finding.remediation, str) else None
    )
    assert command and command.startswith(f"sudo apt-get remove {packages.other}")
    argv = command.split(" (")[0].split()[1:]
    simulated = subprocess.run([argv[0], "-s", *argv[1:]], check=True, capture_output=True, text=True).stdout
    removed = [line.split()[1] for line in simulated.splitlines() if line.startswith("Remv ")]
    assert removed == [packages.other]


def test_reading_the_marks_file_agrees_with_apt_mark() -> None:
    """This machine's real extended_states, read by the agent, says what `apt-mark showmanual` says."""
    shown = set(
        subprocess.run(["apt-mark", "showmanual"], check=True, capture_output=True, text=True).stdout.split()
    )
    judged_manual = {i.name for i in look().inventory.items if i.basis == sw.MANUAL}
    assert judged_manual == shown
