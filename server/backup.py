"""`homeroom-server backup FILE` and `restore FILE`: the SQLite database copied whole, while it serves.

A copy made with `cp` while the server writes can catch half a transaction, and misses what is
still in the write-ahead log. SQLite's online backup API (`sqlite3.Connection.backup`) copies every
page in one step inside one read transaction: in WAL mode that is a consistent snapshot, and the
server's writers go on meanwhile. The copy is turned into a single self-contained file (rollback
journal, no `-wal` beside it) and checked before it is renamed into place, so FILE is either a
whole database or absent.

Restoring uses the same API in the other direction, into the database file itself: SQLite's own
locking makes the change atomic for every connection, where renaming a file over the database
would leave a running server writing into the old inode and a stale `-wal` to be replayed into
the new one. Each `serve` holds a shared lock on `<database>.serving`; `restore` takes it
exclusively, so it refuses while a server runs unless told (`--force`), and no server starts
half-way through a restore. What the database held before is kept beside it.

PostgreSQL has its own tools (`pg_dump`, see README): these commands say so.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from server.db.engine import MIGRATIONS
from server.errors import CommandError

SQLITE_MAGIC = b"SQLite format 3\x00"
LOCK_SUFFIX = ".serving"
# Waiting for a writer's transaction to end before the read snapshot can begin.
BUSY_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Summary:
    devices: int
    revision: str
    size: int


def sqlite_file(url: str) -> Path:
    """The database file behind a sqlite:/// URL; any other database is refused with what to use."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        raise CommandError(
            "this server uses PostgreSQL: back it up with `pg_dump --format=custom` and restore with "
            "`pg_restore` (README: Backing up the server)"
        )
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        raise CommandError(f"backup and restore work on a SQLite file, not {parsed.render_as_string()}")
    return Path(parsed.database)


def _scripts() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config)


def known_revisions() -> set[str]:
    return {revision.revision for revision in _scripts().walk_revisions()}


def head_revision() -> str:
    head = _scripts().get_current_head()
    assert head is not None, "the migrations have a head"
    return head


# ---- the lock a serving process holds -------------------------------------------------------


