"""Server-side console sessions: a random token in an HttpOnly cookie, its SHA-256 in a table.

Why not starlette's SessionMiddleware: it keeps the session in a signed cookie on the client,
so a session cannot be ended from the server (sign-out only forgets the cookie in that browser;
a copied cookie keeps working until it expires) and disabling a user ends nothing. starsessions
keeps data server-side but only offers a key-value store per session id (no list of one user's
sessions to end, no idle and absolute expiry in the database several server processes share).
A table does all of that in a few statements, and every process behind a load balancer sees a
revocation at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import Connection, insert, select, update

from server.console.tables import SESSIONS

# Idle: a console left open on a shared desk; absolute: a working day.
IDLE_TIMEOUT = timedelta(minutes=60)
ABSOLUTE_TIMEOUT = timedelta(hours=12)
# last_used_at is written at most this often, not on every page.
TOUCH_EVERY = timedelta(minutes=1)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(session_token: str) -> str:
    """Bound to the session and derived from its token, which the database does not hold: a copy
    of the database gives neither the session nor its form token."""
    return hmac.new(session_token.encode(), b"homeroom-console-csrf", hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class OpenSession:
    id: int
    admin_id: int
    # last_used_at is older than TOUCH_EVERY: `touch` it (a write, done only then).
    needs_touch: bool = False


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def start(connection: Connection, admin_id: int, address: str | None, now: datetime) -> str:
    token = secrets.token_urlsafe(32)
    connection.execute(
        insert(SESSIONS).values(
            token_hash=token_hash(token),
            admin_id=admin_id,
            created_at=now,
            last_used_at=now,
            expires_at=now + ABSOLUTE_TIMEOUT,
            address=address,
        )
    )
    return token


def find(connection: Connection, token: str, now: datetime) -> OpenSession | None:
    """The session a cookie names, if it is neither revoked, nor idle too long, nor past its end."""
    row = connection.execute(select(SESSIONS).where(SESSIONS.c.token_hash == token_hash(token))).first()
    if row is None or row.revoked_at is not None:
        return None
    if now >= _utc(row.expires_at) or now - _utc(row.last_used_at) >= IDLE_TIMEOUT:
        return None
    return OpenSession(row.id, row.admin_id, now - _utc(row.last_used_at) >= TOUCH_EVERY)


def touch(connection: Connection, session_id: int, now: datetime) -> None:
    connection.execute(update(SESSIONS).where(SESSIONS.c.id == session_id).values(last_used_at=now))


def revoke(connection: Connection, session_id: int, now: datetime) -> None:
    connection.execute(
        update(SESSIONS)
        .where(SESSIONS.c.id == session_id, SESSIONS.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
