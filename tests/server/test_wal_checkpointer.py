"""A serving process copies SQLite's log back on a thread of its own (server/db/checkpointer.py),
and only then do its connections stop checkpointing at commit."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from sqlalchemy import text

from server.db.checkpointer import WalCheckpointer, checkpointed_here
from server.db.engine import make_engine
from tests.helpers.app_lifespan import seen_while_serving
from tests.helpers.servers import InitialisedDatabases


def autocheckpoint_of_a_server_connection(database: Path) -> int:
    engine = make_engine(f"sqlite:///{database}", for_server=True)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text("PRAGMA wal_autocheckpoint")).scalar_one())
    finally:
        engine.dispose()


def test_the_log_is_copied_back_by_the_thread_while_commits_never_checkpoint(tmp_path: Path) -> None:
    database = tmp_path / "homeroom.db"
    assert autocheckpoint_of_a_server_connection(database) == 1000  # no checkpointer: SQLite's own
    checkpointer = WalCheckpointer(str(database), every=0.05)
    checkpointer.start()
    try:
        assert checkpointed_here(str(database))
        assert autocheckpoint_of_a_server_connection(database) == 0
        writer = sqlite3.connect(database, isolation_level=None)
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute("PRAGMA wal_autocheckpoint=0")
        writer.execute("CREATE TABLE filler (bytes BLOB)")
        for _ in range(200):
            writer.execute("INSERT INTO filler VALUES (randomblob(16000))")  # 3.2 MB, past 1,000 pages
        deadline = time.monotonic() + 10
        while database.stat().st_size < 3_000_000 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert database.stat().st_size >= 3_000_000, "the log was not copied back into the file"
        writer.close()
    finally:
        checkpointer.stop()
    assert not checkpointed_here(str(database))
    assert autocheckpoint_of_a_server_connection(database) == 1000


def test_a_file_the_thread_cannot_open_yet_is_tried_again_and_never_created(tmp_path: Path) -> None:
    database = tmp_path / "later" / "homeroom.db"
    checkpointer = WalCheckpointer(str(database), every=0.05)
    checkpointer.start()
    try:
        time.sleep(0.3)
        assert checkpointer.checkpoints == 0
        assert not database.parent.exists()
        database.parent.mkdir()
        sqlite3.connect(database).execute("PRAGMA journal_mode=WAL").close()
        deadline = time.monotonic() + 10
        while checkpointer.checkpoints == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert checkpointer.checkpoints > 0
    finally:
        checkpointer.stop()


def test_the_server_checkpoints_while_it_serves_and_not_after(
    tmp_path: Path, initialised_databases: InitialisedDatabases
) -> None:
    database = tmp_path / "homeroom.db"
    assert seen_while_serving(database, initialised_databases, lambda: checkpointed_here(str(database)))
    assert not checkpointed_here(str(database))
