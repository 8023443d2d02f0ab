"""What a batch of heartbeats and reports sends to the database, on real SQLite and PostgreSQL: the
heartbeats' last-seen times in one statement, a report's device row locked before its other rows, a
batch's devices taken in id order, and two processes whose batches share devices never deadlock."""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, Engine, event, insert, select

from contract.wire import API_PREFIX, public_key_text, signed_headers
from server.api.bodies import parse
from server.api.schemas import HeartbeatIn
from server.auth import DeviceAuthenticator, DeviceReader, KnownDevice, SignedRequest
from server.db.engine import make_engine
from server.db.tables import COMMANDS, DEVICE_INVENTORY, DEVICE_STATUS, DEVICE_USERS, DEVICES, REPORTS
from server.fleet import counts
from server.fleet.ingest import record_heartbeat, store_report
from server.fleet.published import GroupCache, load_policies, load_requirements
from server.group_commit import GroupCommitter
from tests.helpers.device_rows import engine_on_copy
from tests.helpers.servers import InitialisedDatabases
from tests.helpers.signed_device import heartbeat, report

HEARTBEAT_PATH = f"{API_PREFIX}/heartbeat"


def _database(
    database_url: str, initialised_databases: InitialisedDatabases, request: pytest.FixtureRequest
) -> Engine:
    return engine_on_copy(database_url, initialised_databases, request)


def _enrol(engine: Engine, count: int) -> list[tuple[str, Ed25519PrivateKey]]:
    fleet = [
        (f"device-{number:02}-{uuid.uuid4().hex[:6]}", Ed25519PrivateKey.generate())
        for number in range(count)
    ]
    with engine.begin() as connection:
        connection.execute(
            insert(DEVICES),
            [
                {
                    "id": device_id,
                    "group_name": "Lincoln High",
                    "hostname": f"lt{number}",
                    "os": "linux",
                    "os_version": "Debian 12",
                    "macs": [],
                    "identity_unreadable": {},
                    "public_key": public_key_text(key),
                    "agent_version": "0.0.9",
                    "enrolled_at": datetime.now(timezone.utc),
                }
                for number, (device_id, key) in enumerate(fleet)
            ],
        )
    return fleet


def _signed(device_id: str, key: Ed25519PrivateKey, path: str, body: dict[str, Any]) -> SignedRequest:
    raw = json.dumps(body).encode()
    headers = signed_headers(key, device_id, "POST", path, raw, time.time())
    return SignedRequest.from_headers(headers, "POST", path, raw)


def _one_batch(committer: GroupCommitter, submit: list[Callable[[], Any]]) -> list[Any]:
    """Every job submitted while the one database thread is held: they run as one batch."""

    async def main() -> list[Any]:
        gate = threading.Event()
        first = asyncio.ensure_future(committer.call(lambda: gate.wait(10)))
        await asyncio.sleep(0.05)
        jobs = [asyncio.ensure_future(make()) for make in submit]
        await asyncio.sleep(0.05)
        gate.set()
        await first
        return await asyncio.gather(*jobs, return_exceptions=True)

    return asyncio.run(main())


