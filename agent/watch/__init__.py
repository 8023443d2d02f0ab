"""Installs seen as they happen: watchers on the places software is registered, per OS.

The service starts one `InstallWatch`; each event it sees pokes a debouncer, which calls
`on_change` once a burst has gone quiet (a second after dpkg's last write). The service then
takes a new inventory and reports what changed. Watching is an addition, never the only source:
the scheduled check still takes the full inventory, so a watcher that cannot start (a folder
missing, the inotify limit, a registry key refused) is logged and the service goes on without it.

Which OS's watcher runs is chosen here and nowhere else (`linux.py`, `macos.py`, `windows.py`).
Nothing here imports the service, the link to the server or the desktop: a watcher only calls back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from agent.watch.debounce import DEFAULT_LONGEST_SECONDS, DEFAULT_QUIET_SECONDS, Debouncer

log = logging.getLogger("homeroom.agent")


class RunningWatch(Protocol):
    problems: list[str]

    def stop(self) -> None: ...


@dataclass
class InstallWatch:
    debouncer: Debouncer
    running: RunningWatch | None
    watching: list[str]
    problems: list[str]
    # The threads the watch started, for measuring what it costs while idle (bench_install_watch.py).
    threads: list[threading.Thread] = field(default_factory=list)

    def stop(self) -> None:
        if self.running is not None:
            self.running.stop()
        self.debouncer.stop()

    def describe(self) -> str:
        ids = " ".join(str(thread.native_id) for thread in self.threads if thread.native_id is not None)
        watching = ", ".join(self.watching) if self.watching else "nothing"
        return f"watching {watching} (threads {ids or 'none'})"


def _start_os_watch(os_name: str, poke: Callable[[], None]) -> tuple[RunningWatch, list[str]]:
    if os_name == "linux":
        from agent.watch import linux

        watch = linux.start(poke)
        return watch, [f"{place.path} ({place.what})" for place in watch.watching]
    if os_name == "macos":
        from agent.watch import macos

        mac_watch = macos.start(poke)
        return mac_watch, [f"{place.path} ({place.what})" for place in mac_watch.watching]
    if os_name == "windows":
        from agent.watch.windows import RegistryWatch

        registry = RegistryWatch(poke)
        registry.start()
        return registry, [key.name for key in registry.watching]
    raise OSError(f"no install watcher for {os_name}")


def start_install_watch(
    os_name: str,
    on_change: Callable[[], None],
    quiet: float = DEFAULT_QUIET_SECONDS,
    longest: float = DEFAULT_LONGEST_SECONDS,
) -> InstallWatch:
    """Never raises for the OS's sake: what could not be watched is in `problems` (and logged)."""
    before = set(threading.enumerate())
    debouncer = Debouncer(on_change, quiet, longest, name="homeroom-watch-debounce")
    debouncer.start()
    running: RunningWatch | None = None
    watching: list[str] = []
    problems: list[str] = []
    try:
        running, watching = _start_os_watch(os_name, debouncer.poke)
        problems = list(running.problems)
    except Exception as exc:  # noqa: BLE001 - an OS that refuses (inotify limit, FSEvents, a DLL)
        problems = [f"the install watcher could not start: {exc}"]
    for problem in problems:
        log.warning("install watch: %s; installs there are seen at the scheduled check", problem)
    started = [thread for thread in threading.enumerate() if thread not in before]
    return InstallWatch(debouncer, running, watching, problems, started)
