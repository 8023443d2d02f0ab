"""What each person's row carries for the sign-off views (migration 0015), on SQLite and PostgreSQL:
the upgrade fills it for rows written before, and the database's triggers keep the laptop's
school and audience on every person's row whatever code moves the laptop or first sees a person
(here plain SQL, as another tool or a restore would write)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from alembic import command
from sqlalchemy import Engine, insert, select, text, update

from server.db.engine import alembic_config
from server.db.tables import DEVICE_USERS, DEVICES, POLICIES, SIGNOFFS
from tests.server.console.test_console_list import ADAMS, LINCOLN, NOW, device_values

STAFF_V1, STAFF_V2, STUDENT_V1 = ("a" * 64, "b" * 64, "c" * 64)


def _policy(group: str, audience: str, version: str) -> dict[str, Any]:
    return {
        "group_name": group,
        "audience": audience,
        "policy_id": f"aup-{audience}",
        "title": "AUP",
        "version": version,
        "content": "I will.",
        "published_at": NOW,
    }


def _decision(
    number: int, device_id: str, user: str, version: str, decision: str, days_ago: int
) -> dict[str, Any]:
    return {
        "record_id": f"{number:032x}",
        "device_id": device_id,
        "user": user,
        "full_name": f"Person {user} {number}",
        "policy_id": "aup",
        "policy_version": version,
        "decision": decision,
        "decided_at": NOW - timedelta(days=days_ago),
        "received_at": NOW,
    }


SEEN = text('INSERT INTO device_users (device_id, "user", last_seen_at) VALUES (:d, :u, :t)')


def _people(engine: Engine) -> dict[tuple[str, str], tuple[Any, ...]]:
    with engine.connect() as connection:
        rows = connection.execute(select(DEVICE_USERS)).mappings().all()
    return {
        (row["device_id"], row["user"]): (
            row["group_name"],
            row["audience"],
            row["signoff_version"],
            row["signoff_decision"],
            row["signoff_full_name"],
        )
        for row in rows
    }


def test_the_upgrade_fills_each_persons_row_from_what_was_stored(engine: Engine) -> None:
    command.upgrade(alembic_config(engine), "0014")
    staff, student = "1" * 32, "2" * 32
    with engine.begin() as connection:
        connection.execute(
            insert(DEVICES),
            [
                device_values(staff, "t1", "S1", school=ADAMS, audience="staff"),
                device_values(student, "s1", "S2", school=LINCOLN, audience="student"),
            ],
        )
        connection.execute(
            insert(POLICIES), [_policy("", "staff", STAFF_V1), _policy(ADAMS, "staff", STAFF_V2)]
        )
        for device_id, user in ((staff, "ann"), (staff, "bob"), (student, "cy")):
            connection.execute(SEEN, {"d": device_id, "u": user, "t": NOW})  # no column of 0015's
        connection.execute(
            insert(SIGNOFFS),
            [
                _decision(1, staff, "ann", STAFF_V2, "decline", 9),
                _decision(2, staff, "ann", STAFF_V2, "agree", 3),  # the latest on the version in force
                _decision(3, staff, "ann", STAFF_V1, "agree", 1),  # later, but the district's version
                _decision(4, staff, "bob", STAFF_V1, "agree", 2),  # only on a version not in force
                _decision(5, student, "cy", STUDENT_V1, "agree", 2),  # no student policy published
            ],
        )
    command.upgrade(alembic_config(engine), "head")
    assert _people(engine) == {
        (staff, "ann"): (ADAMS, "staff", STAFF_V2, "agree", "Person ann 2"),
        (staff, "bob"): (ADAMS, "staff", STAFF_V2, None, None),
        (student, "cy"): (LINCOLN, "student", None, None, None),
    }
    # And back: the downgrade removes it all, and the upgrade does it again.
    command.downgrade(alembic_config(engine), "0014")
    with engine.connect() as connection:
        columns = [
            row[0]
            for row in connection.execute(text("SELECT * FROM device_users LIMIT 0")).cursor.description
        ]
    assert sorted(columns) == ["device_id", "last_seen_at", "user"]
    command.upgrade(alembic_config(engine), "head")
    assert _people(engine)[(staff, "ann")] == (ADAMS, "staff", STAFF_V2, "agree", "Person ann 2")


def test_people_follow_their_laptop_whatever_writes_it(engine: Engine) -> None:
    command.upgrade(alembic_config(engine), "head")
    laptop, other = "3" * 32, "4" * 32
    with engine.begin() as connection:
        connection.execute(
            insert(DEVICES),
            [
                device_values(laptop, "l1", "S3", school=LINCOLN),
                device_values(other, "o1", "S4", school=ADAMS),
            ],
        )
        connection.execute(SEEN, [{"d": laptop, "u": "dee", "t": NOW}, {"d": other, "u": "eve", "t": NOW}])
    seen = _people(engine)
    assert seen[(laptop, "dee")][:2] == (LINCOLN, "student")  # first seen: the laptop's
    with engine.begin() as connection:
        connection.execute(update(DEVICES).where(DEVICES.c.id == laptop).values(group_name=ADAMS))
        # A newcomer in the same transaction as the move sees the moved laptop.
        connection.execute(SEEN, {"d": laptop, "u": "fay", "t": NOW})
    with engine.begin() as connection:
        connection.execute(text("UPDATE devices SET audience = 'staff' WHERE id = :d"), {"d": laptop})
        connection.execute(text("UPDATE devices SET hostname = 'renamed' WHERE id = :d"), {"d": other})
    seen = _people(engine)
    assert seen[(laptop, "dee")][:2] == (ADAMS, "staff")
    assert seen[(laptop, "fay")][:2] == (ADAMS, "staff")
    assert seen[(other, "eve")][:2] == (ADAMS, "student")  # the other laptop's people untouched
