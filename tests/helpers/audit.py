"""What reached the server's audit log, read from its database (the log IT reads)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from server.db.engine import make_engine
from server.db.models import AuditEntry, Report
from tests.helpers.servers import ServerProcess


def audit_details(server: ServerProcess, action: str) -> list[dict[str, Any]]:
    engine = make_engine(server.database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(AuditEntry.detail).where(AuditEntry.action == action).order_by(AuditEntry.id)
            ).all()
    finally:
        engine.dispose()
    return [dict(row[0]) for row in rows]


def stored_report_count(server: ServerProcess) -> int:
    engine = make_engine(server.database_url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(Report)).scalar_one())
    finally:
        engine.dispose()
