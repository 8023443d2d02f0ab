"""The macOS watcher through watchdog's real FSEvents observer, with only the OS call substituted.

watchdog's FSEventsObserver (pure Python) talks to macOS through its C extension `_watchdog_fsevents`:
`Stream(paths, latency)`, `stream.run(callback, started)`, `stream.stop()`, and `NativeEvent(path,
inode, flags, id)` whose properties decode Apple's flag bits. That module is the OS boundary; here it
is replaced by one that delivers what FSEvents delivers (the flags from Apple's
CoreServices/FSEvents.h, decoded as watchdog's watchdog_fsevents.c decodes them), for files the
test really creates, so everything above it — watchdog's event building, our filter, the debounce —
runs as on a Mac.
"""

from __future__ import annotations

import os
import sys
import threading
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from agent.watch import macos, start_install_watch
from agent.watch.files import FileWatch

# Apple, CoreServices.framework FSEvents.h (FSEventStreamEventFlags)
ROOT_CHANGED = 0x00000020
ITEM_CREATED = 0x00000100
ITEM_REMOVED = 0x00000200
ITEM_INODE_META_MOD = 0x00000400
ITEM_RENAMED = 0x00000800
ITEM_MODIFIED = 0x00001000
ITEM_CHANGE_OWNER = 0x00004000
ITEM_XATTR_MOD = 0x00008000
ITEM_IS_FILE = 0x00010000
ITEM_IS_DIR = 0x00020000


class NativeEvent:
    def __init__(self, path: str, inode: int | None, flags: int, event_id: int) -> None:
        self.path, self.inode, self.flags, self.event_id = path, inode, flags, event_id

    def _has(self, flag: int) -> bool:
        return bool(self.flags & flag)

    is_root_changed = property(lambda self: self._has(ROOT_CHANGED))
    is_created = property(lambda self: self._has(ITEM_CREATED))
    is_removed = property(lambda self: self._has(ITEM_REMOVED))
    is_inode_meta_mod = property(lambda self: self._has(ITEM_INODE_META_MOD))
    is_renamed = property(lambda self: self._has(ITEM_RENAMED))
    is_modified = property(lambda self: self._has(ITEM_MODIFIED))
    is_owner_change = property(lambda self: self._has(ITEM_CHANGE_OWNER))
    is_xattr_mod = property(lambda self: self._has(ITEM_XATTR_MOD))
    is_file = property(lambda self: self._has(ITEM_IS_FILE))
    is_directory = property(lambda self: self._has(ITEM_IS_DIR))


class Stream:
    """One FSEvents stream: runs (blocking, as FSEventStreamStart's run loop does) until stopped."""

    opened: ClassVar[list[Stream]] = []

    def __init__(self, paths: list[str], latency: float) -> None:
        self.paths = paths
        self.latency = latency
        self.callback: Callable[..., None] | None = None
        self.running = threading.Event()
        self._stopped = threading.Event()
        Stream.opened.append(self)

    def run(self, callback: Callable[..., None], started: Callable[[], None]) -> None:
        self.callback = callback
        self.running.set()
        started()
        self._stopped.wait()

    def stop(self) -> None:
        self._stopped.set()

    def deliver(self, *changes: tuple[Path, int]) -> None:
        """What FSEvents reports after these changes: each path, its inode (as now), its flags."""
        assert self.callback is not None and self.running.wait(2)
        paths = [str(path) for path, _ in changes]
        inodes = [os.stat(path).st_ino if path.exists() else None for path, _ in changes]
        self.callback(paths, inodes, [flags for _, flags in changes], list(range(len(changes))))


@pytest.fixture
def fsevents(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[Stream]]:
    module = types.ModuleType("_watchdog_fsevents")
    module.Stream = Stream  # type: ignore[attr-defined]
    module.NativeEvent = NativeEvent  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "_watchdog_fsevents", module)
    monkeypatch.delitem(sys.modules, "watchdog.observers.fsevents", raising=False)
    Stream.opened = []
    yield Stream
    sys.modules.pop("watchdog.observers.fsevents", None)  # it holds the substitute: not for later tests


