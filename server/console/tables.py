"""Core `Table` objects of the console's own tables (typed, as server/db/tables.py does)."""

from __future__ import annotations

from sqlalchemy import Table

from server.db.models import Admin, AdminSchool, ApiToken, ConsoleSession, ServerKey, SignInFailure

ADMINS: Table = Admin.__table__  # type: ignore[assignment]
ADMIN_SCHOOLS: Table = AdminSchool.__table__  # type: ignore[assignment]
SESSIONS: Table = ConsoleSession.__table__  # type: ignore[assignment]
FAILURES: Table = SignInFailure.__table__  # type: ignore[assignment]
SERVER_KEYS: Table = ServerKey.__table__  # type: ignore[assignment]
API_TOKENS: Table = ApiToken.__table__  # type: ignore[assignment]
