"""The Linux watcher on real inotify: package managers' ways of writing, in folders of the test's own.

dpkg's exact sequence is run for real against /var/lib/dpkg by test_installs_reach_the_server.py;
here the same Place rules meet the writes each manager makes (ENVIRONMENT.md: dpkg writes
`status-new` and renames it; reads show as `opened` / `closed_no_write`), and the failures.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.watch import files, linux
from agent.watch.files import FileWatch, Place, existing, matters


class Pokes:
    def __init__(self) -> None:
        self.count = 0
        self.seen = threading.Event()

    def __call__(self) -> None:
        self.count += 1
        self.seen.set()

    def none_within(self, seconds: float) -> bool:
        return not self.seen.wait(seconds)


@pytest.fixture
def pokes() -> Pokes:
    return Pokes()


@pytest.fixture
def dpkg_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "dpkg"
    folder.mkdir()
    (folder / "status").write_text("Package: base-files\n")
    return folder


@pytest.fixture
def watching(dpkg_dir: Path, pokes: Pokes) -> Iterator[FileWatch]:
    places = (Place(str(dpkg_dir), "dpkg's database", frozenset({"status"})),)
    watch = linux.start(pokes, places)
    try:
        assert [place.path for place in watch.watching] == [str(dpkg_dir)] and watch.problems == []
        yield watch
    finally:
        watch.stop()


def test_dpkg_renaming_its_new_status_into_place_is_seen(
    watching: FileWatch, dpkg_dir: Path, pokes: Pokes
) -> None:
    (dpkg_dir / "status-new").write_text("Package: base-files\n\nPackage: hr-new\n")
    os.replace(dpkg_dir / "status-new", dpkg_dir / "status")
    assert pokes.seen.wait(2)


def test_reading_the_database_is_not_an_install(watching: FileWatch, dpkg_dir: Path, pokes: Pokes) -> None:
    """Our own inventory reads `status`: that must not start another inventory, forever."""
    (dpkg_dir / "status").read_text()
    (dpkg_dir / "lock").write_text("")  # dpkg's lock file and other names are not the database
    (dpkg_dir / "status-old").write_text("x")
    assert pokes.none_within(0.5)


def context_switches(threads: list[threading.Thread]) -> int:
    total = 0
    for thread in threads:
        status = Path(f"/proc/self/task/{thread.native_id}/status").read_text()
        total += sum(int(line.split()[1]) for line in status.splitlines() if "ctxt_switches:" in line)
    return total


def test_idle_and_while_others_read_the_database_the_watch_does_not_wake(
    dpkg_dir: Path, pokes: Pokes
) -> None:
    """No polling, and reads are not even delivered: the inotify mask asks for changes only."""
    before = set(threading.enumerate())
    watch = linux.start(pokes, (Place(str(dpkg_dir), "dpkg's database", frozenset({"status"})),))
    try:
        threads = [thread for thread in threading.enumerate() if thread not in before]
        assert threads, "watchdog's threads"
        time.sleep(0.3)
        idle = context_switches(threads)
        time.sleep(1.5)
        for _ in range(200):  # apt, dpkg-query, every inventory on the machine
            (dpkg_dir / "status").read_bytes()
        time.sleep(0.3)
        assert context_switches(threads) == idle, "not one wake-up in 1.5 s idle and 200 reads"
        os.replace(dpkg_dir / "status", dpkg_dir / "status-old")
        (dpkg_dir / "status-new").write_text("Package: hr-new\n")
        os.replace(dpkg_dir / "status-new", dpkg_dir / "status")
        assert pokes.seen.wait(2)
    finally:
        watch.stop()


def test_a_package_manager_installed_later_is_watched_from_when_its_folder_appears(
    tmp_path: Path, pokes: Pokes
) -> None:
    """flatpak installed after the service started: /var/lib/flatpak appears, and is watched."""
    lib = tmp_path / "var-lib"
    lib.mkdir()
    flatpak = Place(str(lib / "flatpak"), "flatpak's system installation", frozenset({".changed", "app"}))
    watch = linux.start(pokes, (flatpak,))
    try:
        assert watch.watching == [] and watch.problems == []
        (lib / "unrelated").mkdir()
        assert pokes.none_within(0.5)
        (lib / "flatpak").mkdir()
        assert pokes.seen.wait(2), "its appearing is a change"
        assert [place.path for place in watch.watching] == [str(lib / "flatpak")]
        pokes.seen.clear()
        (lib / "flatpak" / ".changed").write_text("")  # flatpak's first install
        assert pokes.seen.wait(2)
    finally:
        watch.stop()


def test_only_folders_that_exist_are_watched_at_their_real_path(tmp_path: Path) -> None:
    real = tmp_path / "sysimage-rpm"
    real.mkdir()
    (tmp_path / "var-lib-rpm").symlink_to(real)  # Fedora: /var/lib/rpm -> /usr/lib/sysimage/rpm
    places = (
        Place(str(tmp_path / "var-lib-rpm"), "rpm's database", linux.RPM_DATABASE),
        Place(str(real), "rpm's database", linux.RPM_DATABASE),
        Place(str(tmp_path / "no-snapd"), "snapd's state", frozenset({"state.json"})),
    )
    assert [place.path for place in existing(places)] == [str(real)]


def test_each_managers_write_matters_and_a_read_does_not() -> None:
    dpkg, rpm, flatpak, flatpak_apps, snapd, snaps = linux.PLACES[0], linux.PLACES[1], *linux.PLACES[3:]
    assert matters(dpkg, "moved", "/var/lib/dpkg/status-new", "/var/lib/dpkg/status")
    assert not matters(dpkg, "opened", "/var/lib/dpkg/status")
    assert not matters(dpkg, "closed_no_write", "/var/lib/dpkg/status")
    assert not matters(dpkg, "modified", "/var/lib/dpkg/lock-frontend")
    assert matters(rpm, "modified", "/var/lib/rpm/rpmdb.sqlite-wal")
    assert not matters(rpm, "created", "/var/lib/rpm/rpmdb.sqlite-shm"), "a reader makes -shm"
    assert matters(flatpak, "moved", "/var/lib/flatpak/.goutputstream-X1", "/var/lib/flatpak/.changed")
    assert matters(flatpak_apps, "created", "/var/lib/flatpak/app/org.gimp.GIMP")
    assert matters(snapd, "moved", "/var/lib/snapd/state.json.Qx~", "/var/lib/snapd/state.json")
    assert matters(snaps, "created", "/snap/zoom-client", is_directory=True)
    assert not matters(snaps, "modified", "/snap", is_directory=True), "the folder's echo of a change inside"


def test_a_folder_that_cannot_be_watched_is_named_and_the_rest_are_watched(
    tmp_path: Path, pokes: Pokes
) -> None:
    """A folder removed between being listed and being watched: inotify refuses it for real."""
    good = tmp_path / "dpkg"
    good.mkdir()
    gone = tmp_path / "flatpak"
    places = [Place(str(gone), "flatpak's system installation"), Place(str(good), "dpkg's database")]
    watch = files.watch_places(linux._observer, places, pokes)
    try:
        assert [place.path for place in watch.watching] == [str(good)]
        assert len(watch.problems) == 1 and str(gone) in watch.problems[0]
        (good / "status").write_text("x")
        assert pokes.seen.wait(2)
    finally:
        watch.stop()
