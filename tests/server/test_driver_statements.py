"""The hot statements sent straight to the driver (`server.db.driver_statements`) store and return
exactly what `connection.execute` does, on real SQLite and PostgreSQL, inside the connection's own
transaction, with SQLAlchemy's errors and its statement events."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from datetime import date, datetime, timezone
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, bindparam, create_engine, event, insert, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from server.auth import _KEY_COLUMNS, SEEN_REQUESTS, _device_rows, _seen_insert, _seen_parameters
from server.db.among import parameter_list
from server.db.driver_statements import DriverStatement
from server.db.statements import insert_if_new
from server.db.tables import DEVICE_STATUS, DEVICE_USERS, DEVICES, REPORTS
from server.fleet import counted
from server.fleet.ingest import REPORT_SEEN, _status_upsert, _user_upsert
from tests.helpers.device_rows import insert_device

NOW = datetime(2026, 12, 2, 8, 30, 15, 123456, tzinfo=timezone.utc)


def _device(connection: Connection) -> str:
    device_id = uuid.uuid4().hex
    insert_device(connection, device_id, enrolled_at=NOW)
    return device_id


READ_BACK = {
    "devices": "SELECT * FROM devices WHERE id = :value",
    "device_status": "SELECT * FROM device_status WHERE device_id = :value",
}


def _stored(connection: Connection, table: str, value: str) -> dict[str, Any]:
    """The row as the database holds it, read by the driver alone (SQLite: as stored text): a date
    stored in another format, or JSON with other spacing, shows here."""
    row = connection.execute(text(READ_BACK[table]), {"value": value})
    found = row.mappings().one()
    return {name: (None if item is None else str(item)) for name, item in found.items()}


def _both_ways(
    engine: Engine, write: Callable[[Connection, str, bool], None], table: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """`write` for one new device through SQLAlchemy and for another through the driver; both rows."""
    with engine.begin() as connection:
        through_sqlalchemy, through_driver = _device(connection), _device(connection)
        write(connection, through_sqlalchemy, False)
        write(connection, through_driver, True)
    with engine.connect() as connection:
        one = _stored(connection, table, through_sqlalchemy)
        other = _stored(connection, table, through_driver)
    return one, other


def _same_but(one: dict[str, Any], other: dict[str, Any], *differing: str) -> None:
    assert {k: v for k, v in one.items() if k not in differing} == {
        k: v for k, v in other.items() if k not in differing
    }


def test_the_device_row_written_by_a_report_is_the_same_both_ways(engine: Engine) -> None:
    def write(connection: Connection, device_id: str, driver: bool) -> None:
        seen = {
            "device_id": device_id,
            "now": NOW,
            "agent_version": "1.2.3",
            "hostname": "lab-07",
            "os_version": "Debian 12.8",
            "macs": ["aa:bb:cc:dd:ee:ff", "11:22:33:44:55:66"],
            "audience": "student",
            "manufacturer": "Dell Inc.",
            "model": None,
        }
        if driver:
            row = DriverStatement(REPORT_SEEN).first(connection, seen)
        else:
            row = connection.execute(REPORT_SEEN, seen).first()
        assert row is not None and row.serial is None and row.identity_collision is None

    one, other = _both_ways(engine, write, "devices")
    assert other["last_seen_at"] is not None and other["macs"] is not None
    _same_but(one, other, "id")


def test_the_status_upsert_is_the_same_both_ways(engine: Engine) -> None:
    def write(connection: Connection, device_id: str, driver: bool) -> None:
        status = {
            "device_id": device_id,
            "report_id": f"r-{device_id}",
            "reported_at": NOW,
            "received_at": NOW,
            "overall": "fail",
            "results": [{"check": "firewall", "status": "fail", "evidence": {"ufw": "inactive"}}],
            "checks": {"firewall": "fail", "disk_encryption": "pass"},
        }
        statement = _status_upsert(connection.dialect.name)
        report = {
            "report_id": status["report_id"],
            "device_id": device_id,
            "reported_at": NOW,
            "received_at": NOW,
            "overall": "fail",
            "body": {"results": status["results"]},
        }
        assert insert_if_new(connection, REPORTS, report)
        if driver:
            statement.execute(connection, status)
        else:
            connection.execute(statement.statement, status)

    one, other = _both_ways(engine, write, "device_status")
    _same_but(one, other, "device_id", "report_id")


def test_a_users_upsert_many_at_once_is_the_same_as_sqlalchemys_executemany(engine: Engine) -> None:
    def rows(device_id: str) -> list[dict[str, Any]]:
        return [{"device_id": device_id, "user": name, "now": NOW} for name in ("ana", "ben", "chi")]

    with engine.begin() as connection:
        through_sqlalchemy, through_driver = _device(connection), _device(connection)
        statement = _user_upsert(connection.dialect.name)
        connection.execute(statement.statement, rows(through_sqlalchemy))
        statement.execute_many(connection, rows(through_driver))
        statement.execute_many(connection, rows(through_driver))  # again: upserted, not doubled
    with engine.connect() as connection:
        stored = {
            device_id: sorted(
                (row.user, str(row.last_seen_at))
                for row in connection.execute(
                    select(DEVICE_USERS).where(DEVICE_USERS.c.device_id == device_id)
                )
            )
            for device_id in (through_sqlalchemy, through_driver)
        }
    assert len(stored[through_driver]) == 3
    assert stored[through_sqlalchemy] == stored[through_driver]


def test_a_python_side_default_is_filled_in_as_sqlalchemy_fills_it(engine: Engine) -> None:
    """The roll-up ledger's `folded` has a Python default (False): the driver path must send it."""
    row = {"day": date(2026, 12, 2), "school": "Lincoln High", "os": "linux", "audience": "staff"}
    with engine.begin() as connection:
        counted._LEDGER_ROW.execute(connection, {**row, "measure": "devices", "delta": 1})
        connection.execute(counted._LEDGER_ROW.statement, {**row, "measure": "reported", "delta": 1})
        stored = connection.execute(
            text("SELECT measure, folded FROM fleet_count_changes ORDER BY measure")
        ).all()
    assert [(measure, bool(folded)) for measure, folded in stored] == [
        ("devices", False),
        ("reported", False),
    ]


