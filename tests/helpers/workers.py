"""Which pytest-xdist worker this process is, so workers can share the machine without meeting.

Ports and X display numbers are drawn from a band of their own per worker: two workers never
try the same one, and what is left to chance (another engineer's run, a stale server) is caught
by checking the port or display really is ours before it is used.
"""

from __future__ import annotations

import os
import re


def worker_index() -> int:
    """0 for `gw0` or a run without xdist, 1 for `gw1`, ..."""
    match = re.fullmatch(r"gw(\d+)", os.environ.get("PYTEST_XDIST_WORKER", ""))
    return int(match.group(1)) if match else 0


def worker_count() -> int:
    """How many workers share the run (1 without xdist)."""
    try:
        return max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    except ValueError:
        return 1


def worker_tag() -> str:
    """A short name for this worker, for names the whole machine shares (users, namespaces)."""
    return f"w{worker_index()}"


def band(first: int, last: int) -> range:
    """This worker's share of [first, last]: the range cut into one equal band per worker."""
    count = worker_count()
    width = (last - first + 1) // count
    start = first + (worker_index() % count) * width
    return range(start, start + width)