class ServingLock:
    """A lock file beside the database: shared by each `serve`, exclusive for a `restore`.

    fcntl locks end with the process that holds them, so a server killed with -9 leaves no stale
    lock behind (a pid file would).
    """

    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + LOCK_SUFFIX)
        self._file: IO[bytes] | None = None

    def take(self, exclusive: bool) -> bool:
        """True once held; False if someone else's lock is in the way (never waits)."""
        import fcntl  # the server runs on Linux; imported here so the module loads anywhere

        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("ab")
        try:
            fcntl.flock(handle, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def hold_while_serving(url: str) -> ServingLock | None:
    """What `serve` calls before it starts: a shared lock on a SQLite database (None otherwise)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    lock = ServingLock(Path(parsed.database))
    if not lock.take(exclusive=False):
        raise CommandError(f"a restore into {parsed.database} is under way: start the server when it ends")
    return lock


# ---- reading a database file ---------------------------------------------------------------


def _open_read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_SECONDS)


def check_homeroom_database(path: Path) -> Summary:
    """Refuses, with why, anything that is not a whole Homeroom database this version can serve."""
    if not path.is_file():
        raise CommandError(f"{path}: no such file")
    with path.open("rb") as handle:
        if handle.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
            raise CommandError(f"{path} is not a SQLite database (not a file `homeroom-server backup` made)")
    try:
        connection = _open_read_only(path)
        try:
            return _summary(connection, path)
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        raise CommandError(f"{path} cannot be read as a database ({exc}): it is damaged") from None


def _summary(connection: sqlite3.Connection, path: Path) -> Summary:
    verdict = connection.execute("PRAGMA quick_check").fetchone()[0]
    if verdict != "ok":
        raise CommandError(f"{path} is damaged (SQLite's check says: {verdict})")
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "alembic_version" not in tables or "devices" not in tables:
        raise CommandError(f"{path} is a SQLite database but not a Homeroom one (no schema version)")
    row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    revision = str(row[0]) if row else ""
    if revision not in known_revisions():
        raise CommandError(
            f"{path} has schema version {revision or 'none'}, which this Homeroom does not know: "
            "it was made by a newer Homeroom; upgrade this server first"
        )
    devices = int(connection.execute("SELECT count(*) FROM devices").fetchone()[0])
    return Summary(devices=devices, revision=revision, size=path.stat().st_size)


# ---- backup ---------------------------------------------------------------------------------


def _fsync_directory(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def copy_database(database: Path, target: Path) -> Summary:
    """A consistent copy of `database` (which may be serving) at `target`, which must not exist."""
    if target.exists():
        raise CommandError(f"{target} already exists: give a new file name (a backup never overwrites)")
    if not database.is_file():
        raise CommandError(f"no database at {database}: nothing to back up")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        source = sqlite3.connect(database, timeout=BUSY_TIMEOUT_SECONDS)
        try:
            copy = sqlite3.connect(partial)
            try:
                source.backup(copy)  # all pages in one step: one read transaction, one snapshot
            finally:
                copy.close()
        finally:
            source.close()
        # The copied header still says WAL (the source's mode): opened again, it is switched to a
        # rollback journal, so the backup is one self-contained file with no -wal beside it.
        copy = sqlite3.connect(partial)
        try:
            copy.execute("PRAGMA journal_mode=DELETE")
            summary = _summary(copy, partial)
        finally:
            copy.close()
        with partial.open("rb+") as written:
            os.fsync(written.fileno())
        os.replace(partial, target)
        _fsync_directory(target.parent)
    except sqlite3.Error as exc:
        raise CommandError(f"cannot copy {database}: {exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    return Summary(summary.devices, summary.revision, target.stat().st_size)


def backup(url: str, target: Path) -> str:
    database = sqlite_file(url)
    summary = copy_database(database, target)
    return (
        f"Backed up {database} to {target}: {summary.devices} devices, {summary.size // 1024} KiB, "
        f"schema {summary.revision}. Restore it with `homeroom-server restore {target}`."
    )


# ---- restore --------------------------------------------------------------------------------


def _kept_copy_name(database: Path, now: datetime) -> Path:
    name = f"{database.name}.before-restore-{now:%Y%m%dT%H%M%SZ}"
    kept, number = database.with_name(name), 1
    while kept.exists():  # two restores within a second
        kept, number = database.with_name(f"{name}.{number}"), number + 1
    return kept


def restore(url: str, source: Path, force: bool, now: datetime | None = None) -> str:
    database = sqlite_file(url)
    if source.resolve() == database.resolve():
        raise CommandError(f"{source} is the server's database itself: give a backup file")
    summary = check_homeroom_database(source)
    lock = ServingLock(database)
    exclusive = lock.take(exclusive=True)
    if not exclusive and not force:
        raise CommandError(
            f"a `homeroom-server serve` is using {database}: stop it first (`systemctl stop "
            "homeroom-server`), or pass --force to restore into the running database (whatever "
            "laptops sent since the backup is then lost; the previous database is kept either way)"
        )
    try:
        lines = _restore_into(database, source, now or datetime.now(timezone.utc))
    finally:
        lock.release()
    lines.insert(
        0, f"Restored {source} into {database}: {summary.devices} devices, schema {summary.revision}."
    )
    if summary.revision != head_revision():
        lines.append("Its schema is older than this Homeroom's: run `homeroom-server init` before serving.")
    if not exclusive:
        lines.append(
            "The running server now reads the restored data; restart it (`systemctl restart "
            "homeroom-server`) so no process keeps a cached device or requirements from before."
        )
    return "\n".join(lines)


def _restore_into(database: Path, source: Path, now: datetime) -> list[str]:
    lines: list[str] = []
    if database.is_file():
        kept = _kept_copy_name(database, now)
        copy_database(database, kept)
        lines.append(f"The database as it was is kept in {kept}.")
    database.parent.mkdir(parents=True, exist_ok=True)
    try:
        reader = _open_read_only(source)
        try:
            writer = sqlite3.connect(database, timeout=BUSY_TIMEOUT_SECONDS)
            try:
                reader.backup(writer)  # atomic for every other connection: SQLite locks the target
                writer.execute("PRAGMA journal_mode=WAL")  # as the server keeps it
                verdict = writer.execute("PRAGMA quick_check").fetchone()[0]
            finally:
                writer.close()
        finally:
            reader.close()
    except sqlite3.Error as exc:
        raise CommandError(
            f"cannot restore into {database}: {exc} (the database as it was is kept)"
        ) from None
    if verdict != "ok":
        raise CommandError(
            f"the restored database fails SQLite's check ({verdict}); the previous copy is kept"
        )
    return lines
