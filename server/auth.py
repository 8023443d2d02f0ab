"""Who may do what: enrolment tokens, administrator passwords, and device request signatures."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, Engine, Table, bindparam, delete, select
from sqlalchemy.orm import Session

from contract.wire import load_public_key, signature_valid, signing_string
from server.db.models import Device, SeenRequest
from server.db.statements import insert_if_new
from server.errors import RequestRefused

SEEN_REQUESTS: Table = SeenRequest.__table__  # type: ignore[assignment]
_DEVICE_KEY = select(Device.id, Device.group_name, Device.public_key).where(
    Device.id == bindparam("device_id")
)

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except VerificationError:
        return False


def new_token() -> str:
    """A recognisable prefix, and never a leading "-" that a command line would take for an option."""
    return "hr_" + secrets.token_urlsafe(24)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def utc(moment: datetime) -> datetime:
    """SQLite hands datetimes back without a zone; everything stored is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class SignedRequest:
    device_id: str
    timestamp: str
    request_id: str
    signature: str
    method: str
    path: str
    body: bytes


# A device id to (id, group name, public key text), or None for an unknown device.
DeviceLookup = Callable[[str], tuple[str, str, str] | None]


def device_lookup(engine: Engine) -> DeviceLookup:
    """Reads one device's key in a short read-only transaction of its own (no write lock on SQLite)."""

    def lookup(device_id: str) -> tuple[str, str, str] | None:
        with engine.connect().execution_options(homeroom_read_only=True) as connection:
            row = connection.execute(_DEVICE_KEY, {"device_id": device_id}).first()
        return (row.id, row.group_name, row.public_key) if row else None

    return lookup


@dataclass(frozen=True)
class KnownDevice:
    id: str
    group_name: str
    public_key: Ed25519PublicKey


class DeviceAuthenticator:
    """Checks signature, clock and request id; caches device keys for a short while.

    The cache is what lets one process verify a thousand heartbeats a second.
    A key replaced by re-enrolment through another process is picked up at the
    latest after `cache_seconds`, and at once when a signature does not verify.
    """

    def __init__(
        self, max_skew_seconds: int, cache_seconds: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.max_skew = max_skew_seconds
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._cache: dict[str, tuple[float, KnownDevice]] = {}
        self._lock = threading.Lock()
        self._last_prune = 0.0

    def forget(self, device_id: str) -> None:
        with self._lock:
            self._cache.pop(device_id, None)

    def _load(self, lookup: DeviceLookup, device_id: str) -> KnownDevice | None:
        row = lookup(device_id)
        if row is None:
            return None
        known = KnownDevice(row[0], row[1], load_public_key(row[2]))
        with self._lock:
            self._cache[device_id] = (self.clock(), known)
        return known

    def _cached(self, device_id: str) -> KnownDevice | None:
        with self._lock:
            entry = self._cache.get(device_id)
        if entry and self.clock() - entry[0] < self.cache_seconds:
            return entry[1]
        return None

    def verify(self, signed: SignedRequest, lookup: DeviceLookup) -> KnownDevice:
        """Clock and signature, before anything parses the body; raises RequestRefused with the reason.

        `lookup` reads a device's key from the database, and is called only when the
        key is not cached or the cached one does not verify (it may have been replaced).
        """
        try:
            timestamp = int(signed.timestamp)
        except ValueError:
            raise RequestRefused(401, "X-Homeroom-Timestamp must be whole seconds since 1970") from None
        now = self.clock()
        skew = timestamp - now
        if abs(skew) > self.max_skew:
            raise RequestRefused(
                401,
                f"request timestamp is {abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} the server's "
                f"clock (limit {self.max_skew} s): set the laptop's clock automatically",
            )
        message = signing_string(signed.method, signed.path, timestamp, signed.request_id, signed.body)
        device = self._cached(signed.device_id)
        if device is None or not signature_valid(device.public_key, signed.signature, message):
            device = self._load(lookup, signed.device_id)
            if device is None:
                raise RequestRefused(401, "unknown device: enrol it again with `homeroom-agent enroll`")
            if not signature_valid(device.public_key, signed.signature, message):
                raise RequestRefused(401, "bad signature: the request was altered or signed with another key")
        return device

    def record(self, connection: Connection, signed: SignedRequest, device: KnownDevice) -> None:
        """Records the request id in `connection`'s transaction, so it is kept exactly when the work the
        request asked for is kept; a request id seen before is refused (409)."""
        seen = {"request_id": signed.request_id, "device_id": device.id, "seen_at": _now()}
        if not insert_if_new(connection, SEEN_REQUESTS, seen):
            raise RequestRefused(409, "request id already used: a request cannot be replayed")
        self._prune(connection, self.clock())

    def _prune(self, connection: Connection, now: float) -> None:
        """Forget request ids older than twice the skew window: their timestamps are refused anyway."""
        if now - self._last_prune < 60:
            return
        self._last_prune = now
        cutoff = _now() - timedelta(seconds=2 * self.max_skew)
        connection.execute(delete(SEEN_REQUESTS).where(SEEN_REQUESTS.c.seen_at < cutoff))


def _now() -> datetime:
    return datetime.now(timezone.utc)


def make_session_factory(engine: Engine) -> Callable[[], Session]:
    def factory() -> Session:
        return Session(engine, expire_on_commit=False)

    return factory
