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

What is dropped when full is a property of each kind (`KIND_RULES`): a full
report that a newer report supersedes goes first, heartbeats next, then other
droppable kinds; a kind declared never-droppable (sign-offs, lost-device
reports) is never dropped, and when only such records remain the bound is
exceeded instead (`OutboxStats.over_bound` says so). Counts of what was dropped
are carried to the server inside the next report or heartbeat, and kept as
running totals for `status`.

The file holds queued sign-offs and the laptop's serial and hardware UUID, so
it (and its -wal and -shm) is made readable by its owner (root) only, also
when an older agent left it world-readable.

A damaged or foreign file is never reset: that would silently lose what it
holds. Opening it raises `OutboxNotUsable` naming the file, so the service can
move it aside for IT and start a new one (`agent.recovery`).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import OutboxError, OutboxNotUsable

log = logging.getLogger("homeroom.agent")

OUTBOX_FILE = "outbox.sqlite3"
# 2: the tables `dropped_total`, `problems` and `link` (all added by CREATE ... IF NOT EXISTS, so a
# version-1 file is upgraded in place).
SCHEMA_VERSION = 2
FILE_MODE = 0o600
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
HEARTBEAT = "heartbeat"
REJECTED_KEPT = 1000
BUSY_TIMEOUT_MS = 30_000
PROBLEM_TEXT_MAX = 300

Clock = Callable[[], float]


@dataclass(frozen=True)
class KindRule:
    """How the bound treats one kind of record.

    `droppable`: False means the record is never dropped to make room (the bound is exceeded
    instead). `superseded_by_newer`: every record of this kind carries the whole state, so an older
    one is worth nothing once a newer one is queued, and it goes first.
    """

    droppable: bool = True
    superseded_by_newer: bool = False


KIND_RULES: dict[str, KindRule] = {
    "report": KindRule(droppable=True, superseded_by_newer=True),
    HEARTBEAT: KindRule(droppable=True),
    "signoff": KindRule(droppable=False),
    "lost_report": KindRule(droppable=False),
    # A person asked IT for an app and was told it is on its way: it must arrive.
    "approval_request": KindRule(droppable=False),
    # Lost mode's evidence, every few minutes: droppable (the newest says most), after heartbeats.
    "lost_evidence": KindRule(droppable=True),
}
DEFAULT_RULE = KindRule()


def rule_for(kind: str) -> KindRule:
    return KIND_RULES.get(kind, DEFAULT_RULE)


