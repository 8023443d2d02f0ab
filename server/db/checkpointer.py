"""SQLite's write-ahead log copied back into the database file by a thread of its own.

By default SQLite checkpoints inside the commit that takes the log past 1,000 pages: that commit
copies the pages to the database file and waits for its fsync, and on the server that commit is
a batch of up to 32 signed requests, every one of them waiting for it, and the next batch behind
it. A running server instead checkpoints once a second on its own connection, in this thread
(PASSIVE: it copies what no reader still needs and never waits for or blocks the writer), and its
own connections do not checkpoint at commit (`wal_autocheckpoint=0`, set by `server.db.engine`
only for a database file a checkpointer runs for in this process).

If the thread cannot checkpoint (a long reader), the log grows until it can; a commit never waits
for it. When the server stops, the thread does a last checkpoint, and the last connection to close
truncates the log as SQLite always does.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

from sqlalchemy.engine import make_url

log = logging.getLogger("homeroom.checkpointer")

CHECKPOINT_EVERY_SECONDS = 1.0
# Said in the log once the log holds this many pages that could not be copied back (4 KB each).
GROWING_PAGES = 100_000

_running: set[str] = set()
_running_lock = threading.Lock()


def checkpointed_here(database: str) -> bool:
    """Whether a checkpointer runs for this database file in this process (`server.db.engine` then
    turns off checkpointing at commit on the connections it opens)."""
    return _key(database) in _running


def sqlite_file(url: str) -> str | None:
    """The database file a URL names, or None (PostgreSQL, or SQLite in memory)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return parsed.database


def _key(database: str) -> str:
    return str(Path(database).resolve())


class WalCheckpointer:
    """Checkpoints `database` every `every` seconds between `start()` and `stop()`."""

    def __init__(self, database: str, every: float = CHECKPOINT_EVERY_SECONDS) -> None:
        self.database = database
        self.every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.checkpoints = 0
        self._said_growing = False

    def start(self) -> None:
        with _running_lock:
            _running.add(_key(self.database))
        self._thread = threading.Thread(target=self._run, name="wal-checkpointer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with _running_lock:
            _running.discard(_key(self.database))
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            while not self._stop.wait(self.every):
                connection = self.checkpoint(connection)
            self.checkpoint(connection)
        finally:
            if connection is not None:
                connection.close()

    def checkpoint(self, connection: sqlite3.Connection | None) -> sqlite3.Connection | None:
        """One checkpoint; the connection to use next time (None: open one then)."""
        try:
            if connection is None:
                # Opening never creates the file: a server whose file is gone keeps its error.
                connection = sqlite3.connect(
                    f"{Path(self.database).resolve().as_uri()}?mode=rw", uri=True, timeout=5
                )
            _busy, in_log, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:  # a locked or missing file: tried again next time
            log.warning("WAL checkpoint of %s failed, trying again: %s", self.database, exc)
            if connection is not None:
                connection.close()
            return None
        self.checkpoints += 1
        growing = in_log - copied >= GROWING_PAGES
        if growing and not self._said_growing:
            log.warning(
                "the WAL of %s holds %d pages a reader still needs; it is copied back once that reader ends",
                self.database,
                in_log - copied,
            )
        self._said_growing = growing
        return connection
