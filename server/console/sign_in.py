"""One sign-in attempt, decided in one transaction: lockout first, then the password.

An unknown or disabled account costs the same argon2 verification as a real one and gets the
same answer, so neither the answer nor its time tells a stranger which e-mail addresses exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, func, select

from server.auth import hash_password, password_matches
from server.console import audit_log, lockout, sessions
from server.console.tables import ADMINS

# Verified against when the account does not exist, so the answer takes as long.
_NO_ACCOUNT_HASH = hash_password("no such account: this hash is only ever compared against")

NOT_ACCEPTED = "That e-mail and password were not accepted."


@dataclass(frozen=True)
class Outcome:
    token: str | None = None
    locked_for: timedelta | None = None
    message: str = ""


def attempt(connection: Connection, email_text: str, password: str, address: str, now: datetime) -> Outcome:
    email = email_text.replace("\x00", "").strip().lower()[:100]
    keys = [lockout.account_key(email), lockout.address_key(address.replace("\x00", ""))]
    locked = lockout.locked_for(connection, keys, now)
    if locked is not None:
        audit_log.record(connection, "anonymous", "console.sign_in_locked", {"email": email}, address)
        return Outcome(locked_for=locked, message=_locked_message(locked))
    row = connection.execute(select(ADMINS).where(func.lower(ADMINS.c.username) == email)).first()
    usable = row is not None and row.disabled_at is None
    matches = password_matches(row.password_hash if usable and row else _NO_ACCOUNT_HASH, password)
    if not (usable and matches) or row is None:
        reason = (
            "wrong password" if usable else ("account disabled" if row is not None else "no such account")
        )
        audit_log.record(
            connection, "anonymous", "console.sign_in_failed", {"email": email, "reason": reason}, address
        )
        lockout.note_failure(connection, keys[0], lockout.ACCOUNT_RULE, now)
        lockout.note_failure(connection, keys[1], lockout.ADDRESS_RULE, now)
        return Outcome(message=NOT_ACCEPTED)
    lockout.clear(connection, keys[0])
    token = sessions.start(connection, row.id, address, now)
    audit_log.record(connection, audit_log.actor_for(row.username), "console.signed_in", {}, address)
    return Outcome(token=token)


def _locked_message(left: timedelta) -> str:
    minutes = max(1, -(-int(left.total_seconds()) // 60))
    return (
        "Too many failed sign-ins for this account or from this address. "
        f"Try again in {minutes} minute{'s' if minutes > 1 else ''}, or ask a district administrator "
        "to set a new password (`homeroom-server users password EMAIL`)."
    )
