"""A 2xx on SQLite is kept through a power cut: every commit syncs the log (synchronous=FULL).

A power cut cannot be staged here, so this reads what SQLite was told. With NORMAL, WAL mode keeps
a commit through a crash of the server process (the kill -9 test in tests/end_to_end) but may lose
the last ones when the machine itself goes down, after the agents were told their records were kept.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from server.db.engine import make_engine


@pytest.mark.parametrize("for_server", [True, False], ids=["serving", "commands"])
def test_every_sqlite_connection_syncs_each_commit(tmp_path: Path, for_server: bool) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'homeroom.db'}", for_server=for_server)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
            assert connection.execute(text("PRAGMA synchronous")).scalar_one() == 2  # FULL
    finally:
        engine.dispose()
