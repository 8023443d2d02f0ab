"""The overview's AUP coverage, now counted by the database, against the sign-off report (which
judges each person in Python): the same people and the same "signed" on both databases, with
each way a sign-off stops counting (a decline after it, an older version, a group's renewal by
days, the district's yearly date, its exact boundary); and the rule turned into one moment."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests
from alembic import command
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import insert, select

from contract.policy import load_policy
from contract.renewal import Renewal
from server.console.signoff_coverage import counts_from
from server.db.engine import alembic_config, make_engine
from server.db.tables import DEVICE_STATUS, DEVICES
from server.fleet.signoffs import agreement_status
from tests.helpers.console import reporting_device
from tests.helpers.paths import CONFIG
from tests.helpers.servers import ServerProcess
from tests.server.console.test_admin_api import token_for
from tests.server.test_signoffs import POLICIES, signoff, signoffs

LINCOLN, ADAMS = "Lincoln High", "Adams Middle"


def last_yearly_date(now: datetime, month: int, day: int) -> datetime:
    boundary = datetime(now.year, month, day, tzinfo=timezone.utc)
    return boundary if boundary <= now else boundary.replace(year=now.year - 1)


def test_coverage_counts_what_the_sign_off_report_says(server: ServerProcess, tmp_path: Path) -> None:
    secondary = load_policy(POLICIES / "secondary.md")
    assert server.cli("policy", "publish", str(POLICIES / "secondary.md")).returncode == 0
    # Lincoln renews every 30 days; Adams keeps the district's yearly date (08-15, from init).
    thirty_days = tmp_path / "lincoln.toml"
    thirty_days.write_text(
        (CONFIG / "requirements.toml")
        .read_text(encoding="utf-8")
        .replace('renew_on = "08-15"', "")
        .replace("renew_after_days = 0", "renew_after_days = 30"),
        encoding="utf-8",
    )
    published = server.cli("requirements", "publish", str(thirty_days), "--group", LINCOLN)
    assert published.returncode == 0, published.stderr

    now = datetime.now(timezone.utc)
    district_boundary = last_yearly_date(now, 8, 15)
    lincoln = reporting_device(server, server.token(LINCOLN), "lin-01", "L1")
    adams = reporting_device(server, server.token(ADAMS), "adams-01", "A1")
    decisions = [
        (lincoln, "ada", secondary.version, "agree", now - timedelta(hours=1)),
        (lincoln, "grace", secondary.version, "agree", now - timedelta(hours=2)),
        (lincoln, "grace", secondary.version, "decline", now - timedelta(hours=1)),
        (lincoln, "alan", "0" * 64, "agree", now - timedelta(hours=1)),
        (lincoln, "bob", secondary.version, "agree", now - timedelta(days=31)),
        (lincoln, "dan", secondary.version, "agree", now - timedelta(days=29)),
        (adams, "carol", secondary.version, "agree", district_boundary),
        (adams, "eve", secondary.version, "agree", district_boundary - timedelta(seconds=1)),
    ]
    for device, user, version, decision, at in decisions:
        body = signoff(user, version, decision) | {"decided_at": at.isoformat()}
        assert device.post("/signoffs", body).status_code == 200

    report = {(row["hostname"], row["user"]): row["status"] for row in signoffs(server, "--json")}
    assert report == {
        ("lin-01", "ada"): "signed",
        ("lin-01", "grace"): "declined",
        ("lin-01", "alan"): "not signed",
        ("lin-01", "bob"): "must sign again",
        ("lin-01", "dan"): "signed",
        ("adams-01", "carol"): "signed",
        ("adams-01", "eve"): "must sign again",
    }
    token = token_for(server, "admin@localhost")

    def coverage(**params: str) -> tuple[int, int]:
        answer = requests.get(
            f"{server.url}/api/v1/admin/overview",
            params=params,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ).json()
        return answer["signoff_people"], answer["signoff_signed"]

    assert coverage() == (7, 3)
    assert coverage(school=LINCOLN) == (5, 2)
    assert coverage(school=ADAMS) == (2, 1)
    assert coverage(audience="staff") == (0, 0)


@given(
    yearly=st.none() | st.tuples(st.integers(1, 12), st.integers(1, 28)),
    days=st.none() | st.integers(1, 800),
    now=st.datetimes(datetime(2001, 1, 1), datetime(2090, 1, 1), timezones=st.just(timezone.utc)),
    back=st.timedeltas(timedelta(0), timedelta(days=900)),
)
def test_the_earliest_agreement_that_counts_is_the_renewal_rule(
    yearly: tuple[int, int] | None, days: int | None, now: datetime, back: timedelta
) -> None:
    renewal = Renewal(yearly_on=yearly, every_days=days)
    signed_at = now - back
    counts = agreement_status(signed_at, renewal, now)[0] == "signed"
    assert counts == (signed_at >= counts_from(renewal, now))


def test_each_requirements_status_is_filled_in_for_reports_stored_before(database_url: str) -> None:
    """Migration 0009 fills `device_status.checks` from the stored results."""
    engine = make_engine(database_url)
    try:
        command.upgrade(alembic_config(engine), "0007")
        now = datetime.now(timezone.utc)
        results = [
            {"id": "firewall", "status": "fail", "evidence": {"ufw": "off"}},
            {"id": "antivirus", "status": "pass"},
            "not a result",
        ]
        with engine.begin() as connection:
            connection.execute(
                insert(DEVICES).values(
                    id="d" * 16,
                    group_name=LINCOLN,
                    hostname="old",
                    os="linux",
                    os_version="12",
                    macs=[],
                    identity_unreadable={},
                    public_key="k",
                    agent_version="0.1",
                    enrolled_at=now,
                    commands_pending=False,
                )
            )
            connection.execute(
                insert(DEVICE_STATUS).values(
                    device_id="d" * 16,
                    report_id="r1",
                    reported_at=now,
                    received_at=now,
                    overall="fail",
                    results=results,
                )
            )
        command.upgrade(alembic_config(engine), "head")
        with engine.connect() as connection:
            checks = connection.execute(select(DEVICE_STATUS.c.checks)).scalar_one()
        assert checks == {"firewall": "fail", "antivirus": "pass"}
    finally:
        engine.dispose()