def never_dropped_kinds() -> list[str]:
    return sorted(kind for kind, rule in KIND_RULES.items() if not rule.droppable)


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
CREATE TABLE IF NOT EXISTS dropped_total (
    kind TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    last_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS problems (
    key TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    noted_at REAL NOT NULL,
    reported_at REAL
);
CREATE TABLE IF NOT EXISTS link (
    only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
    last_delivered_at REAL,
    last_failure_at REAL,
    last_failure TEXT
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

# The kinds queued, by the same index walk.
_KINDS = """
WITH RECURSIVE kinds(kind) AS (
    SELECT MIN(kind) FROM outbox
    UNION ALL
    SELECT (SELECT MIN(kind) FROM outbox WHERE kind > kinds.kind) FROM kinds WHERE kinds.kind IS NOT NULL
)
SELECT kind FROM kinds WHERE kind IS NOT NULL
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
    dropped_total: dict[str, int] = field(default_factory=dict)
    max_bytes: int = DEFAULT_MAX_BYTES

    @property
    def over_bound(self) -> bool:
        """Only never-droppable records are left and they need more than the bound."""
        return self.total_bytes > self.max_bytes


@dataclass(frozen=True)
class LocalProblem:
    """Something wrong with the agent's own files, for `status` and (once) for the server."""

    key: str
    text: str
    noted_at: float
    reported_at: float | None


@dataclass(frozen=True)
class LinkState:
    """The last delivery and the last failure to send, and why: for `status`."""

    last_delivered_at: float | None
    last_failure_at: float | None
    last_failure: str | None


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


def _take_problems(db: sqlite3.Connection, now: float) -> list[str]:
    """Problems not yet reported, marked reported inside the caller's transaction."""
    texts = [row[0] for row in db.execute("SELECT text FROM problems WHERE reported_at IS NULL ORDER BY key")]
    db.execute("UPDATE problems SET reported_at = ? WHERE reported_at IS NULL", (now,))
    return texts


def _count_dropped(db: sqlite3.Connection, kind: str, count: int, now: float, new: bool = True) -> None:
    """`new` False: counts coming back from a dropped carrier, to be sent again but already in the totals."""
    if count <= 0:
        return
    db.execute(
        "INSERT INTO dropped (kind, count) VALUES (?, ?) ON CONFLICT (kind) DO UPDATE SET count = count + ?",
        (kind, count, count),
    )
    if not new:
        return
    db.execute(
        "INSERT INTO dropped_total (kind, count, last_at) VALUES (?, ?, ?)"
        " ON CONFLICT (kind) DO UPDATE SET count = count + ?, last_at = ?",
        (kind, count, now, count, now),
    )


def _carried_counts(body: str) -> dict[str, int]:
    """Counts a dropped record was carrying to the server: they must not vanish with it."""
    if '"dropped":' not in body:
        return {}
    carried = json.loads(body).get("dropped")
    if not isinstance(carried, dict):
        return {}
    return {str(kind): count for kind, count in carried.items() if isinstance(count, int) and count > 0}


def _expected_columns() -> dict[str, set[str]]:
    """The columns of each table as this agent creates them, read back from a scratch database."""
    scratch = sqlite3.connect(":memory:")
    try:
        scratch.executescript(_SCHEMA)
        tables = [row[0] for row in scratch.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {
            table: {row[1] for row in scratch.execute(f"PRAGMA table_info({table})")}
            for table in tables
            if not table.startswith("sqlite_")
        }
    finally:
        scratch.close()


def restrict_to_owner(path: Path) -> None:
    """The outbox and its -wal and -shm: owner only, whatever mode they were left with."""
    for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            if candidate.stat().st_mode & 0o777 != FILE_MODE:
                candidate.chmod(FILE_MODE)
        except FileNotFoundError:
            continue


def _create_owner_only(path: Path) -> None:
    """Made 0600 before SQLite opens it: SQLite gives the -wal and -shm the database file's mode."""
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    os.close(handle)


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
            _create_owner_only(path)
            restrict_to_owner(path)
        except OSError as exc:
            raise OutboxError(f"cannot open the outbox {path}: {exc}") from exc
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
            self._check_is_ours()
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
        restrict_to_owner(self.path)  # the -wal and -shm exist from here on
        with self._transaction():
            self._check_is_ours()  # again under the write lock: another process may have been first
            self._create_schema()
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _check_is_ours(self) -> None:
        """Before anything is written (even the switch to WAL), so a file that is not ours stays as found."""
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise OutboxNotUsable(
                f"the outbox {self.path} was written by a newer Homeroom (schema {version}, this agent "
                f"knows {SCHEMA_VERSION}); update the agent",
                f"written by a newer Homeroom (schema {version})",
            )
        if version == 0 and self._has_foreign_tables():
            raise self._damaged("it is an SQLite database, but not a Homeroom outbox")
        wrong = self._wrong_columns()
        if wrong:
            raise self._damaged(f"its tables are not an outbox's ({wrong})")

    def _has_foreign_tables(self) -> bool:
        names = {
            row[0]
            for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not str(row[0]).startswith("sqlite_")
        }
        return bool(names - set(_expected_columns()))

    def _wrong_columns(self) -> str:
        """A table of ours whose columns differ: a file every later put or send would fail on."""
        expected = _expected_columns()
        for table, columns in expected.items():
            found = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            if found and found != columns:
                return f"{table} has {', '.join(sorted(found))}"
        return ""

    def _create_schema(self) -> None:
        # executescript() would COMMIT the open transaction; run the statements one by one inside it.
        statement = ""
        for line in _SCHEMA.splitlines(keepends=True):
            statement += line
            if sqlite3.complete_statement(statement):
                self._db.execute(statement)
                statement = ""

    def _damaged(self, detail: str) -> OutboxNotUsable:
        return OutboxNotUsable(
            f"the outbox {self.path} is damaged or not an outbox ({detail}). Nothing was changed: "
            f"move it aside so a new outbox can be started, and keep it for IT: it may hold unsent reports",
            detail,
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
        same transaction, so a crash can neither lose the counts nor report them twice; local problems
        not yet reported ride along the same way, in `local_problems` (only when there are some).
        """
        if not kind:
            raise ValueError("an outbox record needs a kind")
        record_id = record_id or uuid.uuid4().hex
        now = self._clock()
        with self._transaction() as db:
            if carry_dropped:
                body = {**body, "dropped": _take_dropped(db)}
                problems = _take_problems(db, now)
                if problems:
                    body["local_problems"] = problems
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
        """Drops in tiers until under the bound: superseded reports, heartbeats, other droppable kinds
        (oldest first in each); never a never-droppable kind, whatever that leaves over the bound."""
        excess = db.execute("SELECT bytes FROM usage").fetchone()[0] - self.max_bytes
        if excess <= 0:
            return
        now = self._clock()
        for query, params in self._drop_tiers(db):
            rows = db.execute(query, params)  # lazily: a full queue may hold 100,000s of heartbeats
            victims: list[tuple[int, str]] = []
            for seq, kind, size in rows:
                victims.append((seq, kind))
                excess -= size
                if excess <= 0:
                    break
            rows.close()
            for seq, kind in victims:
                (body,) = db.execute("SELECT body FROM outbox WHERE seq = ?", (seq,)).fetchone()
                db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
                _count_dropped(db, kind, 1, now)
                for carried_kind, count in _carried_counts(body).items():
                    _count_dropped(db, carried_kind, count, now, new=False)
            if excess <= 0:
                return
        log.warning(
            "the outbox is %d bytes over its bound of %d: only records that are never dropped (%s) are left",
            excess,
            self.max_bytes,
            ", ".join(never_dropped_kinds()),
        )

    def _drop_tiers(self, db: sqlite3.Connection) -> list[tuple[str, tuple[str, ...]]]:
        """The queries, in drop order, that list candidates oldest first: superseded records of every
        superseding kind, then heartbeats, then the rest of every droppable kind."""
        droppable = [kind for (kind,) in db.execute(_KINDS) if rule_for(kind).droppable]
        superseding = [kind for kind in droppable if rule_for(kind).superseded_by_newer]
        by_kind = "SELECT seq, kind, size FROM outbox WHERE kind = ? ORDER BY seq"
        tiers: list[tuple[str, tuple[str, ...]]] = [
            (
                "SELECT seq, kind, size FROM outbox WHERE kind = ?"
                " AND seq < (SELECT MAX(seq) FROM outbox WHERE kind = ?) ORDER BY seq",
                (kind, kind),
            )
            for kind in superseding
        ]
        tiers += [(by_kind, (HEARTBEAT,))] if HEARTBEAT in droppable else []
        tiers += [(by_kind, (kind,)) for kind in droppable if kind != HEARTBEAT]
        return tiers

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
            db.execute(
                "INSERT INTO link (only_row, last_delivered_at) VALUES (1, ?)"
                " ON CONFLICT (only_row) DO UPDATE SET last_delivered_at = excluded.last_delivered_at",
                (self._clock(),),
            )

    def discard(self, kind: str) -> int:
        """Drops every queued record of `kind` that is no longer to be sent (lost-mode evidence once
        lost mode has ended: location evidence is sent only while the laptop is lost); how many."""
        with self._transaction() as db:
            return db.execute("DELETE FROM outbox WHERE kind = ?", (kind,)).rowcount

    def postpone(self, seq: int, until: float, reason: str = "") -> None:
        """Tried later; `reason` (why this attempt failed) is kept as the last failure for `status`."""
        with self._transaction() as db:
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ? WHERE seq = ?", (until, seq)
            )
            db.execute(
                "INSERT INTO link (only_row, last_failure_at, last_failure) VALUES (1, ?, ?)"
                " ON CONFLICT (only_row) DO UPDATE SET last_failure_at = excluded.last_failure_at,"
                " last_failure = excluded.last_failure",
                (self._clock(), reason[:PROBLEM_TEXT_MAX] or "no reason given"),
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
            # Refused sign-offs are kept whatever their number: they are what IT must see.
            db.execute(
                "DELETE FROM rejected WHERE kind NOT IN (SELECT value FROM json_each(?))"
                " AND seq NOT IN (SELECT seq FROM rejected ORDER BY seq DESC LIMIT ?)",
                (json.dumps(never_dropped_kinds()), REJECTED_KEPT),
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
            dropped_total = {
                kind: count
                for kind, count in db.execute("SELECT kind, count FROM dropped_total ORDER BY kind")
            }
        return OutboxStats(queued, total_bytes, oldest, rejected, dropped, dropped_total, self.max_bytes)

    # --- the agent's own problems, and the link's last failure ------------------------------------

    def note_problem(self, key: str, text: str) -> None:
        """Kept for `status`, and carried (once per new text) to the server in the next report or
        heartbeat. Noting the same text again changes nothing."""
        text = "".join(ch if ch.isprintable() else " " for ch in text)[:PROBLEM_TEXT_MAX] or key
        with self._transaction() as db:
            db.execute(
                "INSERT INTO problems (key, text, noted_at, reported_at) VALUES (?, ?, ?, NULL)"
                " ON CONFLICT (key) DO UPDATE SET text = excluded.text, noted_at = excluded.noted_at,"
                " reported_at = NULL WHERE problems.text != excluded.text",
                (key, text, self._clock()),
            )

    def clear_problem(self, key: str) -> None:
        """The problem is gone: if it comes back, it is reported again."""
        with self._transaction() as db:
            db.execute("DELETE FROM problems WHERE key = ?", (key,))

    def problems(self) -> list[LocalProblem]:
        with self._reading() as db:
            rows = db.execute("SELECT key, text, noted_at, reported_at FROM problems ORDER BY key").fetchall()
        return [LocalProblem(key, text, noted_at, reported_at) for key, text, noted_at, reported_at in rows]

    def link_state(self) -> LinkState:
        with self._reading() as db:
            row = db.execute("SELECT last_delivered_at, last_failure_at, last_failure FROM link").fetchone()
        return LinkState(*row) if row else LinkState(None, None, None)

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
