"""At most one honoured request per user per interval: "Check now" makes root run every check.

Any user can drop a "Check now" in the inbox, so without a limit one of them could keep the
laptop running every check every 5 s. Pure apart from the clock, which is passed in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

CHECK_NOW_INTERVAL_SECONDS = 60.0


@dataclass
class PerUserLimit:
    clock: Callable[[], float]
    interval: float = CHECK_NOW_INTERVAL_SECONDS
    _honoured_at: dict[str, float] = field(default_factory=dict)
    _told: set[str] = field(default_factory=set)

    def allow(self, user: str) -> bool:
        now = self.clock()
        last = self._honoured_at.get(user)
        if last is not None and 0 <= now - last < self.interval:
            return False
        self._honoured_at[user] = now
        self._told.discard(user)
        return True

    def first_refusal(self, user: str) -> bool:
        """True once per interval per user: the one log line for a burst of dropped requests."""
        if user in self._told:
            return False
        self._told.add(user)
        return True
