"""How many SQL statements the server sends, counted only when a benchmark asks (an environment variable).

Throughput on a shared machine moves with whatever else runs; the number of statements a heartbeat
or a report costs does not. `scripts/bench_server.py` sets the variable and prints statements per
request beside the server's CPU per request. Each process counts into a small file of its own under
the named folder, mapped into memory (as `server.cache_counts` does): a count is a memory write, and
the benchmark reads the files while the server runs. An `executemany` (many rows, one statement
sent) counts once: what is counted is round trips to the database. Without the variable nothing is
counted and no event is listened to.
"""

from __future__ import annotations

import mmap
import os
import struct
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

STATEMENT_COUNTS_VARIABLE = "HOMEROOM_BENCH_STATEMENT_COUNTS"
_LAYOUT = struct.Struct("<Q")


class StatementCounts:
    """Statements sent by one process (all its engines), in `folder/<pid>.statements`."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"{os.getpid()}.statements", "w+b") as file:
            file.write(bytes(_LAYOUT.size))
            file.flush()
            self._map = mmap.mmap(file.fileno(), _LAYOUT.size)
        self.sent = 0
        self._lock = threading.Lock()

    def count(self, *_args: Any) -> None:
        with self._lock:
            self.sent += 1
            _LAYOUT.pack_into(self._map, 0, self.sent)


_counts: dict[int, StatementCounts] = {}  # by process: a forked worker counts into its own file


def count_statements(engine: Engine) -> None:
    """Counts `engine`'s statements when the variable names a folder (a benchmark); else nothing."""
    folder = os.environ.get(STATEMENT_COUNTS_VARIABLE)
    if not folder:
        return

    def counted(*args: Any) -> None:
        counts = _counts.get(os.getpid())
        if counts is None:
            counts = _counts[os.getpid()] = StatementCounts(Path(folder))
        counts.count(*args)

    event.listen(engine, "before_cursor_execute", counted)


def read_statement_counts(folder: Path) -> int:
    """Statements summed over every process that counted into `folder`."""
    total = 0
    for path in folder.glob("*.statements"):
        data = path.read_bytes()
        if len(data) >= _LAYOUT.size:
            total += _LAYOUT.unpack_from(data)[0]
    return total