def test_a_batch_of_heartbeats_writes_their_last_seen_times_in_one_statement(
    database_url: str, initialised_databases: InitialisedDatabases, request: pytest.FixtureRequest
) -> None:
    """Keys not cached (a real fleet): each heartbeat's flags come with its key, and the batch's
    last-seen times go in one UPDATE. A device with a command waiting still gets it in the answer, and
    a key from the cache (no flags read for this request) reads them as it writes, as before."""
    engine = _database(database_url, initialised_databases, request)
    fleet = _enrol(engine, 6)
    commanded = fleet[4][0]
    with engine.begin() as connection:
        connection.execute(
            insert(COMMANDS).values(
                device_id=commanded, command="report_now", created_at=datetime.now(timezone.utc)
            )
        )
        connection.execute(DEVICES.update().where(DEVICES.c.id == commanded).values(commands_pending=True))
    reader = DeviceReader(engine)
    committer = GroupCommitter(engine, threads=1, prepare_scope=reader.batch)
    requirements = GroupCache(60, load_requirements)
    policies = GroupCache(60, load_policies)
    statements: list[tuple[str, bool]] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append((args[2], args[5])))

    def submitter(
        authenticator: DeviceAuthenticator, device_id: str, key: Ed25519PrivateKey
    ) -> Callable[[], Any]:
        signed = _signed(device_id, key, HEARTBEAT_PATH, {**heartbeat(), "agent_version": "0.2.0"})

        def prepare() -> tuple[KnownDevice, HeartbeatIn]:
            return authenticator.verify(signed, reader), parse(HeartbeatIn, signed.body)

        def work(connection: Connection, prepared: tuple[KnownDevice, HeartbeatIn]) -> Any:
            device, body = prepared
            authenticator.apply(connection, device)
            return record_heartbeat(connection, device, body, requirements, policies)

        read_ahead = None if authenticator.is_cached(device_id) else device_id
        once = authenticator.once_key(signed)
        return lambda: committer.run(prepare, work, lambda answer: answer, read_ahead, once)

    cold = DeviceAuthenticator(300, 0)
    answers = _one_batch(committer, [submitter(cold, device_id, key) for device_id, key in fleet])
    assert all(not isinstance(answer, BaseException) for answer in answers), answers
    assert [len(answer.commands) for answer in answers] == [0, 0, 0, 0, 1, 0]
    # On SQLite an executemany; on PostgreSQL one UPDATE of arrays (`server.db.keyed_update`).
    updates = [
        (sql, many or "UNNEST(" in sql.upper()) for sql, many in statements if "UPDATE DEVICES" in sql.upper()
    ]
    # The five with nothing waiting: one batched write; the one with a command: its own (locked, read).
    assert len([1 for _sql, batched in updates if batched]) == 1
    assert len([1 for sql, batched in updates if not batched and "RETURNING" in sql.upper()]) == 1
    if database_url.startswith("postgresql"):
        # The devices before the one with a command are written before its row is locked: one order.
        first_returning = next(
            index for index, (sql, _many) in enumerate(updates) if "RETURNING" in sql.upper()
        )
        assert updates[first_returning - 1][1]  # the batched write of devices 0-3
        assert len(updates) == 4  # and device 5's after: its own, alone (plus commands_pending=false)
    with engine.connect() as connection:
        rows = connection.execute(select(DEVICES.c.id, DEVICES.c.agent_version, DEVICES.c.last_seen_at)).all()
    assert {row.agent_version for row in rows} == {"0.2.0"} and all(row.last_seen_at for row in rows)

    warm = DeviceAuthenticator(300, 60)
    _one_batch(committer, [submitter(warm, device_id, key) for device_id, key in fleet[:2]])  # keys cached
    statements.clear()
    answers = _one_batch(committer, [submitter(warm, device_id, key) for device_id, key in fleet[:2]])
    assert all(not isinstance(answer, BaseException) for answer in answers), answers
    updates = [sql for sql, _many in statements if "UPDATE DEVICES" in sql.upper()]
    assert len(updates) == 2 and all("RETURNING" in sql.upper() for sql in updates)
    engine.dispose()


def _report_body(device_id: str, reported_at: datetime) -> bytes:
    body = {**report(), "reported_at": reported_at.isoformat(), "software": [], "users": ["ana"]}
    return json.dumps(body).encode()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_report_locks_its_device_row_before_any_other_row(
    database_url: str, initialised_databases: InitialisedDatabases, request: pytest.FixtureRequest
) -> None:
    """The first statement a report sends is the device row's lock; the inventory row is not locked on
    its own (the device row guards it), so every path takes a device's rows in one order."""
    engine = _database(database_url, initialised_databases, request)
    ((device_id, _key),) = _enrol(engine, 1)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    device = KnownDevice(device_id, "Lincoln High", Ed25519PrivateKey.generate().public_key())
    with engine.begin() as connection:
        store_report(
            connection, device, _report_body(device_id, datetime.now(timezone.utc)), timedelta(minutes=5)
        )
    assert "FOR NO KEY UPDATE" in statements[0] and "FROM devices" in statements[0]
    assert not [sql for sql in statements[1:] if "FOR UPDATE" in sql or "FOR NO KEY UPDATE" in sql]
    engine.dispose()


