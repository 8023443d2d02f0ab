"""Enrolment tokens: made, listed and revoked, for `homeroom-server token` and the console alike.

A token is shown once, when it is made: only its SHA-256 is stored, so the database alone cannot
enrol a laptop, and a list of tokens names each by its number, school and dates, never its text.
Enrolment (`server.fleet.claims`) refuses a revoked or expired token with a message that says so.
Every change is audited with who made it and from where.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import ColumnElement, Connection, insert, select, update

from server.auth import new_token, token_hash, utc
from server.db.tables import AUDIT, ENROLMENT_TOKENS
from server.errors import CommandError

GROUP_MAX = 100  # devices.group_name and enrolment_tokens.group_name
EXPIRES_MAX_DAYS = 3650


@dataclass(frozen=True)
class TokenRow:
    id: int
    group: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def state(self, now: datetime) -> str:
        """ "active", "revoked" or "expired": what enrolment would make of it now."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


@dataclass(frozen=True)
class NewToken:
    """The token's text (to show once) and its row."""

    token: str
    row: TokenRow


def _audit(
    connection: Connection, actor: str, action: str, detail: dict[str, object], address: str | None
) -> None:
    connection.execute(
        insert(AUDIT).values(
            at=datetime.now(timezone.utc), actor=actor, action=action, detail=detail, address=address
        )
    )


def _row(found: Any) -> TokenRow:
    return TokenRow(
        id=found.id,
        group=found.group_name,
        created_at=utc(found.created_at),
        expires_at=utc(found.expires_at) if found.expires_at else None,
        revoked_at=utc(found.revoked_at) if found.revoked_at else None,
    )


def checked_group(group: str) -> str:
    """A school's name as typed: trimmed, not empty, not over the column, no control characters."""
    name = group.strip()
    if not name:
        raise CommandError("name the school (group) devices enrolled with the token join")
    if len(name) > GROUP_MAX:
        raise CommandError(f"the school's name is {len(name)} characters: keep it to {GROUP_MAX}")
    if any(ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 for char in name):
        raise CommandError("the school's name holds a control character")
    return name


def create_token(
    connection: Connection, group: str, expires_days: int | None, actor: str, address: str | None
) -> NewToken:
    """A new token for `group`, valid for `expires_days` (None: until revoked); audited."""
    group = checked_group(group)
    if expires_days is not None and not 1 <= expires_days <= EXPIRES_MAX_DAYS:
        raise CommandError(f"the expiry must be between 1 and {EXPIRES_MAX_DAYS} days")
    now = datetime.now(timezone.utc)
    token = new_token()
    expires = now + timedelta(days=expires_days) if expires_days else None
    inserted = connection.execute(
        insert(ENROLMENT_TOKENS).values(
            token_hash=token_hash(token), group_name=group, created_at=now, expires_at=expires
        )
    ).inserted_primary_key
    assert inserted is not None  # an INSERT of one row always has its key
    created = int(inserted[0])
    _audit(
        connection,
        actor,
        "token.created",
        {"token": created, "group": group, "expires_at": expires and expires.isoformat()},
        address,
    )
    return NewToken(token, TokenRow(created, group, now, expires, None))


def list_tokens(connection: Connection) -> list[TokenRow]:
    """Every token, newest first (never its text: only the hash is stored)."""
    rows = connection.execute(select(ENROLMENT_TOKENS).order_by(ENROLMENT_TOKENS.c.id.desc()))
    return [_row(row) for row in rows]


def _revoke(connection: Connection, where: ColumnElement[bool], actor: str, address: str | None) -> TokenRow:
    found = connection.execute(select(ENROLMENT_TOKENS).where(where)).first()
    if found is None:
        raise CommandError("no such enrolment token")
    row = _row(found)
    if row.revoked_at is not None:
        return row  # revoking twice changes nothing and is not audited twice
    now = datetime.now(timezone.utc)
    connection.execute(update(ENROLMENT_TOKENS).where(ENROLMENT_TOKENS.c.id == row.id).values(revoked_at=now))
    _audit(connection, actor, "token.revoked", {"token": row.id, "group": row.group}, address)
    return TokenRow(row.id, row.group, row.created_at, row.expires_at, now)


def revoke_by_text(connection: Connection, token: str, actor: str, address: str | None) -> TokenRow:
    """What `homeroom-server token revoke TOKEN` does: the token is named by its text."""
    return _revoke(connection, ENROLMENT_TOKENS.c.token_hash == token_hash(token), actor, address)


def revoke_by_id(connection: Connection, token_id: int, actor: str, address: str | None) -> TokenRow:
    """What the console does: a token is named by its number (its text was shown only once)."""
    return _revoke(connection, ENROLMENT_TOKENS.c.id == token_id, actor, address)
