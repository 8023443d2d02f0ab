"""The device list's search and a device's audit entries at district scale, on SQLite and PostgreSQL:
what they find (any part of a hostname, serial, asset tag or user, `_` and `%` taken literally; the
entries by or about one device and not another's, entries written before the upgrade included), and
that each is answered from an index (migration 0013) rather than by reading every row; and that
the export's quicker cells and spreadsheet rule say exactly what the page's do."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from alembic import command
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, insert, text

from contract.requirements import CHECK_IDS
from server.console import fleet_views
from server.console.fleet_views import Filters
from server.console.roles import Scope
from server.db.engine import alembic_config, migrate
from server.db.tables import AUDIT, DEVICE_USERS, DEVICES
from server.fleet.claims import audit
from server.fleet.ingest import check_statuses
from server.fleet.requirement_status import cells, cells_from_statuses
from server.fleet.spreadsheet import FORMULA_STARTS, LEADING_BLANKS, spreadsheet_safe
from server.trail import audit_entries, device_audit_query

EVERY_SCHOOL = Scope(None)
LINCOLN, ADAMS = "Lincoln High", "Adams Middle"
NOW = datetime(2026, 11, 2, 9, 30, tzinfo=timezone.utc)


def device_values(
    device_id: str, hostname: str, serial: str, school: str = LINCOLN, **extra: Any
) -> dict[str, Any]:
    return {
        "id": device_id,
        "group_name": school,
        "hostname": hostname,
        "serial": serial,
        "os": "linux",
        "os_version": "12",
        "macs": [],
        "identity_unreadable": {},
        "public_key": "k",
        "agent_version": "0.1",
        "enrolled_at": NOW,
        "commands_pending": False,
        "asset_tag": None,
        **extra,
    }


def plan(connection: Connection, statement: Any) -> str:
    """The database's plan for `statement`, with sequential scans priced out on PostgreSQL (its tables
    here are small: the planner would scan them whatever indexes exist, but must use one if it can)."""
    if connection.dialect.name == "postgresql":
        compiled = statement.compile(dialect=connection.dialect)
        connection.execute(text("SET LOCAL enable_seqscan = off"))
        found = connection.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params)
        return "\n".join(str(row[0]) for row in found)
    compiled = statement.compile(connection, compile_kwargs={"literal_binds": True})
    return "\n".join(str(row[-1]) for row in connection.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))


# ---- search ----


@pytest.fixture
def searched(engine: Engine) -> Engine:
    migrate(engine)
    with engine.begin() as connection:
        connection.execute(
            insert(DEVICES),
            [
                device_values("a" * 32, "LIN-LT-0042", "5CG04471XQ", asset_tag="TAG-88120"),
                device_values("b" * 32, "lin-lt-0043", "5CG09990ZZ"),
                device_values("c" * 32, "adams-lt-0001", "C02XK1ABCD", ADAMS),
                device_values("d" * 32, "lab_100%", "PF3X1234"),
            ],
        )
        connection.execute(
            insert(DEVICE_USERS),
            [
                {"device_id": "a" * 32, "user": "j_smith", "last_seen_at": NOW},
                {"device_id": "b" * 32, "user": "jxsmith", "last_seen_at": NOW},
                {"device_id": "c" * 32, "user": "ada", "last_seen_at": NOW},
            ],
        )
    return engine


def found(engine: Engine, search: str, scope: Scope = EVERY_SCHOOL) -> list[str]:
    with engine.connect() as connection:
        rows, total = fleet_views.device_page(connection, scope, Filters(search=search), 0)
    assert total == len(rows)
    return [row.hostname for row in rows]


def test_the_search_finds_any_part_of_each_searched_column(searched: Engine) -> None:
    assert found(searched, "4471") == ["LIN-LT-0042"]  # the middle of a serial, as a sticker shows it
    assert found(searched, "cg0") == ["LIN-LT-0042", "lin-lt-0043"]  # any case
    assert found(searched, "LT-004") == ["LIN-LT-0042", "lin-lt-0043"]  # a hostname's middle
    assert found(searched, "8812") == ["LIN-LT-0042"]  # an asset tag's middle
    assert found(searched, "smith") == ["LIN-LT-0042", "lin-lt-0043"]  # a user's
    assert found(searched, "ADA") == ["adams-lt-0001"]  # a hostname and a user: the device once
    assert found(searched, "nothing like it") == []
    assert found(searched, "Q") == ["LIN-LT-0042"]  # one letter: its own query (no trigram in it)
    assert found(searched, "ad") == ["adams-lt-0001"]


def test_underscore_and_percent_are_letters_in_a_search(searched: Engine) -> None:
    assert found(searched, "j_s") == ["LIN-LT-0042"]  # not "jxsmith": `_` is not a wildcard
    assert found(searched, "b_1") == ["lab_100%"]
    assert found(searched, "100%") == ["lab_100%"]
    assert found(searched, "0%") == ["lab_100%"]  # not every serial with a 0 in it
    assert found(searched, "\\") == []


def test_the_search_stays_inside_the_readers_schools(searched: Engine) -> None:
    assert found(searched, "lt-00", Scope(frozenset({ADAMS}))) == ["adams-lt-0001"]
    assert found(searched, "4471", Scope(frozenset({ADAMS}))) == []


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite scans: small districts
def test_each_searched_column_has_a_trigram_index_on_postgresql(searched: Engine) -> None:
    """Each column's index exists, and a plan that can use one does. (Which index the planner takes
    for four rows says little; the bench measures the search at 100,000 laptops.)"""
    assert searched.dialect.name == "postgresql"
    with searched.begin() as connection:
        defined = dict(
            connection.execute(
                text("SELECT indexname, indexdef FROM pg_indexes WHERE indexname LIKE '%\\_trgm'")
            ).all()
        )
        shown = plan(connection, fleet_views.search_matches("4471"))
    assert sorted(defined) == [
        "ix_device_users_user_trgm",
        "ix_devices_asset_tag_trgm",
        "ix_devices_hostname_trgm",
        "ix_devices_serial_trgm",
    ]
    assert all("USING gin" in definition and "gin_trgm_ops" in definition for definition in defined.values())
    assert "Bitmap Index Scan on ix_devices_serial_trgm" in shown, shown
    assert "Index Cond: ((serial)::text ~~* '%4471%'::text)" in shown, shown


# ---- a device's audit entries ----


def test_entries_written_before_the_upgrade_are_found_by_device(engine: Engine) -> None:
    """Migration 0013 fills `audit_devices` for the log as it was: every way an entry names a device."""
    command.upgrade(alembic_config(engine), "0010")
    first, second = "1" * 32, "2" * 32
    with engine.begin() as connection:
        connection.execute(
            insert(DEVICES), [device_values(first, "one", "S1"), device_values(second, "two", "S2")]
        )

        def entry(actor: str, action: str, detail: Any) -> None:
            connection.execute(insert(AUDIT).values(at=NOW, actor=actor, action=action, detail=detail))

        entry(f"device:{first}", "device.enrolled", {"group": LINCOLN})
        entry("admin@district.example", "device.command", {"device": second, "command": "check_now"})
        entry(f"device:{first}", "device.identity_collision", {"device": first, "other": second})
        entry("admin@district.example", "console.signed_in", {})
        entry("admin@district.example", "odd.detail", {"device": 7, "other": None})  # not a device id
        entry("admin@district.example", "odd.list", [first])
        entry("device:", "odd.actor", {})
    command.upgrade(alembic_config(engine), "head")
    with engine.connect() as connection:
        of_first = [e["action"] for e in audit_entries(connection, 50, first)]
        of_second = [e["action"] for e in audit_entries(connection, 50, second)]
        everything = audit_entries(connection, 50, None)
    assert of_first == ["device.enrolled", "device.identity_collision"]
    assert of_second == ["device.command", "device.identity_collision"]
    assert len(everything) == 7


def test_entries_written_after_the_upgrade_are_found_by_device_newest_first(engine: Engine) -> None:
    """Whatever code writes an entry (here the fleet's own `audit`), the database links it."""
    migrate(engine)
    watched, other = "3" * 32, "4" * 32
    with engine.begin() as connection:
        connection.execute(
            insert(DEVICES), [device_values(watched, "w", "S3"), device_values(other, "o", "S4")]
        )
        for number in range(60):
            audit(connection, "cli", "device.command", {"device": watched, "number": number})
            audit(connection, f"device:{other}", "device.local_problem", {"problems": [str(number)]})
        audit(connection, f"device:{watched}", "device.re-keyed", {"device": watched, "reason": "x"})
        connection.execute(
            insert(AUDIT).values(
                at=NOW + timedelta(seconds=1),
                actor="cli",
                action="device.group_moved",
                detail={"other": watched},
            )
        )
    with engine.connect() as connection:
        entries = audit_entries(connection, 50, watched)
        others = audit_entries(connection, 50, other)
    assert len(entries) == 50
    # Oldest first, as `homeroom-server audit` prints them: the newest 50 of the 62 about it.
    assert [e["detail"].get("number") for e in entries[:48]] == list(range(12, 60))
    assert [e["action"] for e in entries[-2:]] == ["device.re-keyed", "device.group_moved"]
    assert {e["action"] for e in others} == {"device.local_problem"} and len(others) == 50


def test_a_devices_entries_are_read_from_an_index(engine: Engine) -> None:
    migrate(engine)
    with engine.begin() as connection:
        shown = plan(connection, device_audit_query("5" * 32, 50))
    if engine.dialect.name == "postgresql":
        assert "audit_devices_pkey" in shown and "Seq Scan" not in shown, shown
    else:
        assert "SEARCH audit_devices USING" in shown and "SCAN audit_log" not in shown, shown


# ---- the export's cells ----


def reference_spreadsheet_safe(value: object) -> str:
    """The rule as first written (every cell copied through `translate`, every cell stripped): the
    quicker `spreadsheet_safe` must say exactly what it says."""
    removed = str.maketrans({"\x00": None, "\x1b": None})
    text = ("" if value is None else str(value)).translate(removed)
    if text[:1] in FORMULA_STARTS:
        return "'" + text
    rest = text.lstrip(LEADING_BLANKS)
    if rest and rest[0] in FORMULA_STARTS:
        return "'" + text
    return text


CELL_TEXT = st.text(
    alphabet=st.sampled_from([*FORMULA_STARTS, *LEADING_BLANKS, "\x00", "\x1b", "a", "1", "'", '"', ","]),
    max_size=8,
) | st.text(max_size=20)


@given(st.one_of(CELL_TEXT, st.none(), st.integers()))
def test_the_quicker_spreadsheet_rule_says_what_the_rule_says(value: object) -> None:
    assert spreadsheet_safe(value) == reference_spreadsheet_safe(value)


RESULT = st.fixed_dictionaries(
    {
        "id": st.sampled_from([*CHECK_IDS, "other_check"]),
        "status": st.sampled_from(["pass", "fail", "unknown", "error", ""]),
        "summary": st.text(max_size=5),
    }
)


@given(st.lists(RESULT, max_size=8), st.booleans())
def test_the_exports_cells_from_statuses_say_what_the_results_say(
    results: list[dict[str, Any]], reported: bool
) -> None:
    """The export reads each requirement's status (as ingest stores it beside the results) and the
    results only where a cell needs the laptop's reason: the text must be the page's."""
    quick = cells_from_statuses(check_statuses(results), reported)
    full = cells(results, reported)
    if quick is None:
        assert reported and any(full[c].status not in ("pass", "fail", "not-required") for c in CHECK_IDS)
        return
    assert {c: cell.text for c, cell in quick.items()} == {c: cell.text for c, cell in full.items()}
