"""Watching install locations that are files and folders (Linux, macOS), through watchdog.

Package managers never edit their database in place: dpkg writes `status-new` and renames it over
`status`, rpm writes its SQLite file, flatpak touches `.changed`, snapd renames `state.json`. So the
folder holding each is watched, and an event counts only when it names a file that matters there:
our own inventory reads those files too, and a read (watchdog's `opened` / `closed_no_write`) must
not start another inventory.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

log = logging.getLogger("homeroom.agent")

# What reading a file looks like to inotify; an inventory reads every database it compares.
READS = frozenset({"opened", "closed_no_write"})


@dataclass(frozen=True)
class Place:
    """A folder to watch, and what in it means "software changed"."""

    path: str
    what: str  # for the log: "dpkg's database"
    names: frozenset[str] | None = None  # file names that matter in it; None: anything
    recursive: bool = False
    ignored: frozenset[str] = frozenset()  # file names that never matter (Finder's .DS_Store)


def matters(
    place: Place, event_type: str, src_path: str, dest_path: str = "", is_directory: bool = False
) -> bool:
    """Whether an event in `place` is a change of installed software (pure).

    A folder's own "modified" only echoes a change inside it, which is an event of its own: judged
    by its name, Finder's .DS_Store written into /Applications would otherwise count as software.
    """
    if event_type in READS or (is_directory and event_type == "modified"):
        return False
    touched = {os.path.basename(path) for path in (src_path, dest_path) if path} - place.ignored
    if place.names is None:
        return bool(touched)
    return bool(touched & place.names)


def existing(places: tuple[Place, ...]) -> list[Place]:
    """Only folders that exist are watched: a laptop has dpkg or rpm, seldom both, often no snap.

    Each is watched at its real path, once: on Fedora /var/lib/rpm is a link to /usr/lib/sysimage/rpm,
    and a watch on a link would see the link, not the folder.
    """
    found: dict[str, Place] = {}
    for place in places:
        if os.path.isdir(place.path):
            real = os.path.realpath(place.path)
            found.setdefault(real, replace(place, path=real))
    return list(found.values())


def not_yet_there(places: tuple[Place, ...]) -> list[Place]:
    """Folders missing now whose parent exists: a package manager installed later (flatpak, snapd)
    creates them, and then they are watched from that moment (the parent is watched for their name)."""
    return [
        place
        for place in places
        if not os.path.isdir(place.path) and os.path.isdir(os.path.dirname(place.path.rstrip("/")) or "/")
    ]


def _handler(place: Place, poke: Callable[[], None]) -> Any:
    from watchdog.events import FileSystemEvent, FileSystemEventHandler

    class PlaceHandler(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            source, dest = os.fsdecode(event.src_path), os.fsdecode(event.dest_path)
            if matters(place, event.event_type, source, dest, event.is_directory):
                poke()

    return PlaceHandler()


@dataclass
class FileWatch:
    """A running watchdog observer over some places; `problems` says what could not be watched."""

    observer: Any
    watching: list[Place]
    problems: list[str]

    def stop(self) -> None:
        self.observer.stop()
        self.observer.join(5)


def _changes_only() -> list[Any]:
    """The events asked of the OS: changes, never reads. On Linux watchdog turns this list into the
    inotify mask, so another program reading dpkg's database (apt, dpkg-query, our own inventory)
    does not even wake the watch."""
    from watchdog import events

    return [
        events.FileCreatedEvent,
        events.DirCreatedEvent,
        events.FileDeletedEvent,
        events.DirDeletedEvent,
        events.FileMovedEvent,
        events.DirMovedEvent,
        events.FileModifiedEvent,
        events.FileClosedEvent,
    ]


def _schedule(observer: Any, handler: Any, path: str, recursive: bool) -> None:
    observer.schedule(handler, path, recursive=recursive, event_filter=_changes_only())


def watch_places(
    observer_factory: Callable[[], Any],
    places: list[Place],
    poke: Callable[[], None],
    later: list[Place] | None = None,
) -> FileWatch:
    """Start an observer and add each place; a place that fails (gone since it was listed, the inotify
    watch limit) is named in `problems` and the others are still watched. An observer that cannot
    start at all (the inotify instance limit) raises OSError: the caller logs it, the schedule goes on.
    Each of `later` is watched once its folder appears (and that is a change too).
    """
    # Events wait in watchdog's queue without a timeout: idle means asleep, not waking every second.
    observer = observer_factory()
    observer.name = "homeroom-watch"
    observer.start()
    watch = FileWatch(observer, [], [])
    for place in places:
        try:
            _schedule(observer, _handler(place, poke), place.path, place.recursive)
        except OSError as exc:
            watch.problems.append(f"{place.path} ({place.what}): {exc}")
            continue
        watch.watching.append(place)
    for place in later or []:
        parent = os.path.dirname(place.path.rstrip("/")) or "/"
        try:
            _schedule(observer, _appearing(place, watch, poke), parent, False)
        except OSError as exc:
            watch.problems.append(f"{parent} (waiting for {place.path}): {exc}")
    return watch


def _appearing(place: Place, watch: FileWatch, poke: Callable[[], None]) -> Any:
    from watchdog.events import FileSystemEvent, FileSystemEventHandler

    name = os.path.basename(place.path.rstrip("/"))

    class AppearingHandler(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            arrived = os.fsdecode(event.dest_path or event.src_path)
            if event.event_type not in {"created", "moved"} or os.path.basename(arrived) != name:
                return
            if any(watched.path == place.path for watched in watch.watching) or not os.path.isdir(place.path):
                return
            try:  # from watchdog's own thread: its lock is re-entrant
                _schedule(watch.observer, _handler(place, poke), place.path, place.recursive)
            except OSError as exc:
                log.warning("install watch: %s appeared but cannot be watched: %s", place.path, exc)
                return
            watch.watching.append(place)
            log.info("install watch: now watching %s (%s)", place.path, place.what)
            poke()

    return AppearingHandler()
