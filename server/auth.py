"""Who may do what: enrolment tokens, administrator passwords, and device request signatures."""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache, partial
from typing import Any, cast

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, Engine, Row, Table, bindparam, delete, func, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from contract.wire import (
    HEADER_DEVICE,
    HEADER_REQUEST_ID,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    Verifier,
    signature_valid,
    signing_string,
)
from server.cache_counts import CacheCounts
from server.db.among import among_parameter, parameter_list, text_array, text_array_parameter
from server.db.driver_statements import DriverStatement
from server.db.models import SeenRequest
from server.db.tables import DEVICES
from server.errors import RequestRefused
from server.fleet.claims import accept_claim, refuse_waiting_claims, undo_takeover, waiting_claims
from server.fleet.rekey import RekeyRule, claim_ripe
from server.group_commit import Once
from server.sodium_keys import DevicePublicKey, load_device_key

SEEN_REQUESTS: Table = SeenRequest.__table__  # type: ignore[assignment]

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

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], method: str, path: str, body: bytes) -> SignedRequest:
        """The request a client signed with `contract.wire.signed_headers` (benchmarks, tests)."""
        return cls(
            headers[HEADER_DEVICE],
            headers[HEADER_TIMESTAMP],
            headers[HEADER_REQUEST_ID],
            headers[HEADER_SIGNATURE],
            method,
            path,
            body,
        )


# The columns a signature check and what it may change (`_other_key`: undo a re-key, accept a claim)
# read: not the identity's JSON columns, which every lookup would otherwise decode.
_KEY_COLUMNS = (
    DEVICES.c.id,
    DEVICES.c.group_name,
    DEVICES.c.public_key,
    DEVICES.c.claims_pending,
    DEVICES.c.previous_public_key,
    DEVICES.c.previous_key_until,
    DEVICES.c.last_seen_at,
    DEVICES.c.hostname,
    DEVICES.c.agent_version,
    # What a heartbeat answers from besides its write (`KnownDevice.flags`).
    DEVICES.c.commands_pending,
    DEVICES.c.lost_case_id,
)
_DEVICE_ROW = DriverStatement(select(*_KEY_COLUMNS).where(DEVICES.c.id == bindparam("device_id")))


@lru_cache(maxsize=4)
def _device_rows(dialect: str) -> DriverStatement:
    """A batch's devices, in SQL whose text is the same for any number of them."""
    return DriverStatement(select(*_KEY_COLUMNS).where(among_parameter(DEVICES.c.id, "device_ids", dialect)))


@dataclass(frozen=True)
class DeviceRecord:
    """A device's row and, when claims wait on it, those claims: all a signature check needs."""

    row: Any  # a row of `_KEY_COLUMNS`, read by attribute
    claims: tuple[Row[Any], ...] = ()


# A device id to its record, or None for an unknown device.
DeviceLookup = Callable[[str], DeviceRecord | None]


