"""Where Linux package managers keep what is installed, and the names that change on an install.

dpkg renames `status-new` over `status` (twice per package: unpacked, then configured); rpm writes
its database (SQLite since rpm 4.16, Berkeley DB or ndb before); flatpak rewrites `.changed` in the
installation and adds a folder under `app`; snapd renames a new `state.json` into place and mounts
the snap under /snap. Libraries and apps alike change these: what counts is decided by the check.
"""

from __future__ import annotations

from collections.abc import Callable

from agent.watch.files import FileWatch, Place, existing, not_yet_there, watch_places

RPM_DATABASE = frozenset({"rpmdb.sqlite", "rpmdb.sqlite-wal", "Packages", "Packages.db"})

PLACES = (
    Place("/var/lib/dpkg", "dpkg's database", frozenset({"status"})),
    Place("/var/lib/rpm", "rpm's database", RPM_DATABASE),
    Place("/usr/lib/sysimage/rpm", "rpm's database", RPM_DATABASE),
    Place("/var/lib/flatpak", "flatpak's system installation", frozenset({".changed", "app"})),
    Place("/var/lib/flatpak/app", "flatpak's apps"),
    Place("/var/lib/snapd", "snapd's state", frozenset({"state.json"})),
    Place("/snap", "snaps' mount points"),
)


def _observer() -> object:
    from watchdog.observers.inotify import InotifyObserver

    return InotifyObserver()


def start(poke: Callable[[], None], places: tuple[Place, ...] = PLACES) -> FileWatch:
    return watch_places(_observer, existing(places), poke, later=not_yet_there(places))
