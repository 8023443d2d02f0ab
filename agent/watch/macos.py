"""Where macOS software lands: app bundles in /Applications (and each user's ~/Applications), and
the receipts the installer writes to /var/db/receipts for packages that are not an app bundle.

Watched through watchdog's FSEvents backend. /Applications is watched with its sub-folders: an app
dragged in arrives file by file, and the debounce waits until the copy is quiet. Finder's
`.DS_Store`, written whenever someone opens the folder, is not software.
"""

from __future__ import annotations

import glob
from collections.abc import Callable
from typing import Any

from agent.watch.files import FileWatch, Place, existing, watch_places

NOT_SOFTWARE = frozenset({".DS_Store"})
RECEIPTS = Place("/var/db/receipts", "package receipts", ignored=NOT_SOFTWARE)


def applications(path: str, what: str) -> Place:
    return Place(path, what, recursive=True, ignored=NOT_SOFTWARE)


def places(users_root: str = "/Users") -> tuple[Place, ...]:
    per_user = sorted(glob.glob(f"{glob.escape(users_root)}/*/Applications"))
    return (
        applications("/Applications", "applications"),
        RECEIPTS,
        *(applications(path, "a user's applications") for path in per_user),
    )


def observer() -> Any:
    """watchdog's FSEvents observer; its module loads the `_watchdog_fsevents` extension, which only
    exists on macOS, so it is imported here and nowhere else."""
    from watchdog.observers.fsevents import FSEventsObserver

    return FSEventsObserver()


def start(poke: Callable[[], None], watched: tuple[Place, ...] | None = None) -> FileWatch:
    return watch_places(observer, existing(watched if watched is not None else places()), poke)