class DeviceReader:
    """Reads one device in a read-only transaction on SQLite (no write lock), in no transaction on
    PostgreSQL (`_connect`).

    Called on every request whose key is not cached, which in a real fleet is nearly every one (a
    laptop heartbeats every 15 minutes; keys are cached for 30 s). Inside `batch()` (the database
    threads open it around a batch's signature checks) the lookups share one connection and one
    read transaction, opened at the first lookup: a connection checkout, a BEGIN and a ROLLBACK per
    batch rather than per request. The devices the batch names (`batch(device_ids)`) are read in
    one statement at its start: one round trip for the batch, not one per request. Outside a batch,
    each lookup has its own connection.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._local = threading.local()

    def __call__(self, device_id: str) -> DeviceRecord | None:
        if not getattr(self._local, "batched", False):
            with self._connect() as own:
                return _read_device(own, device_id)
        read: dict[str, DeviceRecord | None] = self._local.read
        if device_id in read:
            return read.pop(device_id)  # once: a second lookup (a key that did not verify) reads again
        try:
            return _read_device(self._shared(), device_id)
        except Exception:
            # This request gets the error (503 if the database is gone); the next lookup of the batch
            # starts on a new connection rather than in a failed transaction.
            self._drop()
            raise

    @contextmanager
    def batch(self, device_ids: Sequence[str] = ()) -> Iterator[None]:
        self._local.batched = True
        self._local.read = {}
        try:
            if device_ids:
                self._read_ahead(device_ids)
            yield
        finally:
            self._local.batched = False
            self._local.read = {}
            self._drop()

    def _read_ahead(self, device_ids: Sequence[str]) -> None:
        """The batch's devices in one statement; if it fails, each lookup tries on its own (and gets
        its own error)."""
        wanted = list(dict.fromkeys(device_ids))
        try:
            shared = self._shared()
            dialect = shared.dialect.name
            found = _device_rows(dialect).all(shared, {"device_ids": parameter_list(wanted, dialect)})
            rows = {row.id: row for row in found}
            self._local.read = {
                device_id: None if (row := rows.get(device_id)) is None else _record(shared, row)
                for device_id in wanted
            }
        except Exception:  # noqa: BLE001 - the lookups of the batch meet the error themselves
            self._local.read = {}
            self._drop()

    def _shared(self) -> Connection:
        shared: Connection | None = getattr(self._local, "connection", None)
        if shared is None:
            shared = self._local.connection = self._connect()
        return shared

    def _connect(self) -> Connection:
        connection = self.engine.connect().execution_options(homeroom_read_only=True)
        if connection.dialect.name == "postgresql":
            # No transaction around the reads (each is its own): no BEGIN and ROLLBACK, two round
            # trips a batch, and no snapshot held open while the batch's signatures are checked.
            # What the reads see is unchanged: under READ COMMITTED each statement of a transaction
            # took a snapshot of its own anyway.
            # Measured, PostgreSQL heartbeats, two interleaved pairs: 32 connections 2,251-2,277 ->
            # 2,530-2,674/s, 128 connections 3,447-3,625 -> 3,980-4,225/s; the database's CPU per
            # heartbeat 0.24-0.26 -> 0.18-0.19 ms at 32.
            return connection.execution_options(isolation_level="AUTOCOMMIT")
        return connection

    def _drop(self) -> None:
        connection, self._local.connection = getattr(self._local, "connection", None), None
        if connection is not None:
            with suppress(Exception):  # a broken connection is discarded by the pool either way
                connection.close()


def _read_device(connection: Connection, device_id: str) -> DeviceRecord | None:
    row = _DEVICE_ROW.first(connection, {"device_id": device_id})
    return None if row is None else _record(connection, row)


def _record(connection: Connection, row: Any) -> DeviceRecord:
    claims = tuple(waiting_claims(connection, row.id)) if row.claims_pending else ()
    return DeviceRecord(row, claims)


def device_lookup(engine: Engine) -> DeviceReader:
    return DeviceReader(engine)


@dataclass(frozen=True)
class KnownDevice:
    id: str
    group_name: str
    public_key: Verifier
    # Enrolment claims wait on this record: the current key's next request refuses them.
    claims_pending: bool = False
    # What a signature by another key than the current one changes (undo a re-key, accept a
    # claim), done in the request's transaction by `record`, never before the body is trusted.
    change: Callable[[Connection], None] | None = field(default=None, compare=False)
    # Read with the key for this very request (never from the cache): see `DeviceFlags`.
    flags: DeviceFlags | None = field(default=None, compare=False)


@dataclass(frozen=True)
class DeviceFlags:
    """Whether commands wait for the device and its open lost case, as read with its key for this
    request, after the request arrived: what a heartbeat answers (`fleet.ingest.record_heartbeat`), so
    that its own write is only the last-seen time and can go with the batch's others in one
    statement. A key from the cache carries none: the heartbeat then reads them as it writes."""

    commands_pending: bool
    lost_case_id: int | None


# Unknown device and wrong key get the same answer (and the same work: a signature check), so the
# API does not tell a stranger which device ids exist.
NOT_ACCEPTED = (
    "signature not accepted for this device: if the laptop was re-installed, enrol it again with "
    "`homeroom-agent enroll`; if its enrolment claim is waiting, it is accepted or refused soon"
)
# A real key (libsodium refuses a malformed one sooner than it checks a signature).
_NO_SUCH_KEY = DevicePublicKey(Ed25519PrivateKey.generate().public_key().public_bytes_raw())
REPLAYED = "request id already used: a request cannot be replayed"


@lru_cache(maxsize=4)
def _seen_insert(dialect: str) -> DriverStatement:
    """A batch's request ids in one statement, the new ones returned; its SQL is the same for any
    number of ids (PostgreSQL: arrays `unnest`ed; SQLite: `[request id, device id]` pairs of a JSON
    array), so it is compiled once and PostgreSQL prepares it once. Rows go in in the lists' order."""
    seen_at = bindparam("seen_at", type_=SEEN_REQUESTS.c.seen_at.type)
    columns = ["request_id", "device_id", "seen_at"]
    if dialect == "postgresql":
        lists = (
            func.unnest(text_array_parameter("request_ids"), text_array_parameter("device_ids"))
            .table_valued("request_id", "device_id")
            .render_derived()
        )
        rows = select(lists.c.request_id, lists.c.device_id, seen_at)
        statement: Any = postgresql.insert(SEEN_REQUESTS).from_select(columns, rows)
    else:
        pairs = func.json_each(bindparam("pairs")).table_valued("value")
        pair = pairs.c.value
        # `WHERE true`: SQLite reads an ON CONFLICT straight after a SELECT's FROM as a join's.
        rows = select(func.json_extract(pair, "$[0]"), func.json_extract(pair, "$[1]"), seen_at).where(true())
        statement = sqlite.insert(SEEN_REQUESTS).from_select(columns, rows)
    return DriverStatement(statement.on_conflict_do_nothing().returning(SEEN_REQUESTS.c.request_id))


