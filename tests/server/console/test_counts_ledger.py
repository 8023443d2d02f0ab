"""The overview's roll-up, piece by piece: what one device's change writes (pure), each day's counts
and the chart's shares read back (days before the roll-up began have none, a day without changes
carries the day before), folding past days keeps every sum, and migration 0011 fills it from what
is stored (repairing `device_status.checks` first) — on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta, timezone

from alembic import command
from sqlalchemy import func, insert, select

from server.console.trend import chart, shares_of
from server.db.count_models import FLEET_COUNT_CHANGES
from server.db.engine import alembic_config, make_engine
from server.db.lost_models import LOST_CASES
from server.db.tables import DEVICE_STATUS, DEVICES
from server.fleet import counts
from server.fleet.counted import Counted, changes

LINCOLN = "Lincoln High"


def test_a_change_writes_only_the_difference_and_nothing_when_nothing_counted_changed() -> None:
    before = Counted(LINCOLN, "linux", "student", reported=True, failing=frozenset({"firewall"}))
    after = Counted(LINCOLN, "linux", "student", reported=True, compliant=True)
    assert changes(before, after) == [
        ((LINCOLN, "linux", "student", "compliant"), 1),
        ((LINCOLN, "linux", "student", "fail:firewall"), -1),
    ]
    assert changes(after, after) == []
    moved = Counted("Adams Middle", "linux", "student", reported=True, compliant=True)
    assert ((LINCOLN, "linux", "student", "devices"), -1) in changes(after, moved)
    assert ((("Adams Middle", "linux", "student", "devices"), 1)) in changes(after, moved)
    assert changes(None, Counted(LINCOLN, "macos", "staff")) == [((LINCOLN, "macos", "staff", "devices"), 1)]


def ledger(days: dict[date, dict[str, int]]) -> counts.Ledger:
    return counts.Ledger({day: Counter(sums) for day, sums in days.items()})


def test_each_days_share_is_the_counts_at_its_end_and_days_before_the_roll_up_have_none() -> None:
    today = date(2026, 12, 1)
    kept = ledger(
        {
            today - timedelta(days=3): {"devices": 4, "reported": 2, "compliant": 1},
            today - timedelta(days=1): {"reported": 2, "compliant": 2},  # two more reported, both compliant
        }
    )
    shares = shares_of(kept, 5, today)
    assert [s.share for s in shares] == [None, 0.5, 0.5, 0.75, 0.75]  # day -2 and today carry forward
    assert [(s.devices, s.compliant) for s in shares[1:]] == [(2, 1), (2, 1), (4, 3), (4, 3)]
    drawn = chart(shares, "t")
    assert drawn.counted_from == (today - timedelta(days=3)).isoformat()
    assert drawn.summary == "75 % fully compliant on 2026-12-01 (3 of 4)"
    assert kept.totals() == Counter({"devices": 4, "reported": 4, "compliant": 3})


def rows_and_sums(engine: object, today: date) -> tuple[int, counts.Ledger]:
    with engine.connect() as connection:  # type: ignore[attr-defined]
        number = connection.execute(select(func.count()).select_from(FLEET_COUNT_CHANGES)).scalar_one()
        return int(number), counts.read_ledger(
            connection, counts.where(FLEET_COUNT_CHANGES.c.id > 0, "", "", "")
        )


def test_folding_past_days_keeps_every_days_sums_in_fewer_rows(database_url: str) -> None:
    engine = make_engine(database_url)
    today = datetime.now(timezone.utc).date()
    try:
        command.upgrade(alembic_config(engine), "head")
        rows = []
        for back in (0, 1, 1, 1, 2, 2, 150, 200):
            for measure, delta in (("devices", 1), ("compliant", 1), ("compliant", -1)):
                rows.append(
                    {
                        "day": today - timedelta(days=back),
                        "school": LINCOLN,
                        "os": "linux",
                        "audience": "student",
                        "measure": measure,
                        "delta": delta,
                    }
                )
        with engine.begin() as connection:
            connection.execute(insert(FLEET_COUNT_CHANGES), rows)
        number, before = rows_and_sums(engine, today)
        with engine.connect() as connection:
            assert counts.compaction_due(connection, today)
        counts.fold_past_days(engine, today)
        folded, after = rows_and_sums(engine, today)
        assert before.totals() == after.totals() and after.totals()["devices"] == 8
        for back in (0, 1, 2):
            day = today - timedelta(days=back)
            assert before.up_to(day) == after.up_to(day)
        assert folded < number and min(after.days) == today - timedelta(days=counts.KEPT_DAYS)
        with engine.connect() as connection:
            assert not counts.compaction_due(connection, today)
    finally:
        engine.dispose()


def test_the_migration_fills_the_roll_up_from_what_is_stored(database_url: str) -> None:
    engine = make_engine(database_url)
    now = datetime.now(timezone.utc)
    try:
        command.upgrade(alembic_config(engine), "0010")
        with engine.begin() as connection:
            for number, os in enumerate(("linux", "linux", "windows")):
                connection.execute(
                    insert(DEVICES).values(
                        id=f"{number:032x}",
                        group_name=LINCOLN,
                        hostname=f"lt-{number}",
                        os=os,
                        os_version="12",
                        macs=[],
                        identity_unreadable={},
                        public_key="k",
                        agent_version="0.1",
                        enrolled_at=now,
                        commands_pending=False,
                    )
                )
            # The first device's stored `checks` is stale (the upsert did not update it): results win.
            connection.execute(
                insert(DEVICE_STATUS).values(
                    device_id=f"{0:032x}",
                    report_id="r0",
                    reported_at=now,
                    received_at=now,
                    overall="fail",
                    results=[{"id": "firewall", "status": "fail"}],
                    checks={"firewall": "pass"},
                )
            )
            connection.execute(
                insert(DEVICE_STATUS).values(
                    device_id=f"{2:032x}",
                    report_id="r2",
                    reported_at=now,
                    received_at=now,
                    overall="pass",
                    results=[{"id": "firewall", "status": "pass"}],
                    checks={},
                )
            )
            case = connection.execute(
                insert(LOST_CASES)
                .values(
                    device_id=f"{1:032x}",
                    kind="stolen",
                    status="confirmed_stolen",
                    drill=False,
                    opened_at=now,
                    opened_by="it",
                    lock_screen=False,
                )
                .returning(LOST_CASES.c.id)
            ).scalar_one()
            connection.execute(DEVICES.update().where(DEVICES.c.id == f"{1:032x}").values(lost_case_id=case))
        command.upgrade(alembic_config(engine), "head")
        with engine.connect() as connection:
            assert counts.drift(connection) == {}
            totals = counts.read_ledger(
                connection, counts.where(FLEET_COUNT_CHANGES.c.id > 0, "", "", "")
            ).totals()
            began = counts.read_ledger(connection, FLEET_COUNT_CHANGES.c.id > 0).began
        assert (totals["devices"], totals["reported"], totals["compliant"]) == (3, 2, 1)
        assert (totals["fail:firewall"], totals["lost"]) == (1, 1)
        assert began == now.date()  # the days before have no figures
    finally:
        engine.dispose()