def test_rows_read_are_the_rows_sqlalchemy_reads(engine: Engine) -> None:
    """Names and values, result types processed (a SQLite date comes back a datetime, JSON parsed)."""
    with engine.begin() as connection:
        device_id = _device(connection)
        status = {
            "device_id": device_id,
            "report_id": "r1",
            "reported_at": NOW,
            "received_at": NOW,
            "overall": "pass",
            "results": [],
            "checks": {"firewall": "pass"},
        }
        connection.execute(
            insert(REPORTS).values(
                report_id="r1", device_id=device_id, reported_at=NOW, received_at=NOW, overall="pass", body={}
            )
        )
        connection.execute(insert(DEVICE_STATUS).values(status))
        through_sqlalchemy = connection.execute(
            counted._REPORT_STATE_OF.statement, {"device_id": device_id}
        ).one()
        through_driver = counted._REPORT_STATE_OF.first(connection, {"device_id": device_id})
        nothing = counted._REPORT_STATE_OF.first(connection, {"device_id": "no-such-device"})
    assert through_driver._fields == tuple(through_sqlalchemy._fields)
    assert tuple(through_driver) == tuple(through_sqlalchemy)
    assert isinstance(through_driver.reported_at, datetime)
    assert through_driver.checks == {"firewall": "pass"}
    assert nothing is None


def test_a_batchs_devices_are_read_in_one_text_whatever_their_number(engine: Engine) -> None:
    """The batch's device read finds the devices named (an unknown id, a repeated one, an id with
    quotes: none of them changes the statement) with the columns SQLAlchemy's own IN list reads,
    and its SQL is the same for one device and for forty, so PostgreSQL can prepare it once."""
    sent: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
    with engine.begin() as connection:
        ids = [_device(connection) for _ in range(40)]
        odd = 'it\'s "odd"'
        insert_device(connection, odd, enrolled_at=NOW)
        dialect = connection.dialect.name
        sent.clear()
        one = _device_rows(dialect).all(connection, {"device_ids": parameter_list(ids[:1], dialect)})
        wanted = [*ids, ids[0], odd, "no-such-device"]
        many = _device_rows(dialect).all(connection, {"device_ids": parameter_list(wanted, dialect)})
        read_texts = list(sent)
        through_sqlalchemy = connection.execute(
            select(*_KEY_COLUMNS).where(DEVICES.c.id.in_([*ids, odd]))
        ).all()
    assert [row.id for row in one] == ids[:1]
    assert sorted(tuple(row) for row in many) == sorted(tuple(row) for row in through_sqlalchemy)
    assert len(read_texts) == 2 and read_texts[0] == read_texts[1]