def _reporting_process(
    url: str,
    devices: list[str],
    barrier: Any,
    results: Any,
) -> None:
    """One server's database thread in its own process: one batch of reports for `devices`, in the
    order given, pausing after the first report's work until the other process has done its first."""
    engine = make_engine(url, for_server=True)
    authenticator = DeviceAuthenticator(300, 0)
    committer = GroupCommitter(engine, threads=1)
    errors: list[str] = []
    first_done = threading.Event()

    def job(device_id: str, first: bool) -> Callable[[], Any]:
        device = KnownDevice(device_id, "Lincoln High", Ed25519PrivateKey.generate().public_key())
        body = _report_body(device_id, datetime.now(timezone.utc))

        def work(connection: Connection, _prepared: object) -> str:
            try:
                store_report(connection, device, body, timedelta(minutes=5))
            except Exception as exc:
                errors.append(type(exc).__name__ + ": " + str(exc).splitlines()[0])
                raise
            if not first_done.is_set():
                first_done.set()
                # Both processes hold their first device now, if their orders differ; if the other
                # waits for this one's device (the same order), the wait times out and this goes on.
                with contextlib.suppress(threading.BrokenBarrierError):
                    barrier.wait(1.5)  # under the 3 s lock timeout
            return device_id

        once = (authenticator.once, (uuid.uuid4().hex, device_id))
        return lambda: committer.run(lambda: None, work, str, once=once, heavy=True)

    answers = _one_batch(committer, [job(device_id, index == 0) for index, device_id in enumerate(devices)])
    results.put((devices, [str(answer) for answer in answers], errors))
    engine.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_processes_whose_batches_share_devices_never_deadlock(
    database_url: str,
    initialised_databases: InitialisedDatabases,
    request: pytest.FixtureRequest,
) -> None:
    """Two server processes on one PostgreSQL, each with a batch of reports for the same two laptops,
    received in opposite orders. Each batch takes its devices in id order, so the second waits for the
    first instead of each holding one laptop and waiting for the other's (a deadlock PostgreSQL breaks
    after a second by failing one transaction)."""
    engine = _database(database_url, initialised_databases, request)
    (first, _), (second, _) = _enrol(engine, 2)
    engine.dispose()
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    results = context.Queue()
    processes = [
        context.Process(target=_reporting_process, args=(database_url, order, barrier, results))
        for order in ([first, second], [second, first])
    ]
    for process in processes:
        process.start()
    try:
        outcomes = [results.get(timeout=60) for _ in processes]
    finally:
        for process in processes:
            process.join(30)
    for devices, answers, errors in outcomes:
        assert errors == [], errors  # no "deadlock detected", not even one redone with savepoints
        assert answers == devices
    engine = make_engine(database_url)
    with engine.connect() as connection:
        assert len(connection.execute(select(DEVICE_STATUS.c.device_id)).all()) == 2
    engine.dispose()


