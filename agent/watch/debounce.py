"""One call for a burst of events: dpkg renames its status file twice per package, apt runs dpkg
for a hundred packages, an installer writes a registry key per value.

The action runs `quiet` seconds after the last event, or `longest` seconds after the first of a
burst that never goes quiet (a long upgrade is still seen as it goes). While nothing happens the
thread waits on a condition with no timeout: no polling, no wake-ups.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("homeroom.agent")

DEFAULT_QUIET_SECONDS = 1.0
DEFAULT_LONGEST_SECONDS = 30.0


class Debouncer:
    def __init__(
        self,
        action: Callable[[], None],
        quiet: float = DEFAULT_QUIET_SECONDS,
        longest: float = DEFAULT_LONGEST_SECONDS,
        name: str = "homeroom-debounce",
    ) -> None:
        self.action = action
        self.quiet = quiet
        self.longest = longest
        self._condition = threading.Condition()
        self._first: float | None = None
        self._last = 0.0
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def start(self) -> None:
        self._thread.start()

    def poke(self) -> None:
        """An event: called from the watchers' threads; cheap, never blocks for long."""
        with self._condition:
            now = time.monotonic()
            if self._first is None:
                self._first = now
            self._last = now
            self._condition.notify()

    def stop(self) -> None:
        with self._condition:
            self._stopped = True
            self._condition.notify()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(5)

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._stopped and self._first is None:
                    self._condition.wait()  # idle: asleep until an event or stop
                if self._stopped:
                    return
                assert self._first is not None
                due = min(self._last + self.quiet, self._first + self.longest)
                remaining = due - time.monotonic()
                if remaining > 0:
                    self._condition.wait(remaining)  # a new event moves `due`; re-read it
                    continue
                self._first = None
            try:
                self.action()
            except Exception:
                log.exception("reacting to an install event failed; the scheduled check still runs")