def test_request_ids_go_in_as_sqlalchemys_insert_stores_them_and_only_new_ones_come_back(
    engine: Engine,
) -> None:
    with engine.begin() as connection:
        device_id = _device(connection)
        dialect = connection.dialect.name
        connection.execute(insert(SEEN_REQUESTS).values(request_id="old", device_id=device_id, seen_at=NOW))
        pairs = [("a-1", device_id), ("b-2", device_id), ("old", device_id)]
        new = _seen_insert(dialect).all(connection, _seen_parameters(dialect, pairs, NOW))
        again = _seen_insert(dialect).all(connection, _seen_parameters(dialect, pairs[:1], NOW))
        stored = connection.execute(
            text("SELECT request_id, device_id, seen_at FROM seen_requests ORDER BY request_id")
        ).all()
        old = connection.execute(text("SELECT seen_at FROM seen_requests WHERE request_id = 'old'")).scalar()
    assert sorted(row.request_id for row in new) == ["a-1", "b-2"]
    assert again == []
    # The same stored form as SQLAlchemy's own insert of the same time ("old").
    assert [(request_id, device, str(seen_at)) for request_id, device, seen_at in stored] == [
        ("a-1", device_id, str(old)),
        ("b-2", device_id, str(old)),
        ("old", device_id, str(old)),
    ]


def test_it_runs_in_the_connections_transaction(engine: Engine) -> None:
    with engine.connect() as connection:
        device_id = _device(connection)
        connection.commit()
        DriverStatement(
            DEVICES.update().where(DEVICES.c.id == bindparam("key")).values(hostname="moved")
        ).execute(connection, {"key": device_id})
        assert connection.in_transaction()
        connection.rollback()
        assert (
            connection.execute(select(DEVICES.c.hostname).where(DEVICES.c.id == device_id)).scalar() == "lt1"
        )


def test_driver_errors_are_sqlalchemys_and_listeners_see_each_statement(engine: Engine) -> None:
    seen: list[tuple[str, bool]] = []
    event.listen(engine, "before_cursor_execute", lambda *args: seen.append((args[2], args[5])))
    statement = DriverStatement(insert(DEVICE_USERS).values(device_id=bindparam("d"), user=bindparam("u")))
    with engine.connect() as connection, pytest.raises(IntegrityError):  # no such device: a foreign key
        statement.execute(connection, {"d": "no-such-device", "u": "ana"})
    assert [many for sql, many in seen if sql.startswith("INSERT INTO device_users")] == [False]


def test_a_locked_sqlite_database_is_sqlalchemys_operational_error(tmp_path: Any) -> None:
    """What `server.api.busy` answers 503 must not arrive as the driver's own error class. A plain
    engine (no BEGIN IMMEDIATE) meets the lock at the statement itself, on the driver path."""
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    engine = create_engine(url, connect_args={"timeout": 0.05})
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
    statement = DriverStatement(text("INSERT INTO t (x) VALUES (:x)").bindparams(bindparam("x")))
    holder = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        with engine.connect() as connection, pytest.raises(OperationalError, match="locked"):
            statement.execute(connection, {"x": 1})
    finally:
        holder.close()


def test_what_it_cannot_send_as_is_is_refused_when_first_used(engine: Engine) -> None:
    expanding = DriverStatement(
        select(DEVICES.c.id).where(DEVICES.c.id.in_(bindparam("ids", expanding=True)))
    )
    with engine.connect() as connection:
        with pytest.raises(ValueError, match="expanding"):
            expanding.all(connection, {"ids": ["a"]})
        with pytest.raises(KeyError, match="device_id"):
            counted._REPORT_STATE_OF.first(connection, {})
