"""Many requests in one transaction: each keeps or loses its own work, and none is answered before
the commit that holds it. On a real SQLite file, with the server's own engine settings."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Column, Connection, Engine, Integer, MetaData, String, Table, event, insert, select
from sqlalchemy.exc import OperationalError

from server.auth import DeviceReader
from server.db.engine import make_engine
from server.group_commit import GroupCommitter
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