class Pokes:
    def __init__(self) -> None:
        self.count = 0
        self.seen = threading.Event()

    def __call__(self) -> None:
        self.count += 1
        self.seen.set()


@pytest.fixture
def mac(tmp_path: Path) -> Path:
    for folder in ("Applications", "var/db/receipts", "Users/ada/Applications", "Users/bo"):
        (tmp_path / folder).mkdir(parents=True)
    return tmp_path


def stream_for(streams: type[Stream], path: Path) -> Stream:
    return next(stream for stream in streams.opened if stream.paths == [str(path)])


@pytest.fixture
def watching(fsevents: type[Stream], mac: Path) -> Iterator[tuple[FileWatch, Pokes]]:
    pokes = Pokes()
    places = (
        macos.applications(str(mac / "Applications"), "applications"),
        macos.Place(str(mac / "var/db/receipts"), "package receipts", ignored=macos.NOT_SOFTWARE),
    )
    watch = macos.start(pokes, places)
    try:
        yield watch, pokes
    finally:
        watch.stop()


def test_an_app_dragged_into_applications_is_seen(
    watching: tuple[FileWatch, Pokes], fsevents: type[Stream], mac: Path
) -> None:
    _, pokes = watching
    bundle = mac / "Applications" / "zoom.us.app"
    (bundle / "Contents").mkdir(parents=True)
    (bundle / "Contents" / "Info.plist").write_text("<plist/>")
    stream_for(fsevents, mac / "Applications").deliver(
        (bundle, ITEM_CREATED | ITEM_IS_DIR),
        (bundle / "Contents" / "Info.plist", ITEM_CREATED | ITEM_MODIFIED | ITEM_IS_FILE),
    )
    assert pokes.seen.wait(2)


def test_a_package_receipt_is_seen(
    watching: tuple[FileWatch, Pokes], fsevents: type[Stream], mac: Path
) -> None:
    _, pokes = watching
    receipt = mac / "var/db/receipts" / "com.microsoft.teams2.plist"
    receipt.write_text("<plist/>")
    stream_for(fsevents, mac / "var/db/receipts").deliver(
        (receipt, ITEM_CREATED | ITEM_MODIFIED | ITEM_IS_FILE)
    )
    assert pokes.seen.wait(2)


def test_finder_opening_the_folder_is_not_software(
    watching: tuple[FileWatch, Pokes], fsevents: type[Stream], mac: Path
) -> None:
    _, pokes = watching
    store = mac / "Applications" / ".DS_Store"
    store.write_text("finder")
    stream_for(fsevents, mac / "Applications").deliver((store, ITEM_CREATED | ITEM_MODIFIED | ITEM_IS_FILE))
    assert not pokes.seen.wait(0.5)


def test_each_users_applications_are_watched_and_the_os_is_chosen_in_one_place(
    fsevents: type[Stream], mac: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed = macos.places(str(mac / "Users"))
    assert [place.path for place in listed] == [
        "/Applications",
        "/var/db/receipts",
        str(mac / "Users/ada/Applications"),
    ]
    real_places = macos.places
    monkeypatch.setattr(macos, "places", lambda: (real_places(str(mac / "Users"))[2],))
    changed = threading.Event()
    watch = start_install_watch("macos", changed.set, quiet=0.1)
    try:
        assert watch.watching == [f"{mac / 'Users/ada/Applications'} (a user's applications)"]
        assert watch.problems == []
        app = mac / "Users/ada/Applications" / "Scratch 3.app"
        app.mkdir()
        stream_for(fsevents, mac / "Users/ada/Applications").deliver((app, ITEM_CREATED | ITEM_IS_DIR))
        assert changed.wait(2), "through the debounce to the service's callback"
    finally:
        watch.stop()
