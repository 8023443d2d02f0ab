"""The Devices, Device, Software and Enrolment tokens pages against a real server on SQLite and
PostgreSQL, with laptops enrolled and reporting over the signed agent API in three schools: search,
sort, every filter and paging done by the server; a cell for every requirement that says why when it
was never checked; the CSV of the list as filtered; the whole device; app counts and approvals
decided in the console; tokens made, used for a real enrolment, and revoked. A technician of one
school tries each page, URL and export for another school's laptop."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from html import unescape
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from markupsafe import escape
from sqlalchemy import select, update

from contract.policy import load_policy
from contract.requirements import CHECK_IDS
from server.db.engine import make_engine
from server.db.tables import CLAIMS, DEVICES
from server.fleet import enrolment_tokens
from server.trail import approve_claim
from tests.helpers.audit import audit_details
from tests.helpers.console import ConsoleUser, create_user, module_server
from tests.helpers.paths import ROOT
from tests.helpers.servers import ServerProcess
from tests.helpers.signed_device import IDENTITY, Device, heartbeat
from tests.server.test_signoffs import POLICIES, signoff

PASSWORD = "a long enough password"
LINCOLN, WASHINGTON, FILLER = "Lincoln High", "Washington Elementary", "Filler Academy"
FORMULA = '=HYPERLINK("http://x")'
SCRIPT = "<script>alert(1)</script>wash-lt01"
NO_USER = "no user has signed in since enrolment"
SOFTWARE = [
    {"name": "firefox-esr", "version": "115.12", "publisher": "Mozilla", "source": "dpkg"},
    {"name": "qbittorrent", "version": "4.5", "publisher": "", "source": "dpkg"},
    {"name": "Krita", "version": "5.1", "publisher": "KDE e.V.", "source": "dpkg"},
    {"name": "libfoo1", "version": "1.0", "source": "dpkg", "judged": False, "basis": "a library"},
]


def enrolled(server: ServerProcess, token: str, hostname: str, serial: str = "") -> Device:
    unique = uuid.uuid4().hex
    identity = dict(
        IDENTITY, hostname=hostname, serial=serial or unique[:12], hardware_uuid=unique, machine_id=unique
    )
    device = Device(server, identity)
    answer = device.enrol(token)
    assert answer.status_code == 200, answer.text
    return device


def result(
    check: str, status: str = "pass", summary: str = "", remediation: str | None = None
) -> dict[str, Any]:
    return {
        "id": check,
        "title": check,
        "status": status,
        "summary": summary or f"{check} is fine",
        "evidence": {"probe": f"{check} evidence"},
        "remediation": remediation,
        "duration_ms": 3,
    }


def send_report(
    device: Device,
    results: list[dict[str, Any]],
    users: tuple[str, ...] = (),
    software: list[dict[str, Any]] | None = None,
) -> None:
    body = {
        "report_id": uuid.uuid4().hex,
        "reported_at": datetime.now(timezone.utc).isoformat(),
        "agent_version": "0.1.0",
        "identity": device.identity,
        "results": results,
        "software": software or [],
        "dropped": {},
        "users": list(users),
    }
    answer = device.post("/reports", body)
    assert answer.status_code == 200, answer.text


@dataclass
class Fleet:
    server: ServerProcess
    lt01: Device  # Lincoln: firewall passes, screen lock never checked (no user), two users
    formula: Device  # Lincoln: firewall fails; its report left out the software check
    quiet: Device  # Lincoln: enrolled, never reported, not seen since January
    moved: Device  # enrolled in Washington, re-keyed into Lincoln by IT
    wash: Device  # Washington: firewall fails
    lincoln_token: str


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fleet(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    for server in module_server(request, tmp_path_factory):
        lincoln, washington = new_token(server, LINCOLN), new_token(server, WASHINGTON)
        lt01 = enrolled(server, lincoln, "lincoln-lt01", "LIN001")
        send_report(
            lt01,
            [result(c) for c in CHECK_IDS if c != "screen_lock"]
            + [result("screen_lock", "unknown", NO_USER, "Sign in so the tray can check this.")],
            users=("ada", "alan"),
            software=SOFTWARE,
        )
        formula = enrolled(server, lincoln, FORMULA, "LIN002")
        send_report(
            formula,
            [result(c) for c in CHECK_IDS if c not in ("firewall", "software")]
            + [result("firewall", "fail", "the firewall is off (ufw inactive)", "Turn on the firewall.")],
            users=("bea",),
        )
        quiet = enrolled(server, lincoln, "lincoln-quiet", "LIN003")
        wash = enrolled(server, washington, SCRIPT, "WAS001")
        send_report(
            wash,
            [result(c) for c in CHECK_IDS if c != "firewall"]
            + [result("firewall", "fail", "wash firewall off")],
            users=("wendy",),
            software=[{"name": "WashOnlyApp", "version": "1", "publisher": "", "source": "dpkg"}],
        )
        # Enrolled in Washington; the same laptop enrols again with Lincoln's token and IT approves
        # the claim: the record is re-keyed and moved, both in its audit entries.
        moved = enrolled(server, washington, "moved-lt01", "MOV001")
        again = Device(server, dict(moved.identity))
        assert again.enrol(lincoln).status_code == 202
        approve_claims_of(server, moved.device_id)
        # Sign-offs: on lt01 Ada agrees and Alan has not; on the formula laptop Bea agrees.
        assert server.cli("policy", "publish", str(POLICIES / "secondary.md")).returncode == 0
        version = load_policy(POLICIES / "secondary.md").version
        assert lt01.post("/signoffs", signoff("ada", version)).status_code == 200
        assert formula.post("/signoffs", signoff("bea", version, full_name="Bea Smith")).status_code == 200
        engine = make_engine(server.database_url)
        with engine.begin() as connection:
            connection.execute(
                update(DEVICES)
                .where(DEVICES.c.id == quiet.device_id)
                .values(last_seen_at=datetime(2026, 1, 15, tzinfo=timezone.utc))
            )
        engine.dispose()
        create_user(server, "admin@district.example", PASSWORD, "district_admin")
        create_user(server, "tech@lincoln.example", PASSWORD, "technician", (LINCOLN,))
        create_user(server, "principal@washington.example", PASSWORD, "viewer", (WASHINGTON,))
        yield Fleet(server, lt01, formula, quiet, again, wash, lincoln)


def new_token(server: ServerProcess, school: str) -> str:
    """Through the code `homeroom-server token create` runs, without starting a process for it."""
    engine = make_engine(server.database_url)
    try:
        with engine.begin() as connection:
            return enrolment_tokens.create_token(connection, school, None, "cli", None).token
    finally:
        engine.dispose()


def approve_claims_of(server: ServerProcess, device_id: str) -> None:
    """What `homeroom-server devices approve-claim ID` runs, for the claim waiting on the device."""
    engine = make_engine(server.database_url)
    try:
        with engine.connect() as connection:
            (claim,) = connection.execute(
                select(CLAIMS.c.id).where(CLAIMS.c.device_id == device_id)
            ).scalars()
        approve_claim(engine, claim)
    finally:
        engine.dispose()


def devices_json(server: ServerProcess) -> list[dict[str, Any]]:
    done = server.cli("devices", "--json")
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout)["devices"])


def signed_in(fleet: Fleet, email: str) -> ConsoleUser:
    person = ConsoleUser(fleet.server)
    assert person.sign_in(email, PASSWORD).status_code == 303
    return person


def listed_hostnames(html: str) -> list[str]:
    body = html.split('<table id="devices">', 1)[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [unescape(name) for name in re.findall(r'<td><a href="/devices/[0-9a-f]+">([^<]*)</a></td>', body)]


def count_of(html: str) -> int:
    return int(html.split('id="count" role="status">', 1)[1].split(" ", 1)[0])


def cell_of(html: str, hostname: str, check: str) -> str:
    row = html.split(f">{escape(hostname)}</a>", 1)[1].split("</tr>", 1)[0]
    return unescape(row.split(f'data-check="{check}">', 1)[1].split("<", 1)[0])


def exported(person: ConsoleUser, query: str = "") -> list[dict[str, str]]:
    answer = person.get("/devices.csv" + query)
    assert answer.status_code == 200, answer.text
    return list(csv.DictReader(io.StringIO(answer.text)))


def test_search_filters_and_sort_are_done_by_the_server(fleet: Fleet) -> None:
    admin = signed_in(fleet, "admin@district.example")
    lincoln_all = admin.get(f"/devices?school={quote(LINCOLN)}").text
    assert listed_hostnames(lincoln_all) == [FORMULA, "lincoln-lt01", "lincoln-quiet", "moved-lt01"]
    assert listed_hostnames(admin.get("/devices?q=LIN002").text) == [FORMULA]  # serial
    assert listed_hostnames(admin.get("/devices?q=alan").text) == ["lincoln-lt01"]  # a user seen on it
    assert listed_hostnames(admin.get("/devices?q=QUIET").text) == ["lincoln-quiet"]  # hostname, any case
    failing = admin.get("/devices?failing=firewall").text
    assert sorted(listed_hostnames(failing)) == sorted([FORMULA, SCRIPT])
    # Alan has not signed on lt01; Wendy has not signed on the Washington laptop.
    assert listed_hostnames(admin.get("/devices?signoff=missing").text) == [SCRIPT, "lincoln-lt01"]
    assert listed_hostnames(admin.get("/devices?not_seen_since=2026-06-01").text) == ["lincoln-quiet"]
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).date().isoformat()
    assert count_of(admin.get(f"/devices?school={quote(LINCOLN)}&not_seen_since={tomorrow}").text) == 4
    assert count_of(admin.get("/devices?os=windows").text) == 0
    combined = admin.get(f"/devices?school={quote(LINCOLN)}&failing=firewall&q=lin").text
    assert listed_hostnames(combined) == [FORMULA]  # its serial LIN002 matches "lin"
    by_school = listed_hostnames(admin.get(f"/devices?school={quote(LINCOLN)}&sort=hostname&dir=desc").text)
    assert by_school == ["moved-lt01", "lincoln-quiet", "lincoln-lt01", FORMULA]
    by_seen = listed_hostnames(admin.get(f"/devices?school={quote(LINCOLN)}&sort=last_seen").text)
    assert by_seen[0] == "lincoln-quiet"  # seen in January: the oldest first
    # Sorting is a link that keeps the filters and turns the order round when followed again.
    sorted_page = admin.get(f"/devices?school={quote(LINCOLN)}&sort=hostname").text
    assert 'aria-sort="ascending"' in sorted_page
    assert (
        f"/devices?school={quote_plus(LINCOLN)}&amp;dir=desc" in sorted_page
    )  # hostname is the default sort
    # Bad input is a clear answer, never a 500.
    assert admin.get("/devices?not_seen_since=yesterday").status_code == 400
    assert admin.get("/devices?failing=nonsense&sort=nonsense&dir=up").status_code == 200
    assert admin.get("/devices?q=%00%25_").status_code == 200


def test_paging(fleet: Fleet) -> None:
    token = new_token(fleet.server, FILLER)
    for number in range(51):
        enrolled(fleet.server, token, f"filler-{number:02d}")
    admin = signed_in(fleet, "admin@district.example")
    first = admin.get(f"/devices?school={quote(FILLER)}&sort=hostname&dir=desc").text
    assert count_of(first) == 51
    shown = listed_hostnames(first)
    assert len(shown) == 50 and shown[0] == "filler-50" and "Page 1 of 2" in first
    assert "&amp;page=1" in first and "Previous" not in first
    second = admin.get(f"/devices?school={quote(FILLER)}&sort=hostname&dir=desc&page=1").text
    assert listed_hostnames(second) == ["filler-00"] and "Previous" in second
    assert len(exported(admin, f"?school={quote(FILLER)}")) == 51  # the export is every page


def test_every_requirement_cell_says_something(fleet: Fleet) -> None:
    admin = signed_in(fleet, "admin@district.example")
    page = admin.get(f"/devices?school={quote(LINCOLN)}").text
    assert cell_of(page, "lincoln-lt01", "screen_lock") == f"unknown: {NO_USER}"
    assert cell_of(page, "lincoln-lt01", "firewall") == "pass"
    assert cell_of(page, FORMULA, "firewall") == "fail"
    assert (
        cell_of(page, FORMULA, "software") == "unknown: the laptop's report did not include this requirement"
    )
    assert all(cell_of(page, "lincoln-quiet", check) == "not reported yet" for check in CHECK_IDS)
    cells = re.findall(r'data-check="[a-z_]+">([^<]*)<', page)
    assert len(cells) == 4 * len(CHECK_IDS) and all(text.strip() for text in cells)
    assert "missing (1 of 2 signed; alan: not signed)" in page
    assert "signed (1 of 1)" in page and "no user seen yet" in page


def test_the_csv_is_the_filtered_list_with_its_columns(fleet: Fleet) -> None:
    admin = signed_in(fleet, "admin@district.example")
    answer = admin.get("/devices.csv?failing=firewall")
    assert answer.headers["content-type"].startswith("text/csv")
    assert "content-length" not in answer.headers  # streamed, not built whole first
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert list(rows[0]) == [
        "hostname",
        "serial",
        "asset_tag",
        "users",
        "school",
        "os",
        "last_seen",
        "overall",
        *CHECK_IDS,
        "signoff",
        "lost",
    ]
    assert sorted(row["hostname"] for row in rows) == sorted([f"'{FORMULA}", SCRIPT])  # a formula is text
    formula = next(row for row in rows if row["serial"] == "LIN002")
    assert (
        formula["firewall"] == "fail"
        and formula["users"] == "bea"
        and formula["signoff"] == "signed (1 of 1)"
    )
    assert formula["software"] == "unknown: the laptop's report did not include this requirement"
    missing = {row["hostname"]: row for row in exported(admin, "?signoff=missing")}
    assert sorted(missing) == sorted(["lincoln-lt01", SCRIPT])
    assert missing["lincoln-lt01"]["screen_lock"] == f"unknown: {NO_USER}"
    assert [row["hostname"] for row in exported(admin, "?not_seen_since=2026-06-01")] == ["lincoln-quiet"]
    audit = audit_details(fleet.server, "devices.exported")
    assert any(detail.get("failing") == "firewall" for detail in audit)


def test_the_device_page_shows_the_whole_device(fleet: Fleet) -> None:
    tech = signed_in(fleet, "tech@lincoln.example")
    page = tech.get(f"/devices/{fleet.lt01.device_id}").text
    assert "LIN001" in page and "ada, alan" in page and "HP ProBook 440 G8" in page
    results = page.split('id="results"', 1)[1].split("</table>", 1)[0]
    assert NO_USER in results and "Sign in so the tray can check this." in results
    assert "screen_lock evidence" in results  # the evidence, for IT
    software = page.split('id="software-table"', 1)[1].split("</table>", 1)[0]
    assert 'id="unapproved-count">2<' in page  # qbittorrent (blocked) and Krita (neither)
    rows = re.findall(r'<tr class="(unapproved)?"><td>([^<]+)</td>', software)
    assert rows[:2] == [("unapproved", "Krita"), ("unapproved", "qbittorrent")]
    assert ("", "firefox-esr") in rows and ("", "libfoo1") in rows
    assert "component (not judged)" in software
    signoffs = page.split('id="signoff-status"', 1)[1].split("</table>", 1)[0]
    assert "ada" in signoffs and "alan" in signoffs and "has not signed" in signoffs
    assert "Ada Lovelace" in page.split('id="signoff-records"', 1)[1].split("</table>", 1)[0]
    timeline = page.split('id="timeline"', 1)[1].split("</ol>", 1)[0]
    assert "report: unknown" in timeline and "software added: Krita 5.1 (dpkg)" in timeline
    assert "device.enrolled" in timeline

    moved = tech.get(f"/devices/{fleet.moved.device_id}").text
    audit = moved.split('id="device-audit"', 1)[1].split("</table>", 1)[0]
    assert "device.re-keyed" in audit and "device.group_moved" in audit and WASHINGTON in audit
    asked = tech.post(f"/devices/{fleet.lt01.device_id}/check-now", {"csrf_token": tech.csrf})
    assert asked.status_code == 303
    again = tech.get(f"/devices/{fleet.lt01.device_id}").text
    assert "device.command" in again.split('id="device-audit"', 1)[1]


def test_a_technician_reaches_no_other_schools_laptop_on_these_pages(fleet: Fleet) -> None:
    tech = signed_in(fleet, "tech@lincoln.example")
    other = fleet.wash.device_id
    for path in (
        "/devices?failing=firewall",
        "/devices?signoff=missing",
        "/devices?q=wash",
        "/devices?q=WAS001",
        "/devices?not_seen_since=2999-01-01",
        "/devices?sort=school&dir=desc",
    ):
        page = tech.get(path)
        assert page.status_code == 200 and "wash-lt01" not in page.text and other not in page.text, path
    for query in ("", "?failing=firewall", "?not_seen_since=2999-01-01", "?signoff=missing", "?q=wash"):
        rows = exported(tech, query)
        assert all(row["school"] == LINCOLN for row in rows) and "wash" not in str(rows), query
    assert tech.get(f"/devices?school={quote(WASHINGTON)}&failing=firewall").status_code == 403
    assert tech.get(f"/devices.csv?school={quote(WASHINGTON)}&signoff=missing").status_code == 403
    assert tech.get(f"/devices/{other}").status_code == 404
    assert tech.post(f"/devices/{other}/check-now", {"csrf_token": tech.csrf}).status_code == 404
    software = tech.get("/software")
    assert (
        software.status_code == 200
        and "WashOnlyApp" not in software.text
        and "wash-lt01" not in software.text
    )
    assert tech.get(f"/software?school={quote(WASHINGTON)}").status_code == 403
    assert tech.get("/tokens").status_code == 403
    assert tech.post("/tokens", {"csrf_token": tech.csrf, "school": LINCOLN}).status_code == 403
    # The laptop moved in from Washington: its record shows, never another school's laptop's id.
    moved = tech.get(f"/devices/{fleet.moved.device_id}").text
    assert other not in moved


def test_software_page_counts_apps_and_decides_requests(fleet: Fleet) -> None:
    krita = request_body("Krita", "KDE e.V.")
    assert fleet.lt01.post("/approvals", krita).status_code == 200
    assert fleet.wash.post("/approvals", request_body("Steam", "")).status_code == 200
    assert fleet.formula.post("/approvals", request_body("GIMP", "")).status_code == 200
    admin = signed_in(fleet, "admin@district.example")
    whole = admin.get("/software").text
    apps = whole.split('id="apps"', 1)[1]
    assert "WashOnlyApp" in apps and "qbittorrent" in apps and "libfoo1" not in apps  # a library is no app
    assert re.search(r"<td>qbittorrent</td><td>—</td><td>1</td>", apps)

    tech = signed_in(fleet, "tech@lincoln.example")
    page = tech.get("/software").text
    ids = {
        app: int(found)
        for found, app in re.findall(
            r'<tr id="request-(\d+)"><td>\d+</td><td[^>]*>waiting</td>\s*<td>([^<]+)</td>', page
        )
    }
    assert set(ids) == {"Krita", "GIMP"}  # Steam was asked on a Washington laptop
    admin_ids = {
        app: int(found)
        for found, app in re.findall(
            r'<tr id="request-(\d+)"><td>\d+</td><td[^>]*>waiting</td>\s*<td>([^<]+)</td>',
            admin.get("/software").text,
        )
    }
    assert set(admin_ids) == {"Krita", "GIMP", "Steam"}

    assert tech.post(f"/software/approvals/{ids['Krita']}/approve", {}).status_code == 403  # no CSRF token
    refused = tech.post(f"/software/approvals/{admin_ids['Steam']}/approve", {"csrf_token": tech.csrf})
    assert refused.status_code == 404  # another school's request does not exist for them
    principal = signed_in(fleet, "principal@washington.example")
    read_only = principal.post(
        f"/software/approvals/{admin_ids['Steam']}/approve", {"csrf_token": principal.csrf}
    )
    assert read_only.status_code == 403

    etag_before = fleet.lt01.post("/heartbeat", heartbeat()).json()["requirements"]["etag"]
    approved = tech.post(f"/software/approvals/{ids['Krita']}/approve", {"csrf_token": tech.csrf})
    assert approved.status_code == 200 and "Approved Krita for group Lincoln High" in approved.text
    answer = fleet.lt01.post("/heartbeat", heartbeat(etag_before)).json()
    assert answer["requirements"]["etag"] != etag_before
    assert [a["decision"] for a in answer["approvals"]] == ["approved"]
    again = tech.post(f"/software/approvals/{ids['Krita']}/approve", {"csrf_token": tech.csrf})
    assert again.status_code == 400 and "already approved" in again.text
    empty = tech.post(f"/software/approvals/{ids['GIMP']}/decline", {"csrf_token": tech.csrf, "message": " "})
    assert empty.status_code == 400
    declined = tech.post(
        f"/software/approvals/{ids['GIMP']}/decline",
        {"csrf_token": tech.csrf, "message": "Use Krita instead:\r\nit is approved now."},
    )
    assert declined.status_code == 200 and "Declined GIMP" in declined.text
    assert admin.get("/software").text.count(">waiting<") == 1  # Steam only
    lincoln_apps = tech.get("/software").text.split('id="apps"', 1)[1]
    assert '<tr class=""><td>Krita</td>' in lincoln_apps  # approved for Lincoln now

    for action in ("approval.approved", "approval.declined"):
        rows = [r for r in csv.DictReader(io.StringIO(admin.get(f"/audit.csv?q={action}").text))]
        assert [(r["actor"], r["address"]) for r in rows] == [("user:tech@lincoln.example", "127.0.0.1")]
    (declined_detail,) = audit_details(fleet.server, "approval.declined")
    assert declined_detail["message"] == "Use Krita instead:\nit is approved now."


def request_body(app: str, publisher: str) -> dict[str, Any]:
    return {
        "record_id": uuid.uuid4().hex,
        "user": "ada",
        "full_name": "Ada Lovelace",
        "app": app,
        "publisher": publisher,
        "reason": "Art class.",
        "requested_at": datetime.now(timezone.utc).isoformat(),
    }


def test_tokens_are_made_used_listed_and_revoked(fleet: Fleet) -> None:
    admin = signed_in(fleet, "admin@district.example")
    assert admin.get("/tokens").status_code == 200
    assert (
        admin.post("/tokens", {"school": "Jefferson Middle", "expires": "30"}).status_code == 403
    )  # no CSRF
    assert admin.post("/tokens", {"csrf_token": admin.csrf, "school": "  "}).status_code == 400
    assert (
        admin.post("/tokens", {"csrf_token": admin.csrf, "school": "J", "expires": "-3"}).status_code == 400
    )
    made = admin.post("/tokens", {"csrf_token": admin.csrf, "school": "Jefferson Middle", "expires": "30"})
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
    token = made.text.split('id="new-token-text">', 1)[1].split("<", 1)[0]
    expires = made.text.split('id="new-token-expires">', 1)[1].split("<", 1)[0]
    assert abs(
        datetime.fromisoformat(expires) - (datetime.now(timezone.utc) + timedelta(days=30))
    ) < timedelta(minutes=5)
    assert f"homeroom-agent enroll --server {fleet.server.url} --token {token}" in made.text
    assert f'enrolment_token = "{token}"' in made.text
    # The installers' own names, read from their sources, so the page cannot drift from them.
    wxs = (ROOT / "installer/windows/homeroom.wxs").read_text()
    url_property, token_property = re.findall(r"--server &quot;\[(\w+)\]&quot; --token &quot;\[(\w+)\]", wxs)[
        0
    ]
    msi = f"msiexec /i homeroom.msi /qn {url_property}={fleet.server.url} {token_property}={token}"
    assert msi in made.text
    templates = (ROOT / "installer/linux/debian/templates").read_text()
    questions = re.findall(r"^Template: (\S+)\nType: (\w+)", templates, re.M)
    assert [name for name, _ in questions] == ["homeroom-agent/server_url", "homeroom-agent/enrolment_token"]
    for (name, kind), value in zip(questions, (fleet.server.url, token), strict=True):
        assert f"homeroom-agent {name} {kind} {value}" in made.text
    token_id = int(re.findall(r'<tr id="token-(\d+)"><td>\d+</td><td>Jefferson Middle</td>', made.text)[0])

    laptop = enrolled(fleet.server, token, "jefferson-lt01")
    assert [d["group"] for d in devices_json(fleet.server) if d["device_id"] == laptop.device_id] == [
        "Jefferson Middle"
    ]
    listing = admin.get("/tokens").text
    assert token not in listing and "Jefferson Middle" in listing  # shown once, never again

    revoked = admin.post(f"/tokens/{token_id}/revoke", {"csrf_token": admin.csrf})
    assert revoked.status_code == 200 and "enrols no more laptops" in revoked.text
    late = Device(
        fleet.server,
        dict(IDENTITY, serial="JEF002", hardware_uuid=uuid.uuid4().hex, machine_id=uuid.uuid4().hex),
    )
    refused = late.enrol(token)
    assert refused.status_code == 403 and "revoked" in refused.text
    assert admin.post("/tokens/999999/revoke", {"csrf_token": admin.csrf}).status_code == 404
    never = admin.post("/tokens", {"csrf_token": admin.csrf, "school": "Jefferson Middle", "expires": ""})
    assert "until it is revoked (no expiry)" in never.text

    rows = [
        r
        for r in csv.DictReader(io.StringIO(admin.get("/audit.csv?q=token.").text))
        if "Jefferson" in r["detail"]
    ]
    assert [(r["action"], r["actor"], r["address"]) for r in rows] == [
        ("token.created", "user:admin@district.example", "127.0.0.1"),
        ("token.revoked", "user:admin@district.example", "127.0.0.1"),
        ("token.created", "user:admin@district.example", "127.0.0.1"),
    ]
    assert token not in admin.get("/audit.csv").text


def test_the_lost_filter_and_column_follow_each_laptop_s_case(fleet: Fleet) -> None:
    """Lost is the status of the laptop's open case (issue 12): listed while open, not for a drill,
    gone once recovered; the CSV carries it too."""
    admin = signed_in(fleet, "admin@district.example")
    assert listed_hostnames(admin.get("/devices?lost=1").text) == []
    marked = fleet.server.cli("devices", "mark-lost", "lincoln-quiet", "--kind", "stolen")
    assert marked.returncode == 0, marked.stderr
    drill = fleet.server.cli("devices", "mark-lost", "lincoln-lt01", "--kind", "lost", "--drill")
    assert drill.returncode == 0, drill.stderr
    lost_page = admin.get(f"/devices?school={quote(LINCOLN)}&lost=1").text
    assert listed_hostnames(lost_page) == ["lincoln-quiet"]
    rows = {row["hostname"]: row for row in exported(admin, f"?school={quote(LINCOLN)}")}
    assert rows["lincoln-quiet"]["lost"] == "confirmed_stolen" and rows["lincoln-lt01"]["lost"] == ""
    case = json.loads(fleet.server.cli("devices", "lost", "--json").stdout)["lost"]
    quiet_case = next(
        item["case_id"] for item in case if item["hostname"] == "lincoln-quiet" and not item["drill"]
    )
    recovered = fleet.server.cli("devices", "lost-status", str(quiet_case), "recovered")
    assert recovered.returncode == 0, recovered.stderr
    assert listed_hostnames(admin.get("/devices?lost=1").text) == []
