"""Per-user tokens for the admin API: made, listed and revoked by their own user (console page or
`homeroom-server users token …`), carried as `Authorization: Bearer …`.

A token is 32 random bytes; the table keeps only its SHA-256 (a random secret of that length needs
no slow hash: nothing can be guessed from the digest), so a copy of the database opens nothing.
It is shown once, when made. It never carries a role of its own: each request acts with its user's
role and schools as they are then, so a role change narrows the token at once, and disabling the
user or revoking the token answers 401 from the next request on, in every server process.
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import Connection, insert, select, update

from server.console import audit_log
from server.console.tables import API_TOKENS
from server.errors import CommandError

PREFIX = "hrk_"  # says what a leaked string is, for people and for secret scanners
NAME_LENGTH = 100
# The longest header value worth hashing: a real token is 47 characters.
LONGEST = 200
# last_used_at is written at most this often, not on every request.
TOUCH_EVERY = timedelta(minutes=1)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def checked_name(text: str) -> str:
    """What the token is for ("dashboard at the district office"): shown in lists, so printable."""
    name = text.strip()
    if not name:
        raise CommandError("give the token a name that says what uses it (e.g. 'district dashboard')")
    if len(name) > NAME_LENGTH:
        raise CommandError(f"a token's name is at most {NAME_LENGTH} characters")
    if any(unicodedata.category(character) in ("Cc", "Cf", "Cs", "Co", "Cn") for character in name):
        raise CommandError("a token's name cannot hold control or formatting characters")
    return name


@dataclass(frozen=True)
class TokenRow:
    id: int
    name: str
    created_at: str
    last_used_at: str | None
    revoked: bool


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).isoformat(timespec="seconds")


def create(
    connection: Connection, admin_id: int, email: str, name: str, actor: str, address: str | None
) -> tuple[int, str]:
    """(its id, the token): the token is returned here once and never stored."""
    name = checked_name(name)
    token = PREFIX + secrets.token_urlsafe(32)
    token_id = connection.execute(
        insert(API_TOKENS)
        .values(
            admin_id=admin_id, token_hash=token_hash(token), name=name, created_at=datetime.now(timezone.utc)
        )
        .returning(API_TOKENS.c.id)
    ).scalar_one()
    audit_log.record(
        connection, actor, "api_token.created", {"user": email, "token": int(token_id), "name": name}, address
    )
    return int(token_id), token


def revoke(
    connection: Connection, admin_id: int, email: str, token_id: int, actor: str, address: str | None
) -> None:
    """Only the user's own token: another's id is answered as a token that does not exist."""
    done = connection.execute(
        update(API_TOKENS)
        .where(
            API_TOKENS.c.id == token_id, API_TOKENS.c.admin_id == admin_id, API_TOKENS.c.revoked_at.is_(None)
        )
        .values(revoked_at=datetime.now(timezone.utc))
    )
    if not done.rowcount:
        raise CommandError(f"{email} has no token {token_id} in use (`users token list {email}` lists them)")
    audit_log.record(connection, actor, "api_token.revoked", {"user": email, "token": token_id}, address)


def list_tokens(connection: Connection, admin_id: int) -> list[TokenRow]:
    rows = connection.execute(
        select(API_TOKENS).where(API_TOKENS.c.admin_id == admin_id).order_by(API_TOKENS.c.id)
    )
    return [
        TokenRow(
            row.id, row.name, _iso(row.created_at) or "", _iso(row.last_used_at), row.revoked_at is not None
        )
        for row in rows
    ]


@dataclass(frozen=True)
class FoundToken:
    id: int
    admin_id: int
    needs_touch: bool


def find(connection: Connection, token: str, now: datetime) -> FoundToken | None:
    """The token in use that `token` is, or None (unknown, malformed or revoked: the same answer)."""
    if not token.startswith(PREFIX) or len(token) > LONGEST:
        return None
    row = connection.execute(
        select(
            API_TOKENS.c.id, API_TOKENS.c.admin_id, API_TOKENS.c.last_used_at, API_TOKENS.c.revoked_at
        ).where(API_TOKENS.c.token_hash == token_hash(token))
    ).first()
    if row is None or row.revoked_at is not None:
        return None
    used = row.last_used_at
    if used is not None and used.tzinfo is None:
        used = used.replace(tzinfo=timezone.utc)
    return FoundToken(row.id, row.admin_id, used is None or now - used >= TOUCH_EVERY)


def touch(connection: Connection, token_id: int, now: datetime) -> None:
    connection.execute(update(API_TOKENS).where(API_TOKENS.c.id == token_id).values(last_used_at=now))
