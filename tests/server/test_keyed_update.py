"""A batch's last-seen writes (`server.db.keyed_update`): one statement on PostgreSQL, with what the
separate UPDATEs did kept: the same stored rows, a device named twice ends with its last row, and
the rows locked in the batch's key order whatever the order the rows came in."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, bindparam, event, text
from sqlalchemy.exc import OperationalError

from server.fleet.ingest import HEARTBEAT_SEEN
from tests.helpers.device_rows import insert_device

NOW = datetime(2026, 12, 3, 8, 0, 0, 250000, tzinfo=timezone.utc)


def _devices(engine: Engine, count: int) -> list[str]:
    """`count` new devices in key order, their rows stored in the reverse order (a table scan meets
    the last first)."""
    ids = sorted(uuid.uuid4().hex for _ in range(count))
    with engine.begin() as connection:
        for device_id in reversed(ids):
            insert_device(connection, device_id, enrolled_at=NOW)
    return ids


def _seen(engine: Engine, device_ids: list[str]) -> list[tuple[str, str]]:
    """Each device's last-seen time and agent version as the database holds them (as text)."""
    with engine.connect() as connection:
        read = text("SELECT id, last_seen_at, agent_version FROM devices WHERE id IN :ids")
        rows = connection.execute(read.bindparams(bindparam("ids", expanding=True)), {"ids": device_ids})
        found = {row.id: (str(row.last_seen_at), row.agent_version) for row in rows}
    return [found[device_id] for device_id in device_ids]


def _row(device_id: str, minutes: int, version: str) -> dict[str, Any]:
    return {"device_id": device_id, "now": NOW + timedelta(minutes=minutes), "agent_version": version}


def test_a_batch_stores_what_one_update_a_row_stores_and_a_device_twice_keeps_its_last(
    engine: Engine,
) -> None:
    ids = _devices(engine, 8)
    one_by_one, batched = ids[:4], ids[4:]
    rows = [_row(device_id, n, f"1.{n}") for n, device_id in enumerate(reversed(batched))]
    rows.append(_row(batched[0], 30, "2.0"))  # named again, later: its second row wins
    with engine.begin() as connection:
        for n, device_id in enumerate(reversed(one_by_one)):
            HEARTBEAT_SEEN.execute(connection, _row(device_id, n, f"1.{n}"))
        HEARTBEAT_SEEN.execute(connection, _row(one_by_one[0], 30, "2.0"))
        HEARTBEAT_SEEN.execute_many(connection, rows)
    assert _seen(engine, batched) == _seen(engine, one_by_one)
    assert _seen(engine, [batched[0]])[0][1] == "2.0"


def test_a_device_with_no_row_changes_nothing_and_the_rest_are_written(engine: Engine) -> None:
    ids = _devices(engine, 2)
    with engine.begin() as connection:
        HEARTBEAT_SEEN.execute_many(
            connection, [_row(ids[0], 1, "3.0"), _row(uuid.uuid4().hex, 1, "3.0"), _row(ids[1], 2, "3.1")]
        )
    assert [version for _, version in _seen(engine, ids)] == ["3.0", "3.1"]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_on_postgresql_a_batch_is_one_statement(engine: Engine) -> None:
    """(SQLite keeps the executemany: its driver loops in C.)"""
    ids = _devices(engine, 5)
    sent: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
    with engine.begin() as connection:
        HEARTBEAT_SEEN.execute_many(connection, [_row(device_id, 1, "4.0") for device_id in ids])
    assert len(sent) == 1 and "unnest" in sent[0]
    assert [version for _, version in _seen(engine, ids)] == ["4.0"] * 5


def _locked_now(connection: Connection, device_id: str) -> bool:
    """Whether another transaction holds the device's row (a NOWAIT lock of it fails)."""
    try:
        with connection.begin():
            connection.execute(
                text("SELECT id FROM devices WHERE id = :id FOR NO KEY UPDATE NOWAIT"), {"id": device_id}
            )
        return False
    except OperationalError:
        return True


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_on_postgresql_rows_are_locked_in_key_order_whatever_order_they_came_in(engine: Engine) -> None:
    """The batch's first and last device, with the middle one held by another transaction: the
    batch waits at the middle one holding the first and not yet the last. Given the rows in reverse
    order, and stored in reverse order, a statement that locked as they came or as it scanned the
    table would hold the last and not the first. (SQLite's one writer holds the whole database:
    there is no row order to keep.)"""
    first, middle, last = _devices(engine, 3)
    with engine.connect() as holder, engine.connect() as onlooker:
        held = holder.begin()
        holder.execute(text("SELECT id FROM devices WHERE id = :id FOR NO KEY UPDATE"), {"id": middle})
        done = threading.Event()

        def batch() -> None:
            with engine.begin() as connection:
                HEARTBEAT_SEEN.execute_many(
                    connection, [_row(device_id, 1, "5.0") for device_id in (last, middle, first)]
                )
            done.set()

        writer = threading.Thread(target=batch)
        writer.start()
        deadline = time.monotonic() + 10
        while not _locked_now(onlooker, first):
            assert time.monotonic() < deadline, "the batch never took the first device's row"
            time.sleep(0.05)
        assert not done.is_set()
        assert not _locked_now(onlooker, last)
        held.rollback()
        writer.join(10)
        assert done.is_set()
    assert [version for _, version in _seen(engine, [first, middle, last])] == ["5.0"] * 3
