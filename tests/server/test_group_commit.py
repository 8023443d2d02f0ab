"""Many requests in one transaction: each keeps or loses its own work, and none is answered before
the commit that holds it. On a real SQLite file, with the server's own engine settings."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    event,
    insert,
    select,
    text,
)
from sqlalchemy.exc import OperationalError

from server.app import create_app
from server.auth import DeviceAuthenticator, DeviceReader
from server.db.engine import make_engine
from server.errors import RequestRefused
from server.group_commit import MAX_HEAVY_BATCH, GroupCommitter
from server.settings import Settings
from tests.helpers.device_rows import engine_on_copy, insert_device
from tests.helpers.servers import InitialisedDatabases

METADATA = MetaData()
ROWS = Table("rows", METADATA, Column("id", Integer, primary_key=True), Column("name", String, unique=True))


def _engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}", for_server=True)
    METADATA.create_all(engine)
    return engine


def _names(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return sorted(connection.execute(select(ROWS.c.name)).scalars())


def _write(name: str) -> Callable[[Connection, object], str]:
    def work(connection: Connection, _prepared: object) -> str:
        connection.execute(insert(ROWS).values(name=name))
        if name.startswith("bad"):
            raise ValueError(f"{name} refused after writing")
        return name

    return work


def test_a_failing_request_loses_only_its_own_work_in_a_shared_transaction(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    committer = GroupCommitter(engine, threads=1)
    gate = threading.Event()

    async def main() -> list[object]:
        # The first job holds the one database thread until the rest are queued: they then run as
        # one batch, in one transaction.
        first = asyncio.ensure_future(committer.call(lambda: gate.wait(10)))
        await asyncio.sleep(0.05)
        names = ["a", "bad-1", "b", "dup", "dup", "c"]
        batch = [
            asyncio.ensure_future(
                committer.run(lambda: None, _write(name), lambda value: f"answered {value}")
            )
            for name in names
        ]
        await asyncio.sleep(0.05)
        gate.set()
        await first
        return await asyncio.gather(*batch, return_exceptions=True)

    answers = asyncio.run(main())
    assert answers[0] == "answered a"
    assert isinstance(answers[1], ValueError)
    assert answers[2] == "answered b"
    assert answers[3] == "answered dup"
    assert "UNIQUE" in str(answers[4])  # the second "dup" broke a constraint: its own error only
    assert answers[5] == "answered c"
    # bad-1 wrote its row before it raised: rolled back to its savepoint, the others kept.
    assert _names(engine) == ["a", "b", "c", "dup"]


def test_an_error_before_the_transaction_is_that_request_s_alone(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    committer = GroupCommitter(engine, threads=1)

    def refuse() -> None:
        raise PermissionError("signature not accepted")

    async def main() -> list[object]:
        return await asyncio.gather(
            committer.run(refuse, _write("never"), str),
            committer.run(lambda: None, _write("kept"), str),
            return_exceptions=True,
        )

    refused, kept = asyncio.run(main())
    assert isinstance(refused, PermissionError)
    assert kept == "kept"
    assert _names(engine) == ["kept"]


def test_when_the_commit_cannot_happen_no_request_is_answered_as_kept(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    committer = GroupCommitter(engine, threads=1)
    holder = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock past the lock timeout
    try:

        async def main() -> list[object]:
            return await asyncio.gather(
                *(committer.run(lambda: None, _write(name), str) for name in ("x", "y")),
                return_exceptions=True,
            )

        answers = asyncio.run(main())
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert all(isinstance(answer, OperationalError) for answer in answers), answers
    assert _names(engine) == []


def test_the_event_loop_is_free_while_the_database_thread_waits(tmp_path: Path) -> None:
    committer = GroupCommitter(_engine(tmp_path), threads=1)
    gate = threading.Event()

    async def main() -> float:
        blocked = asyncio.ensure_future(committer.call(lambda: gate.wait(10)))
        loop = asyncio.get_running_loop()
        began = loop.time()
        await asyncio.sleep(0.01)  # would not return before the gate if the loop were held
        waited = loop.time() - began
        gate.set()
        await blocked
        return waited

    assert asyncio.run(main()) < 1


@pytest.mark.parametrize("threads", [1, 3])
def test_every_request_is_answered_under_a_burst(tmp_path: Path, threads: int) -> None:
    engine = _engine(tmp_path)
    committer = GroupCommitter(engine, threads=threads, max_batch=8)

    async def main() -> list[object]:
        return await asyncio.gather(
            *(committer.run(lambda: None, _write(f"n{number:03}"), str) for number in range(200))
        )

    assert sorted(str(answer) for answer in asyncio.run(main())) == [f"n{number:03}" for number in range(200)]
    assert len(_names(engine)) == 200


@pytest.mark.parametrize("threads", [1, 3])
def test_requests_that_trickle_in_are_all_answered(tmp_path: Path, threads: int) -> None:
    """The queue shares no lock with the event loop (`_Lanes`): a thread's wake-up may be taken by
    another thread, or rung for a request another thread already took. Requests arriving a few at a
    time, while batches run, must each still be answered; one left waiting would time out here."""
    committer = GroupCommitter(_engine(tmp_path), threads=threads, max_batch=4)

    async def one(number: int) -> str:
        await asyncio.sleep((number % 7) * 0.0005)
        return str(await committer.call(lambda: f"n{number:04}"))

    async def main() -> list[str]:
        answers: list[str] = []
        for start in range(0, 600, 30):
            answers += await asyncio.wait_for(
                asyncio.gather(*(one(number) for number in range(start, start + 30))), 20
            )
        return answers

    assert asyncio.run(main()) == [f"n{number:04}" for number in range(600)]


def test_a_batch_with_no_failure_runs_each_request_once_without_savepoints(tmp_path: Path) -> None:
    """Savepoints cost two statements per request (8 % of a heartbeat): a batch where every request
    succeeds has none, and a batch with one failure is redone with them, each request kept once."""
    engine = _engine(tmp_path)
    committer = GroupCommitter(engine, threads=1)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    calls: list[str] = []

    def counted(name: str) -> Callable[[Connection, object], str]:
        write = _write(name)

        def work(connection: Connection, prepared: object) -> str:
            calls.append(name)
            return write(connection, prepared)

        return work

    async def batch(names: list[str]) -> list[object]:
        gate = threading.Event()
        first = asyncio.ensure_future(committer.call(lambda: gate.wait(10)))
        await asyncio.sleep(0.05)
        jobs = [asyncio.ensure_future(committer.run(lambda: None, counted(name), str)) for name in names]
        await asyncio.sleep(0.05)
        gate.set()
        await first
        return await asyncio.gather(*jobs, return_exceptions=True)

    assert asyncio.run(batch(["a", "b", "c"])) == ["a", "b", "c"]
    assert calls == ["a", "b", "c"]
    assert not [text for text in statements if "SAVEPOINT" in text.upper()]

    calls.clear()
    answers = asyncio.run(batch(["d", "bad-2", "e"]))
    assert answers[0] == "d" and isinstance(answers[1], ValueError) and answers[2] == "e"
    assert calls == ["d", "bad-2", "d", "bad-2", "e"]  # redone once, with a savepoint each
    assert [text for text in statements if text.upper().startswith("SAVEPOINT")]
    assert _names(engine) == ["a", "b", "c", "d", "e"]


def test_a_batch_s_device_lookups_share_one_connection(
    tmp_path: Path, initialised_databases: InitialisedDatabases
) -> None:
    """With the key cache cold (a real fleet), every request looks its device up: a batch's lookups
    share one read connection, closed before the batch's transaction takes the (one SQLite) connection."""
    url = f"sqlite:///{tmp_path / 'var' / 'homeroom.db'}"
    initialised_databases.copy_into(url)
    engine = make_engine(url, for_server=True)
    reader = DeviceReader(engine)
    committer = GroupCommitter(engine, threads=1, prepare_scope=reader.batch)
    checkouts: list[object] = []
    event.listen(engine, "checkout", lambda *args: checkouts.append(args))

    async def main() -> list[object]:
        gate = threading.Event()
        first = asyncio.ensure_future(committer.call(lambda: gate.wait(10)))
        await asyncio.sleep(0.05)
        jobs = [
            asyncio.ensure_future(
                committer.run(lambda n=number: reader(f"nobody-{n}"), lambda _c, found: found, str)
            )
            for number in range(6)
        ]
        await asyncio.sleep(0.05)
        gate.set()
        await first
        return await asyncio.gather(*jobs)

    assert asyncio.run(main()) == ["None"] * 6
    assert len(checkouts) == 2  # the lookups' connection, then the batch's transaction
    assert reader("nobody") is None  # outside a batch: a connection of its own
    assert len(checkouts) == 3


