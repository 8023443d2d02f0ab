"""The durable outbox: everything the agent must tell the server waits here first.

A report written while the district's server is down, the laptop is asleep or
the agent is killed must still arrive, once. So every record goes into one
SQLite file in the state directory before anything tries to send it, and
leaves only when the server has taken it (or refused it for good). Each record
carries a `record_id` the server deduplicates on, so sending it again after a
crash between "sent" and "marked delivered" is harmless.

Durability: WAL journal with `synchronous=FULL`, so a `put()` that has returned
survives kill -9 and power loss. The service and a user's tray may write at
once: each opens its own connection, writes take the lock up front
(`BEGIN IMMEDIATE`) and wait for each other (`busy_timeout`) instead of failing.

Size: the bound counts the bytes of each queued body as stored (compact UTF-8
JSON). It does not count SQLite's own overhead (page slack, indexes, the WAL),
the ids and timestamps, or the bodies kept aside in the `rejected` table (which
holds at most `REJECTED_KEPT` records), so the file on disk runs somewhat larger.

A damaged or foreign file is never reset: that would silently lose what it
holds. Opening it raises `OutboxError` naming the file and what to do.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.errors import OutboxError

OUTBOX_FILE = "outbox.sqlite3"
SCHEMA_VERSION = 1
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
HEARTBEAT = "heartbeat"
REJECTED_KEPT = 1000
BUSY_TIMEOUT_MS = 30_000

Clock = Callable[[], float]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    record_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    size INTEGER NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_by_kind ON outbox (kind, seq, size);
CREATE TABLE IF NOT EXISTS usage (
    only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
    bytes INTEGER NOT NULL
);
INSERT OR IGNORE INTO usage (only_row, bytes) SELECT 1, COALESCE(SUM(size), 0) FROM outbox;
CREATE TRIGGER IF NOT EXISTS usage_on_insert AFTER INSERT ON outbox BEGIN
    UPDATE usage SET bytes = bytes + NEW.size;
END;
CREATE TRIGGER IF NOT EXISTS usage_on_delete AFTER DELETE ON outbox BEGIN
    UPDATE usage SET bytes = bytes - OLD.size;
END;
CREATE TABLE IF NOT EXISTS rejected (
    seq INTEGER PRIMARY KEY,
    record_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL,
    rejected_at REAL NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dropped (
    kind TEXT PRIMARY KEY,
    count INTEGER NOT NULL
);
"""

# `usage` keeps the running total the bound is checked against, updated by triggers in the same
# transaction as the change: summing 50 MB of rows on every put would read the whole file each time.
# AUTOINCREMENT matters: a plain rowid may be reused after the newest row is
# deleted, and a sender still holding that seq would then mark the wrong record.

# Distinct kinds by walking the (kind, seq) index one kind at a time: the
# queue may hold hundreds of thousands of rows but only a handful of kinds,
# and the sender asks for the heads after every record it sends.
_HEADS = """
WITH RECURSIVE kinds(kind) AS (
    SELECT MIN(kind) FROM outbox
    UNION ALL
    SELECT (SELECT MIN(kind) FROM outbox WHERE kind > kinds.kind) FROM kinds WHERE kinds.kind IS NOT NULL
)
SELECT o.seq, o.record_id, o.kind, o.body, o.created_at, o.attempts, o.next_attempt_at
FROM kinds JOIN outbox AS o
    ON o.seq = (SELECT MIN(seq) FROM outbox WHERE kind = kinds.kind)
WHERE kinds.kind IS NOT NULL AND o.next_attempt_at <= ?
ORDER BY o.seq
LIMIT ?
"""

_INSERT = """
INSERT OR IGNORE INTO outbox (record_id, kind, body, size, created_at, attempts, next_attempt_at)
VALUES (?, ?, ?, ?, ?, 0, ?)
"""


@dataclass(frozen=True)
class OutboxItem:
    seq: int
    record_id: str
    kind: str
    body: dict[str, Any]
    created_at: float
    attempts: int
    next_attempt_at: float


@dataclass(frozen=True)
class RejectedItem:
    seq: int
    record_id: str
    kind: str
    body: dict[str, Any]
    created_at: float
    attempts: int
    rejected_at: float
    reason: str


@dataclass(frozen=True)
class OutboxStats:
    """What `status` shows: how much waits, since when, and what was given up on."""

    queued: dict[str, int]
    total_bytes: int
    oldest_created_at: float | None
    rejected: int
    dropped: dict[str, int]


