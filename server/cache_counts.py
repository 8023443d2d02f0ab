"""How often the device-key cache answered, counted only when a benchmark asks (an environment variable).

A benchmark that sends from a small fleet finds every key cached and flatters the server: a real
laptop heartbeats every 15 minutes, long after its key left the 30-second cache. So
`scripts/bench_server.py` prints the hit rate the server itself counted. Each worker process
keeps its two counters in a small file of its own under the named folder, mapped into memory:
counting is a memory write (no system call, no lock across processes), and the benchmark reads
the files at any moment while the server runs. Without the variable nothing is counted.
"""

from __future__ import annotations

import mmap
import os
import struct
import threading
from pathlib import Path

COUNTS_VARIABLE = "HOMEROOM_BENCH_CACHE_COUNTS"
_LAYOUT = struct.Struct("<QQ")  # hits, misses


class CacheCounts:
    """Hits and misses of one process, in `folder/<pid>.counts`."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{os.getpid()}.counts"
        with open(path, "w+b") as file:
            file.write(bytes(_LAYOUT.size))
            file.flush()
            self._map = mmap.mmap(file.fileno(), _LAYOUT.size)
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()  # PostgreSQL: two database threads per process count

    def hit(self) -> None:
        with self._lock:
            self.hits += 1
            _LAYOUT.pack_into(self._map, 0, self.hits, self.misses)

    def miss(self) -> None:
        with self._lock:
            self.misses += 1
            _LAYOUT.pack_into(self._map, 0, self.hits, self.misses)


def counts_from_environment() -> CacheCounts | None:
    folder = os.environ.get(COUNTS_VARIABLE)
    return CacheCounts(Path(folder)) if folder else None


def read_counts(folder: Path) -> tuple[int, int]:
    """Hits and misses summed over every process that counted into `folder`."""
    hits = misses = 0
    for path in folder.glob("*.counts"):
        data = path.read_bytes()
        if len(data) >= _LAYOUT.size:
            found_hits, found_misses = _LAYOUT.unpack_from(data)
            hits, misses = hits + found_hits, misses + found_misses
    return hits, misses