def _seen_ids(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return sorted(connection.execute(text("SELECT request_id FROM seen_requests")).scalars())


def test_request_ids_are_recorded_for_a_batch_at_once_and_a_replay_does_not_redo_the_batch(
    tmp_path: Path, initialised_databases: InitialisedDatabases
) -> None:
    """A batch's request ids go in with one statement; an id seen before (an earlier batch, or earlier
    in the same batch) is refused without running its work and without rolling the others back. When
    another request fails, the batch is redone with a savepoint each and the failed one's id is not kept."""
    url = f"sqlite:///{tmp_path / 'var' / 'homeroom.db'}"
    initialised_databases.copy_into(url)
    engine = make_engine(url, for_server=True)
    METADATA.create_all(engine)
    once = DeviceAuthenticator(300, 0).once
    committer = GroupCommitter(engine, threads=1)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    ran: list[str] = []

    def work(name: str) -> Callable[[Connection, object], str]:
        write = _write(name)

        def counted(connection: Connection, prepared: object) -> str:
            ran.append(name)
            return write(connection, prepared)

        return counted

    async def batch(requests: list[tuple[str, str]]) -> list[object]:
        gate = threading.Event()
        first = asyncio.ensure_future(committer.call(lambda: gate.wait(10)))
        await asyncio.sleep(0.05)
        jobs = [
            asyncio.ensure_future(committer.run(lambda: None, work(name), str, once=(once, (rid, "dev1"))))
            for name, rid in requests
        ]
        await asyncio.sleep(0.05)
        gate.set()
        await first
        return await asyncio.gather(*jobs, return_exceptions=True)

    assert asyncio.run(batch([("a", "id-aaaa"), ("b", "id-bbbb")])) == ["a", "b"]
    statements.clear()
    answers = asyncio.run(
        batch([("c", "id-cccc"), ("again", "id-aaaa"), ("twice", "id-cccc"), ("d", "id-dddd")])
    )
    assert answers[0] == "c" and answers[3] == "d"
    for refused in (answers[1], answers[2]):
        assert isinstance(refused, RequestRefused) and refused.status == 409
    assert ran == ["a", "b", "c", "d"]  # the replays' work never ran, and nothing ran twice
    assert len([sql for sql in statements if "seen_requests" in sql]) == 1
    assert not [sql for sql in statements if "SAVEPOINT" in sql.upper()]
    assert _names(engine) == ["a", "b", "c", "d"]

    ran.clear()
    answers = asyncio.run(batch([("e", "id-eeee"), ("bad-f", "id-ffff"), ("replay", "id-bbbb")]))
    assert answers[0] == "e" and isinstance(answers[1], ValueError)
    assert isinstance(answers[2], RequestRefused) and answers[2].status == 409
    assert ran == ["e", "bad-f", "e", "bad-f"]  # redone once with savepoints; the replay never ran
    assert _names(engine) == ["a", "b", "c", "d", "e"]
    assert _seen_ids(engine) == ["id-aaaa", "id-bbbb", "id-cccc", "id-dddd", "id-eeee"]


def test_a_batch_reads_the_devices_it_names_in_one_statement(
    tmp_path: Path, initialised_databases: InitialisedDatabases
) -> None:
    """With the key cache cold, each request of a batch looks its device up: the batch reads all the
    devices it names in one SELECT, and each lookup takes its answer from that."""
    url = f"sqlite:///{tmp_path / 'var' / 'homeroom.db'}"
    initialised_databases.copy_into(url)
    engine = make_engine(url, for_server=True)
    with engine.begin() as connection:
        insert_device(connection, "known-device")
    reader = DeviceReader(engine)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    names = ["known-device", "nobody-1", "nobody-2", "known-device"]
    with reader.batch(names):
        found = [reader(name) for name in names[:3]]
    device_reads = [sql for sql in statements if "FROM devices" in sql]
    assert len(device_reads) == 1 and " IN " in device_reads[0]
    assert found[0] is not None and found[0].row.group_name == "Lincoln High"
    assert found[1] is None and found[2] is None
    # A second lookup of the same device in a batch (its cached key did not verify) reads again.
    with reader.batch(["known-device"]):
        assert reader("known-device") is not None
        assert reader("known-device") is not None
    assert len([sql for sql in statements if "FROM devices" in sql]) == 3


def test_a_burst_of_heavy_requests_delays_light_ones_by_one_short_batch(tmp_path: Path) -> None:
    """Fairness: forty full reports queued ahead of five heartbeats. The heartbeats are run after at
    most one batch of reports (MAX_HEAVY_BATCH), not after all forty; the reports still all run."""
    engine = _engine(tmp_path)
    committer = GroupCommitter(engine, threads=1)
    order: list[str] = []

    def work(name: str) -> Callable[[Connection, object], str]:
        def run(connection: Connection, prepared: object) -> str:
            order.append(name)
            return _write(name)(connection, prepared)

        return run

    async def main() -> list[object]:
        gate = threading.Event()
        first = asyncio.ensure_future(committer.call(lambda: gate.wait(10)))
        await asyncio.sleep(0.05)
        reports = [
            asyncio.ensure_future(committer.run(lambda: None, work(f"report-{n:02}"), str, heavy=True))
            for n in range(40)
        ]
        await asyncio.sleep(0.02)
        heartbeats = [
            asyncio.ensure_future(committer.run(lambda: None, work(f"heartbeat-{n}"), str)) for n in range(5)
        ]
        await asyncio.sleep(0.05)
        gate.set()
        await first
        return await asyncio.gather(*reports, *heartbeats)

    answers = asyncio.run(main())
    assert len(answers) == 45 and len(_names(engine)) == 45
    first_heartbeat = next(index for index, name in enumerate(order) if name.startswith("heartbeat"))
    assert first_heartbeat <= MAX_HEAVY_BATCH
    assert order[first_heartbeat : first_heartbeat + 5] == [f"heartbeat-{n}" for n in range(5)]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_on_postgresql_the_database_threads_plan_once_and_the_console_as_postgresql_chooses(
    database_url: str,
    initialised_databases: InitialisedDatabases,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    """The app's database threads and their device reads run on a pool of their own whose
    connections use generic plans (`plan_cache_mode`); the console's engine keeps PostgreSQL's choice."""
    initialised_databases.copy_into(database_url, request.getfixturevalue("postgres"))
    services = create_app(Settings(database_url=database_url, data_dir=tmp_path)).state.services
    setting = text("SELECT current_setting('plan_cache_mode')")

    def read_setting(connection: Connection, _prepared: object) -> str:
        return str(connection.execute(setting).scalar())

    async def in_a_batch() -> str:
        return await services.database.run(lambda: None, read_setting, str)

    try:
        with services.device_lookup.engine.connect() as connection:
            device_reads = read_setting(connection, None)
        with services.engine.connect() as connection:
            console = read_setting(connection, None)
        assert (asyncio.run(in_a_batch()), device_reads, console) == (
            "force_generic_plan",
            "force_generic_plan",
            "auto",
        )
    finally:
        services.database.engine.dispose()
        services.engine.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_on_postgresql_a_batchs_device_reads_hold_no_transaction_open(
    database_url: str, initialised_databases: InitialisedDatabases, request: pytest.FixtureRequest
) -> None:
    """Each read is its own statement, with no BEGIN and ROLLBACK around the batch's reads, so the
    read connection sits idle (not "idle in transaction") while the batch's signatures are checked."""
    engine = engine_on_copy(database_url, initialised_databases, request)
    reader = DeviceReader(engine)
    with engine.connect() as watcher, reader.batch(["nobody-1", "nobody-2"]):
        assert reader("nobody-1") is None
        pid = reader._shared().execute(text("SELECT pg_backend_pid()")).scalar()
        state = watcher.execute(
            text("SELECT state FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
        ).scalar()
    assert state == "idle"