def _seen_parameters(dialect: str, pairs: Sequence[tuple[str, str]], seen_at: datetime) -> dict[str, Any]:
    if dialect == "postgresql":
        return {
            "request_ids": text_array([request_id for request_id, _ in pairs]),
            "device_ids": text_array([device_id for _, device_id in pairs]),
            "seen_at": seen_at,
        }
    return {"pairs": json.dumps(pairs), "seen_at": seen_at}


class DeviceAuthenticator:
    """Checks signature, clock and request id; caches device keys for a short while.

    The cache is what lets one process verify a thousand heartbeats a second.
    A key replaced by re-enrolment through another process is picked up at the
    latest after `cache_seconds`, and at once when a signature does not verify.
    """

    def __init__(
        self,
        max_skew_seconds: int,
        cache_seconds: float,
        clock: Callable[[], float] = time.time,
        rekey: RekeyRule | None = None,
        counts: CacheCounts | None = None,
    ) -> None:
        self.rekey = rekey or RekeyRule()
        self.counts = counts
        self.max_skew = max_skew_seconds
        self.cache_seconds = cache_seconds
        self.clock = clock
        # No lock: every use is one dict operation (get, set, pop), atomic in CPython, and the event
        # loop reads it for every request (`is_cached`). Measured with a lock: the loop thread spent
        # a sixth of its time waiting for it, whenever a database thread lost the GIL holding it.
        self._cache: dict[str, tuple[float, KnownDevice]] = {}
        self._cache_swept = clock()
        self._last_prune = 0.0
        # Request ids, kept to once by the database threads for a whole batch at a time.
        self.once = Once(
            self._record_request_ids, lambda: RequestRefused(409, REPLAYED), device_of=_device_of
        )

    def forget(self, device_id: str) -> None:
        self._cache.pop(device_id, None)

    def _remember(self, row: Row[Any]) -> KnownDevice:
        known = KnownDevice(row.id, row.group_name, load_device_key(row.public_key), bool(row.claims_pending))
        if self.cache_seconds > 0:
            now = self.clock()
            self._cache[row.id] = (now, known)
            self._sweep(now)
        return known

    def cached_devices(self) -> int:
        return len(self._cache)

    def _sweep(self, now: float) -> None:
        """Drop the keys past their time, once per `cache_seconds`: a district's every laptop passes
        through the cache in 15 minutes, and kept, a million keys would stay in every worker.

        Each key is popped from the one dict (no copy put in its place), so a key `forget` dropped
        meanwhile never comes back; a key remembered again meanwhile may be dropped too, which costs
        a lookup."""
        if now - self._cache_swept < self.cache_seconds:
            return
        self._cache_swept = now
        for device_id, (remembered, _known) in list(self._cache.items()):  # a snapshot: one C call
            if now - remembered >= self.cache_seconds:
                self._cache.pop(device_id, None)

    def is_cached(self, device_id: str) -> bool:
        """Whether a request of this device would find its key without reading the database."""
        return self._cached(device_id) is not None

    def _cached(self, device_id: str) -> KnownDevice | None:
        entry = self._cache.get(device_id)
        if entry and self.clock() - entry[0] < self.cache_seconds:
            return entry[1]
        return None

    def verify(self, signed: SignedRequest, lookup: DeviceLookup) -> KnownDevice:
        """Clock and signature, before anything parses the body; raises RequestRefused with the reason.

        `lookup` reads a device from the database, and is called only when the key is not
        cached or the cached one does not verify (it may have been replaced). An unknown
        device and a wrong key get the same answer after the same work (`NOT_ACCEPTED`).
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
        if device is not None and signature_valid(device.public_key, signed.signature, message):
            if self.counts is not None:
                self.counts.hit()
        else:
            if self.counts is not None:
                self.counts.miss()
            found = lookup(signed.device_id)
            if found is None:
                signature_valid(_NO_SUCH_KEY, signed.signature, message)
                raise RequestRefused(401, NOT_ACCEPTED)
            device = self._remember(found.row)
            if not signature_valid(device.public_key, signed.signature, message):
                return self._other_key(found, signed.signature, message)
            row = found.row
            # Built, not `dataclasses.replace`d: a few µs less on nearly every request.
            device = KnownDevice(
                device.id,
                device.group_name,
                device.public_key,
                device.claims_pending,
                flags=DeviceFlags(bool(row.commands_pending), row.lost_case_id),
            )
        return device

    def once_key(self, signed: SignedRequest) -> tuple[Once, Hashable]:
        """What keeps `signed` to once (`group_commit.Once`): its request id, recorded in the transaction
        of its work, so the id is kept exactly when the work is; an id seen before is refused (409)."""
        return self.once, (signed.request_id, signed.device_id)

    def _record_request_ids(self, connection: Connection, keys: Sequence[Hashable]) -> list[bool]:
        pairs = [cast(tuple[str, str], key) for key in keys]
        now = _now()
        # In id order: two processes inserting the same ids (a replay sent to both) wait for each
        # other's rows in one order, never in a circle.
        dialect = connection.dialect.name
        parameters = _seen_parameters(dialect, sorted(pairs), now)
        new = {row.request_id for row in _seen_insert(dialect).all(connection, parameters)}
        kept = []
        for request_id, _device_id in pairs:
            kept.append(request_id in new)
            new.discard(request_id)  # the same id again in the same batch is a replay
        return kept

    def apply(self, connection: Connection, device: KnownDevice) -> None:
        """What the signing key changes (a re-key undone, a claim accepted, waiting claims refused), in
        the request's transaction; and now and then the request ids too old to matter are forgotten."""
        if device.change is not None:
            device.change(connection)
            self.forget(device.id)
        if device.claims_pending:
            refuse_waiting_claims(connection, device.id)
            self.forget(device.id)
        self._prune(connection, self.clock())

    def _other_key(self, found: DeviceRecord, signature: str, message: bytes) -> KnownDevice:
        """A signature by the key an automatic re-key replaced undoes the re-key; one by a claim's key
        that has waited out the quiet period takes the record (`server.fleet.rekey`). Only decided
        here; the change is made by `record`, in the request's transaction."""
        row = found.row
        now = _now()
        previous_until = utc(row.previous_key_until) if row.previous_key_until else None
        if (
            row.previous_public_key
            and previous_until is not None
            and previous_until > now
            and signature_valid(load_device_key(row.previous_public_key), signature, message)
        ):
            return KnownDevice(
                row.id,
                row.group_name,
                load_device_key(row.previous_public_key),
                change=lambda connection: undo_takeover(connection, row),
            )
        for claim in found.claims:
            if claim.waits_for != "quiet" or not signature_valid(
                load_device_key(claim.public_key), signature, message
            ):
                continue
            if not claim_ripe(utc(claim.created_at), _maybe_utc(row.last_seen_at), now, self.rekey):
                break
            return KnownDevice(
                row.id,
                claim.group_name,
                load_device_key(claim.public_key),
                change=partial(
                    accept_claim,
                    claim=claim,
                    device=row,
                    actor=f"device:{row.id}",
                    reason=f"claim {claim.id}: the old key stayed silent after the claim",
                    keep_old_until=now + self.rekey.keep,
                ),
            )
        raise RequestRefused(401, NOT_ACCEPTED)

    def _prune(self, connection: Connection, now: float) -> None:
        """Forget request ids older than twice the skew window: their timestamps are refused anyway."""
        if now - self._last_prune < 60:
            return
        self._last_prune = now
        cutoff = _now() - timedelta(seconds=2 * self.max_skew)
        connection.execute(delete(SEEN_REQUESTS).where(SEEN_REQUESTS.c.seen_at < cutoff))


def _device_of(key: Hashable) -> str:
    """The device a request id's key names (`DeviceAuthenticator.once_key`)."""
    return cast(tuple[str, str], key)[1]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _maybe_utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else utc(moment)


def make_session_factory(engine: Engine) -> Callable[[], Session]:
    def factory() -> Session:
        return Session(engine, expire_on_commit=False)

    return factory