def encode_body(body: dict[str, Any]) -> str:
    """The stored form, and the one whose UTF-8 length the bound counts."""
    if not isinstance(body, dict):
        raise TypeError(f"an outbox body must be a dict, not {type(body).__name__}")
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False)


def body_size(encoded: str) -> int:
    return len(encoded.encode("utf-8"))


def _take_dropped(db: sqlite3.Connection) -> dict[str, int]:
    """Inside the caller's transaction, so counts are never both sent and kept, nor lost."""
    counts = {kind: count for kind, count in db.execute("SELECT kind, count FROM dropped ORDER BY kind")}
    db.execute("DELETE FROM dropped")
    return counts


class Outbox:
    def __init__(self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES, clock: Clock = time.time) -> None:
        if max_bytes <= 0:
            raise ValueError(f"the outbox bound must be positive, not {max_bytes}")
        self.path = path
        self.max_bytes = max_bytes
        self._clock = clock
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(
                str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot open the outbox {path}: {exc}") from exc
        try:
            self._open()
        except BaseException:
            self._db.close()
            raise

    def _open(self) -> None:
        try:
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # Checked before anything writes to it, so a damaged file is left exactly as found.
            check = [row[0] for row in self._db.execute("PRAGMA quick_check")]
            if check != ["ok"]:
                raise self._damaged(" ".join(str(line) for line in check)[:300])
            mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            self._db.execute("PRAGMA synchronous = FULL")
        except sqlite3.OperationalError as exc:  # cannot open, read-only, locked past the timeout
            raise OutboxError(
                f"cannot open the outbox {self.path}: {exc}; check that this account may write to "
                f"{self.path.parent}"
            ) from exc
        except sqlite3.DatabaseError as exc:  # not a database, or malformed
            raise self._damaged(str(exc)) from exc
        if str(mode).lower() != "wal":
            raise OutboxError(f"the outbox {self.path} cannot use a write-ahead log (journal mode {mode})")
        with self._transaction():
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise OutboxError(
                    f"the outbox {self.path} was written by a newer Homeroom (schema {version}, this agent "
                    f"knows {SCHEMA_VERSION}); update the agent"
                )
            if version == 0 and self._has_foreign_tables():
                raise self._damaged("it is an SQLite database, but not a Homeroom outbox")
            self._create_schema()
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _has_foreign_tables(self) -> bool:
        names = {
            row[0]
            for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not str(row[0]).startswith("sqlite_")
        }
        return bool(names - {"outbox", "rejected", "dropped", "usage"})

    def _create_schema(self) -> None:
        # executescript() would COMMIT the open transaction; run the statements one by one inside it.
        statement = ""
        for line in _SCHEMA.splitlines(keepends=True):
            statement += line
            if sqlite3.complete_statement(statement):
                self._db.execute(statement)
                statement = ""

    def _damaged(self, detail: str) -> OutboxError:
        return OutboxError(
            f"the outbox {self.path} is damaged or not an outbox ({detail}). Nothing was changed: "
            f"move it aside so a new outbox can be started, and keep it for IT: it may hold unsent reports"
        )

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write lock taken up front, so two processes queue instead of failing mid-transaction."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                raise OutboxError(f"the outbox {self.path} could not be written: {exc}") from exc

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """One consistent snapshot for a read made of several queries."""
        with self._lock:
            try:
                self._db.execute("BEGIN")
                try:
                    yield self._db
                finally:
                    self._db.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                raise OutboxError(f"the outbox {self.path} could not be read: {exc}") from exc

    def put(
        self, kind: str, body: dict[str, Any], record_id: str | None = None, carry_dropped: bool = False
    ) -> str:
        """Durable when it returns (WAL + synchronous=FULL). Enforces the bound: drops the oldest heartbeats
        first, then (only if still over) the oldest items of any kind, counting what was dropped per kind.

        Putting a record_id that is already queued changes nothing: a caller retrying its own put after a
        crash must not queue the record twice. A body larger than the whole bound is refused (ValueError)
        rather than emptying the outbox for it.

        `carry_dropped` moves the counts of what was dropped into this record's `dropped` field in the
        same transaction, so a crash can neither lose the counts nor report them twice.
        """
        if not kind:
            raise ValueError("an outbox record needs a kind")
        record_id = record_id or uuid.uuid4().hex
        now = self._clock()
        with self._transaction() as db:
            if carry_dropped:
                body = {**body, "dropped": _take_dropped(db)}
            encoded = encode_body(body)
            size = body_size(encoded)
            if size > self.max_bytes:
                raise ValueError(
                    f"a {kind} of {size} bytes is larger than the whole outbox ({self.max_bytes} bytes)"
                )
            db.execute(_INSERT, (record_id, kind, encoded, size, now, now))
            self._enforce_bound(db)
        return record_id

    def _enforce_bound(self, db: sqlite3.Connection) -> None:
        excess = db.execute("SELECT bytes FROM usage").fetchone()[0] - self.max_bytes
        for only_heartbeats in (True, False):
            if excess <= 0:
                return
            if only_heartbeats:
                rows = db.execute(
                    "SELECT seq, kind, size FROM outbox WHERE kind = ? ORDER BY seq", (HEARTBEAT,)
                )
            else:
                rows = db.execute("SELECT seq, kind, size FROM outbox ORDER BY seq")
            victims: list[tuple[int, str]] = []
            for seq, kind, size in rows:
                victims.append((seq, kind))
                excess -= size
                if excess <= 0:
                    break
            rows.close()
            for seq, kind in victims:
                db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
                db.execute(
                    "INSERT INTO dropped (kind, count) VALUES (?, 1)"
                    " ON CONFLICT (kind) DO UPDATE SET count = count + 1",
                    (kind,),
                )

    def next_batch(self, limit: int = 50) -> list[OutboxItem]:
        """Due items in order, at most the head of each kind that is waiting: an item is only returned if no
        older item of the same kind is still undelivered, and due (next_attempt_at <= now)."""
        with self._reading() as db:
            rows = db.execute(_HEADS, (self._clock(), limit)).fetchall()
        return [
            OutboxItem(
                seq=seq,
                record_id=record_id,
                kind=kind,
                body=json.loads(body),
                created_at=created_at,
                attempts=attempts,
                next_attempt_at=next_attempt_at,
            )
            for seq, record_id, kind, body, created_at, attempts, next_attempt_at in rows
        ]

    def delivered(self, seq: int) -> None:
        """The server has it. An unknown seq (already dropped to make room) is not an error."""
        with self._transaction() as db:
            db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))

    def postpone(self, seq: int, until: float) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ? WHERE seq = ?", (until, seq)
            )

    def due_now(self) -> int:
        """Makes every waiting record due at once (the network is known to be back); returns how many.

        Backoff protects the server from a fleet retrying in step; an operator who
        has just fixed the connection should not have to wait it out.
        """
        with self._transaction() as db:
            return db.execute(
                "UPDATE outbox SET next_attempt_at = ? WHERE next_attempt_at > ?",
                (self._clock(), self._clock()),
            ).rowcount

    def reject(self, seq: int, reason: str) -> None:
        """The server refused it for good: keep it aside for `status` and IT, out of the way of the next."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO rejected"
                " (seq, record_id, kind, body, created_at, attempts, rejected_at, reason)"
                " SELECT seq, record_id, kind, body, created_at, attempts + 1, ?, ?"
                " FROM outbox WHERE seq = ?",
                (self._clock(), reason, seq),
            )
            db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
            db.execute(
                "DELETE FROM rejected WHERE seq NOT IN (SELECT seq FROM rejected ORDER BY seq DESC LIMIT ?)",
                (REJECTED_KEPT,),
            )

    def take_dropped(self) -> dict[str, int]:
        """Counts dropped since the last take, then reset (durable)."""
        with self._transaction() as db:
            return _take_dropped(db)

    def stats(self) -> OutboxStats:
        """Queued per kind, total bytes, oldest created_at, rejected count, dropped (not yet taken)."""
        with self._reading() as db:
            queued = {
                kind: count
                for kind, count in db.execute("SELECT kind, COUNT(*) FROM outbox GROUP BY kind ORDER BY kind")
            }
            total_bytes, oldest = db.execute(
                "SELECT COALESCE(SUM(size), 0), MIN(created_at) FROM outbox"
            ).fetchone()
            rejected = db.execute("SELECT COUNT(*) FROM rejected").fetchone()[0]
            dropped = {
                kind: count for kind, count in db.execute("SELECT kind, count FROM dropped ORDER BY kind")
            }
        return OutboxStats(queued, total_bytes, oldest, rejected, dropped)

    def rejected_items(self) -> list[RejectedItem]:
        """What the server refused, oldest first, with its reason: for `status` and IT."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT seq, record_id, kind, body, created_at, attempts, rejected_at, reason"
                " FROM rejected ORDER BY seq"
            ).fetchall()
        return [
            RejectedItem(seq, record_id, kind, json.loads(body), created_at, attempts, rejected_at, reason)
            for seq, record_id, kind, body, created_at, attempts, rejected_at, reason in rows
        ]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
