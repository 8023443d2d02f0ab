"""How many bytes a database holds: what `bench_server.py` and the storage tests measure per report.

SQLite: the pages its tables and indexes use (`dbstat`, read through the WAL, so no checkpoint is
needed while the server runs). PostgreSQL: every table's `pg_total_relation_size` (heap, indexes
and TOAST) in the public schema. Both count whole pages, as the disk does.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def stored_bytes(database_url: str) -> int:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        database = sqlite3.connect(f"file:{url.database}?mode=ro", uri=True)
        try:
            return int(database.execute("SELECT coalesce(sum(pgsize), 0) FROM dbstat").fetchone()[0])
        finally:
            database.close()
    engine = create_engine(url.set(drivername="postgresql+psycopg"))
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    text(
                        "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                        "JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE n.nspname = 'public' AND c.relkind = 'r'"
                    )
                ).scalar_one()
            )
    finally:
        engine.dispose()
