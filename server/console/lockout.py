"""Back-off after failed sign-ins, per account and per address, kept in the shared database.

Why not `limits` or slowapi: they count requests in memory, Redis or Memcached, so two server
processes on one PostgreSQL database would each allow the full count, and a restart forgets it.
The rule is a pure function; the counts live in `sign_in_failures`.

A locked key is refused before the password is checked (so guessing stops for real) and the
attempt is not counted (so a stranger cannot keep a teacher's account locked for longer than the
longest lock). An account that does not exist is counted and locked like one that does, so the
answers do not tell which accounts exist. A success clears the account's count, not the
address's: one valid account must not reset an address that is guessing others.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import Connection, delete, select, update

from server.console.tables import FAILURES
from server.db.statements import insert_if_new


@dataclass(frozen=True)
class LockoutRule:
    free_attempts: int
    first_lock: timedelta
    longest_lock: timedelta
    # A count with no new failure for this long starts again from nothing.
    forget_after: timedelta = timedelta(hours=24)

    def locked_until(self, failures: int, now: datetime) -> datetime | None:
        """After `failures` in a row: free attempts, then a lock that doubles with each failure."""
        if failures < self.free_attempts:
            return None
        doublings = min(failures - self.free_attempts, 20)
        lock = min(self.first_lock * (2**doublings), self.longest_lock)
        until: datetime = now + lock
        return until


# Five tries for a forgotten password; a school's NAT puts many people behind one address.
ACCOUNT_RULE = LockoutRule(free_attempts=5, first_lock=timedelta(minutes=1), longest_lock=timedelta(hours=1))
ADDRESS_RULE = LockoutRule(free_attempts=20, first_lock=timedelta(minutes=1), longest_lock=timedelta(hours=1))


def account_key(email: str) -> str:
    return "account:" + email.strip().lower()[:280]


def address_key(address: str) -> str:
    return "address:" + address[:280]


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def locked_for(connection: Connection, keys: list[str], now: datetime) -> timedelta | None:
    """How long the longest lock among `keys` still lasts, or None when none is locked."""
    longest: timedelta | None = None
    for row in connection.execute(select(FAILURES).where(FAILURES.c.key.in_(keys))):
        if row.locked_until is not None and _utc(row.locked_until) > now:
            left = _utc(row.locked_until) - now
            longest = left if longest is None or left > longest else longest
    return longest


def note_failure(connection: Connection, key: str, rule: LockoutRule, now: datetime) -> datetime | None:
    row = connection.execute(select(FAILURES).where(FAILURES.c.key == key).with_for_update()).first()
    failures = 1 if row is None or now - _utc(row.last_failure_at) >= rule.forget_after else row.failures + 1
    until = rule.locked_until(failures, now)
    values = {"failures": failures, "last_failure_at": now, "locked_until": until}
    # Two first failures at once: the second insert finds the row and counts as an update.
    if row is None and insert_if_new(connection, FAILURES, {"key": key, **values}):
        return until
    connection.execute(update(FAILURES).where(FAILURES.c.key == key).values(**values))
    return until


def clear(connection: Connection, key: str) -> None:
    connection.execute(delete(FAILURES).where(FAILURES.c.key == key))