def test_a_report_with_the_stored_list_writes_in_one_statement_on_postgresql(
    database_url: str, initialised_databases: InitialisedDatabases, request: pytest.FixtureRequest
) -> None:
    """A laptop's usual report (its list as stored): on PostgreSQL the lock, one read and one write
    for everything (report, status, device row, users, inventory's report); on SQLite the separate
    statements. On both: a report sent again writes nothing, and one delayed by an outage (older
    than the stored one) is kept but moves neither the status nor the inventory back."""
    engine = _database(database_url, initialised_databases, request)
    ((device_id, _key),) = _enrol(engine, 1)
    device = KnownDevice(device_id, "Lincoln High", Ed25519PrivateKey.generate().public_key())
    now = datetime.now(timezone.utc)

    def body(reported_at: datetime, status: str = "pass") -> bytes:
        sent = {**report(status=status), "reported_at": reported_at.isoformat(), "users": ["ana", "ana"]}
        return json.dumps(sent).encode()

    def send(raw: bytes) -> tuple[Any, list[str]]:
        statements: list[str] = []

        def note(*args: Any) -> None:
            statements.append(args[2])

        event.listen(engine, "before_cursor_execute", note)
        try:
            with engine.begin() as connection:
                answer = store_report(connection, device, raw, timedelta(minutes=5))
        finally:
            event.remove(engine, "before_cursor_execute", note)
        return answer, statements

    first, _ = send(body(now - timedelta(minutes=10)))  # the list stored; the next changes no count
    assert first.stored
    usual = body(now)
    answer, statements = send(usual)
    assert answer.stored
    writes = [sql for sql in statements if not sql.lstrip().upper().startswith(("SELECT", "BEGIN"))]
    if database_url.startswith("postgresql"):
        assert len(statements) == 3 and len(writes) == 1 and writes[0].lstrip().startswith("WITH")
    else:
        assert len(writes) >= 4  # report, inventory, status, device row, users: each its own
    again, _ = send(usual)
    assert again.duplicate and not again.stored
    late, _ = send(body(now - timedelta(hours=1), status="fail"))
    assert late.stored
    with engine.connect() as connection:
        status = connection.execute(select(DEVICE_STATUS).where(DEVICE_STATUS.c.device_id == device_id)).one()
        inventory = connection.execute(
            select(DEVICE_INVENTORY.c.report_id).where(DEVICE_INVENTORY.c.device_id == device_id)
        ).scalar()
        users = connection.execute(
            select(DEVICE_USERS.c.user).where(DEVICE_USERS.c.device_id == device_id)
        ).all()
        stored = connection.execute(select(REPORTS.c.report_id).where(REPORTS.c.device_id == device_id)).all()
        seen = connection.execute(select(DEVICES.c.last_seen_at).where(DEVICES.c.id == device_id)).scalar()
    usual_id = json.loads(usual)["report_id"]
    assert status.report_id == usual_id  # not moved back by the late one
    assert inventory == usual_id
    assert [user for (user,) in users] == ["ana"]
    assert len(stored) == 3  # the first, the usual one once, the late one
    assert seen is not None
    engine.dispose()


def test_a_batch_of_reports_writes_its_roll_up_rows_and_users_in_one_statement_each(
    database_url: str, initialised_databases: InitialisedDatabases, request: pytest.FixtureRequest
) -> None:
    """Three laptops' first reports in one batch: each changes the overview's counts, and their ledger
    rows go in with one INSERT for the batch (nothing in the transaction reads the ledger), and on
    SQLite their users' upserts in one statement too.
    What the reports counted is what a recount finds."""
    engine = _database(database_url, initialised_databases, request)
    fleet = _enrol(engine, 3)
    committer = GroupCommitter(engine, threads=1)
    authenticator = DeviceAuthenticator(300, 0)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    def job(device_id: str) -> Callable[[], Any]:
        device = KnownDevice(device_id, "Lincoln High", Ed25519PrivateKey.generate().public_key())
        raw = _report_body(device_id, datetime.now(timezone.utc))

        def work(connection: Connection, _prepared: object) -> str:
            return str(store_report(connection, device, raw, timedelta(minutes=5)).stored)

        once = (authenticator.once, (uuid.uuid4().hex, device_id))
        return lambda: committer.run(lambda: None, work, str, once=once)

    assert _one_batch(committer, [job(device_id) for device_id, _key in fleet]) == ["True"] * 3
    ledger = [sql for sql in statements if sql.lstrip().startswith("INSERT INTO fleet_count_changes")]
    assert len(ledger) == 1
    users = [sql for sql in statements if sql.lstrip().startswith("INSERT INTO device_users")]
    # On PostgreSQL a device's upsert is written before the next device's row is locked (one order).
    assert len(users) == (1 if database_url.startswith("sqlite") else 3)
    with engine.connect() as connection:
        # The devices were inserted here, not enrolled: only what the reports added is in the ledger.
        drift = counts.drift(connection)
        stored_users = connection.execute(select(DEVICE_USERS.c.device_id)).all()
    assert {key[3] for key in drift} == {"devices"}
    assert len(stored_users) == 3
    engine.dispose()
