"""The overview's counts, exact and live, with its filters (school, OS, not seen for N days) and
the AUP sign-off coverage, against a real server on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import update

from contract.policy import load_policy
from server.db.engine import make_engine
from server.db.tables import DEVICES
from tests.helpers.console import ConsoleUser, create_user, reporting_device
from tests.helpers.servers import ServerProcess
from tests.server.console.test_roles import figure
from tests.server.test_signoffs import POLICIES, signoff

PASSWORD = "a long enough password"


def test_counts_follow_the_filters_and_the_latest_reports(server: ServerProcess) -> None:
    token = server.token("Lincoln High")
    first = reporting_device(server, token, "lin-linux", "S1", "pass")
    reporting_device(server, token, "lin-win", "S2", "fail", os_name="windows", audience="staff")
    reporting_device(server, server.token("Adams Middle"), "adams-mac", "S3", "fail", os_name="macos")
    create_user(server, "it@district.example", PASSWORD, "district_admin")
    person = ConsoleUser(server)
    assert person.sign_in("it@district.example", PASSWORD).status_code == 303

    page = person.get("/").text
    assert (figure(page, "total"), figure(page, "compliant"), figure(page, "not-seen")) == ("3", "33 %", "0")
    assert 'data-check="firewall">2<' in page and 'data-check="antivirus">0<' in page
    today = datetime.now(timezone.utc).date().isoformat()
    assert f"33 % fully compliant on {today} (1 of 3)" in page and "<polyline" not in page  # one day so far
    assert "last 90 days" in person.get("/?trend=90").text
    assert figure(person.get("/?os=windows").text, "total") == "1"
    assert figure(person.get("/?audience=staff").text, "total") == "1"
    assert figure(person.get("/?audience=student").text, "total") == "2"
    assert figure(person.get("/?school=Adams+Middle&os=linux").text, "total") == "0"
    assert figure(person.get("/?school=Lincoln+High").text, "compliant") == "50 %"

    # Silent for ten days: counted as not seen for more than 7, not for more than 30.
    engine = make_engine(server.database_url)
    with engine.begin() as connection:
        connection.execute(
            update(DEVICES)
            .where(DEVICES.c.id == first.device_id)
            .values(last_seen_at=datetime.now(timezone.utc) - timedelta(days=10))
        )
    engine.dispose()
    assert figure(person.get("/?days=7").text, "not-seen") == "1"
    assert figure(person.get("/?days=30").text, "not-seen") == "0"
    assert person.get("/?days=0").status_code == 422  # out of range: refused, not a 500

    # Sign-off coverage: two users on one laptop, one signs the policy that applies.
    secondary = load_policy(POLICIES / "secondary.md")
    assert server.cli("policy", "publish", str(POLICIES / "secondary.md")).returncode == 0
    for user in ("ada", "grace"):
        assert (
            first.post(
                "/signoffs", signoff(user, secondary.version, "agree" if user == "ada" else "decline")
            ).status_code
            == 200
        )
    assert figure(person.get("/").text, "signoffs") == "50 %"

    # A new report is counted at once: no precomputed figure to wait for.
    body_device = reporting_device(server, token, "lin-late", "S4", "pass")
    assert body_device.device_id
    assert figure(person.get("/").text, "total") == "4"
