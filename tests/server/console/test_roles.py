"""Who sees what, against a real server on SQLite and PostgreSQL with devices enrolled and
reporting in two schools. A technician of one school tries every path that exists to another
school's device: the overview, the device list, its search, a guessed device URL, the CSV export,
the school filter, the audit log, and the agent API with the session cookie."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.helpers.console import ConsoleUser, create_user, module_server, reporting_device
from tests.helpers.servers import ServerProcess
from tests.helpers.signed_device import Device, heartbeat

PASSWORD = "a long enough password"
LINCOLN, WASHINGTON = "Lincoln High", "Washington Elementary"


@dataclass
class Fleet:
    server: ServerProcess
    lincoln: list[str]  # device ids
    washington: list[str]
    first_laptop: Device


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fleet(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    for server in module_server(request, tmp_path_factory):
        lincoln_token, washington_token = server.token(LINCOLN), server.token(WASHINGTON)
        first = reporting_device(server, lincoln_token, "lincoln-lt01", "LIN001", "pass")
        lincoln = [
            first.device_id,
            reporting_device(server, lincoln_token, '=HYPERLINK("http://x")', "LIN002", "fail").device_id,
        ]
        washington = [
            reporting_device(
                server, washington_token, "<script>alert(1)</script>wash-lt01", "WAS001", "fail"
            ).device_id,
        ]
        create_user(server, "admin@district.example", PASSWORD, "district_admin")
        create_user(server, "tech@lincoln.example", PASSWORD, "technician", (LINCOLN,))
        create_user(server, "principal@washington.example", PASSWORD, "viewer", (WASHINGTON,))
        create_user(server, "auditor@district.example", PASSWORD, "viewer", district_wide=True)
        yield Fleet(server, lincoln, washington, first)


def signed_in(fleet: Fleet, email: str) -> ConsoleUser:
    person = ConsoleUser(fleet.server)
    assert person.sign_in(email, PASSWORD).status_code == 303
    return person


def figure(html: str, element_id: str) -> str:
    return html.split(f'id="{element_id}">', 1)[1].split("<", 1)[0].strip()


def exported_hostnames(person: ConsoleUser, query: str = "") -> list[str]:
    answer = person.get("/devices.csv" + query)
    assert answer.status_code == 200, answer.text
    return [row["hostname"] for row in csv.DictReader(io.StringIO(answer.text))]


def test_a_technician_sees_no_other_schools_device_by_any_path(fleet: Fleet) -> None:
    tech = signed_in(fleet, "tech@lincoln.example")
    other = fleet.washington[0]

    overview = tech.get("/").text
    assert figure(overview, "total") == "2"  # Lincoln's two, not the district's three
    assert WASHINGTON not in overview  # not even in the school filter
    listing = tech.get("/devices").text
    assert "wash-lt01" not in listing and other not in listing and "lincoln-lt01" in listing
    assert "wash-lt01" not in tech.get("/devices?q=wash").text
    assert "0 devices" in tech.get("/devices?q=WAS001").text  # search by serial
    assert "0 devices" in tech.get("/devices?q=wash-lt01").text
    guessed = tech.get(f"/devices/{other}")
    missing = tech.get("/devices/0000000000000000")
    assert guessed.status_code == missing.status_code == 404
    assert guessed.text.replace(other, "") == missing.text.replace("0000000000000000", "")  # the same answer
    assert tech.get(f"/?school={WASHINGTON}").status_code == 403
    assert tech.get(f"/devices?school={WASHINGTON}").status_code == 403
    assert tech.get(f"/devices.csv?school={WASHINGTON}").status_code == 403
    assert sorted(exported_hostnames(tech)) == sorted(['\'=HYPERLINK("http://x")', "lincoln-lt01"])
    assert exported_hostnames(tech, "?q=wash") == []
    assert tech.get("/audit").status_code == 403  # it names every school's devices
    assert tech.get("/audit.csv").status_code == 403
    # The agent API answers only signed requests: a console session opens nothing there.
    for path in ("/api/v1/reports", "/api/v1/heartbeat", "/api/v1/signoffs"):
        assert tech.post(path, {}).status_code in (401, 403, 405, 422)
        assert other not in tech.post(path, {}).text
    # The admin API reads bearer tokens only (test_admin_api.py tries the technician's token on
    # every endpoint): the session cookie opens none of it.
    admin_paths = [p for p in tech.get("/openapi.json").json()["paths"] if p.startswith("/api/v1/admin/")]
    assert len(admin_paths) >= 6
    for path in admin_paths:
        answer = tech.get(path.replace("{device_id}", other))
        assert answer.status_code in (401, 405) and other not in answer.text, path


def test_a_school_viewer_reads_their_school_only(fleet: Fleet) -> None:
    principal = signed_in(fleet, "principal@washington.example")
    assert figure(principal.get("/").text, "total") == "1"
    assert exported_hostnames(principal) == ["<script>alert(1)</script>wash-lt01"]
    assert principal.get(f"/devices/{fleet.lincoln[0]}").status_code == 404
    assert principal.get(f"/devices/{fleet.washington[0]}").status_code == 200
    assert principal.get("/audit").status_code == 403


def test_district_roles_read_everything_and_the_audit_log(fleet: Fleet) -> None:
    for email in ("admin@district.example", "auditor@district.example"):
        person = signed_in(fleet, email)
        overview = person.get("/").text
        assert figure(overview, "total") == "3"
        assert figure(overview, "compliant") == "33 %"
        assert 'data-check="firewall">2<' in overview  # two devices fail the firewall
        assert figure(person.get(f"/?school={LINCOLN}").text, "total") == "2"
        assert len(exported_hostnames(person)) == 3
        assert person.get("/audit").status_code == 200
        exported = person.get("/audit.csv")
        assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert {"id", "at", "actor", "action", "address", "detail"} <= set(rows[0])
    audit = signed_in(fleet, "admin@district.example").get("/audit?q=exported").text
    assert "devices.exported" in audit and "audit.exported" in audit and "127.0.0.1" in audit


def test_values_from_laptops_are_shown_as_text(fleet: Fleet) -> None:
    admin = signed_in(fleet, "admin@district.example")
    listing = admin.get("/devices").text
    assert "<script>alert(1)</script>" not in listing
    assert "&lt;script&gt;alert(1)&lt;/script&gt;wash-lt01" in listing
    page = admin.get(f"/devices/{fleet.washington[0]}").text
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    # A hostname that is a formula is text in the spreadsheet.
    assert '\'=HYPERLINK("http://x")' in exported_hostnames(admin)


def test_a_role_change_ends_the_sessions_it_changes(fleet: Fleet) -> None:
    create_user(fleet.server, "moving@lincoln.example", PASSWORD, "technician", (LINCOLN,))
    person = signed_in(fleet, "moving@lincoln.example")
    done = fleet.server.cli(
        "users", "role", "moving@lincoln.example", "--role", "technician", "--school", WASHINGTON
    )
    assert done.returncode == 0, done.stderr
    assert person.get("/").status_code == 303  # signed out: the old scope is gone with the session
    again = signed_in(fleet, "moving@lincoln.example")
    assert figure(again.get("/").text, "total") == "1"


def test_check_now_is_for_technicians_of_the_school_and_administrators(fleet: Fleet) -> None:
    own, other = fleet.lincoln[0], fleet.washington[0]
    tech = signed_in(fleet, "tech@lincoln.example")
    page = tech.get(f"/devices/{own}").text
    assert "Check now" in page
    assert tech.post(f"/devices/{own}/check-now", {}).status_code == 403  # no CSRF token
    assert tech.post(f"/devices/{other}/check-now", {"csrf_token": tech.csrf}).status_code == 404
    asked = tech.post(f"/devices/{own}/check-now", {"csrf_token": tech.csrf})
    assert asked.status_code == 303 and "next heartbeat" in tech.get(asked.headers["location"]).text
    answer = fleet.first_laptop.post("/heartbeat", heartbeat())
    assert [c["command"] for c in answer.json()["commands"]] == ["check_now"]

    principal = signed_in(fleet, "principal@washington.example")
    assert "Check now" not in principal.get(f"/devices/{other}").text
    assert principal.post(f"/devices/{other}/check-now", {"csrf_token": principal.csrf}).status_code == 403
    audit = signed_in(fleet, "admin@district.example").get("/audit?q=device.command").text
    assert "user:tech@lincoln.example" in audit and own in audit


def test_district_administrators_manage_users_in_the_console(fleet: Fleet) -> None:
    tech = signed_in(fleet, "tech@lincoln.example")
    assert tech.get("/users").status_code == 403
    assert (
        tech.post(
            "/users", {"csrf_token": tech.csrf, "email": "x@y.example", "role": "district_admin"}
        ).status_code
        == 403
    )

    admin = signed_in(fleet, "admin@district.example")
    assert "tech@lincoln.example" in admin.get("/users").text
    assert (
        admin.post("/users", {"email": "new@x.example", "role": "viewer", "district": "1"}).status_code == 403
    )
    refused = admin.post("/users", {"csrf_token": admin.csrf, "email": "v@x.example", "role": "viewer"})
    assert refused.status_code == 400 and "either some schools" in refused.text
    added = admin.post(
        "/users",
        {"csrf_token": admin.csrf, "email": "New.Viewer@x.example", "role": "viewer", "schools": LINCOLN},
    )
    assert added.status_code == 200
    password = added.text.split('id="new-password">', 1)[1].split("<", 1)[0]
    newcomer = ConsoleUser(fleet.server)
    assert newcomer.sign_in("new.viewer@x.example", password).status_code == 303
    assert figure(newcomer.get("/").text, "total") == "2"

    changed = admin.post(
        "/users",
        {"csrf_token": admin.csrf, "email": "new.viewer@x.example", "role": "viewer", "schools": WASHINGTON},
    )
    assert changed.status_code == 200 and newcomer.get("/").status_code == 303  # signed out by the change
    assert (
        admin.post("/users/disable", {"csrf_token": admin.csrf, "email": "new.viewer@x.example"}).status_code
        == 200
    )
    assert ConsoleUser(fleet.server).sign_in("new.viewer@x.example", password).status_code == 401
    itself = admin.post("/users/disable", {"csrf_token": admin.csrf, "email": "admin@district.example"})
    assert itself.status_code == 400

    audit = admin.get("/audit.csv?q=user.").text
    rows = [r for r in csv.DictReader(io.StringIO(audit)) if "new.viewer@x.example" in r["detail"]]
    assert [(r["action"], r["actor"], r["address"]) for r in rows] == [
        (action, "user:admin@district.example", "127.0.0.1")
        for action in ("user.created", "user.role_changed", "user.disabled")
    ]
