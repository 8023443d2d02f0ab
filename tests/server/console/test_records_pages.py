"""The Sign-offs, Policies and Requirements pages over plain HTTP, against a real server on SQLite
and PostgreSQL with laptops enrolled in two schools, their users reported and sign-offs sent by
signed requests. Publishing from the console reaches laptops through the heartbeat."""

from __future__ import annotations

import csv
import hashlib
import html
import io
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from contract.policy import load_policy
from contract.requirements import Requirements, requirements_from_text
from server.console.requirements_form import form_values
from tests.helpers.console import ConsoleUser, create_user, module_server, reporting_device
from tests.helpers.paths import CONFIG
from tests.helpers.servers import ServerProcess
from tests.helpers.signed_device import Device, heartbeat, report

PASSWORD = "a long enough password"
LINCOLN, WASHINGTON = "Lincoln High", "Washington Elementary"
POLICIES = CONFIG / "policies"
SECONDARY = load_policy(POLICIES / "secondary.md")
STAFF = load_policy(POLICIES / "staff.md")
SHIPPED = (CONFIG / "requirements.toml").read_text(encoding="utf-8")


@dataclass
class Fleet:
    server: ServerProcess
    student_laptop: Device  # Lincoln: ada, grace, alan
    staff_laptop: Device  # Lincoln: mr-smith
    washington_laptop: Device  # Washington: kid


def users_seen(device: Device, users: list[str], audience: str) -> None:
    body = {**report(), "identity": device.identity, "users": users, "audience": audience}
    assert device.post("/reports", body).status_code == 200


def sign(device: Device, user: str, document: Any, decision: str, full_name: str, days_ago: int = 0) -> None:
    answer = device.post(
        "/signoffs",
        {
            "record_id": uuid.uuid4().hex,
            "user": user,
            "full_name": full_name,
            "policy_id": document.id,
            "policy_version": document.version,
            "decision": decision,
            "decided_at": (datetime.now(timezone.utc) - timedelta(days=days_ago)).isoformat(),
        },
    )
    assert answer.status_code == 200, answer.text


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fleet(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    for server in module_server(request, tmp_path_factory):
        for policy in ("secondary.md", "staff.md"):
            assert server.cli("policy", "publish", str(POLICIES / policy)).returncode == 0
        lincoln = server.token(LINCOLN)
        student = reporting_device(server, lincoln, "lincoln-lt01", "LIN001")
        staff = reporting_device(server, lincoln, "lincoln-staff01", "LIN002", audience="staff")
        washington = reporting_device(server, server.token(WASHINGTON), "wash-lt01", "WAS001")
        users_seen(student, ["ada", "grace", "alan"], "student")
        users_seen(staff, ["mr-smith"], "staff")
        users_seen(washington, ["kid"], "student")
        sign(student, "ada", SECONDARY, "agree", "Ada Lovelace")
        sign(student, "grace", SECONDARY, "decline", '=HYPERLINK("http://x")')
        # Signed 400 days ago: before the last 15 August, the district's yearly renewal.
        sign(staff, "mr-smith", STAFF, "agree", "John Smith", days_ago=400)
        create_user(server, "admin@district.example", PASSWORD, "district_admin")
        create_user(server, "tech@lincoln.example", PASSWORD, "technician", (LINCOLN,))
        create_user(server, "auditor@district.example", PASSWORD, "viewer", district_wide=True)
        yield Fleet(server, student, staff, washington)


def signed_in(fleet: Fleet, email: str) -> ConsoleUser:
    person = ConsoleUser(fleet.server)
    assert person.sign_in(email, PASSWORD).status_code == 303
    return person


def coverage(page: str) -> dict[tuple[str, str], list[str]]:
    found = {}
    for school, audience, cells in re.findall(
        r'<tr data-school="([^"]*)" data-audience="([^"]*)">(.*?)</tr>', page, re.S
    ):
        found[(html.unescape(school), audience)] = re.findall(r"<td[^>]*>([^<]*)</td>", cells)[2:]
    return found


def people(page: str) -> dict[str, tuple[str, str]]:
    """user -> (state, why they must sign), from the People table."""
    table = page.split('id="signoffs"', 1)[1]
    found = {}
    for cells in re.findall(r"<tr><td>(.*?)</tr>", table, re.S):
        values = [
            html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.split(r"</td>\s*<td[^>]*>", cells)
        ]
        found[values[3]] = (values[4], values[5])
    return found


def hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, page[:3000]
    return html.unescape(found.group(1))


def test_sign_offs_coverage_and_who_must_sign_why(fleet: Fleet) -> None:
    page = signed_in(fleet, "admin@district.example").get("/signoffs")
    assert page.status_code == 200
    lines = coverage(page.text)
    # users, signed, declined, must sign, coverage
    assert lines[(LINCOLN, "student")] == ["3", "1", "1", "1", "33 %"]
    assert lines[(LINCOLN, "staff")] == ["1", "0", "0", "1", "0 %"]
    assert lines[(WASHINGTON, "student")] == ["1", "0", "0", "1", "0 %"]
    shown = people(page.text)
    assert shown["grace"] == ("declined", "—")
    assert shown["alan"] == ("must sign", "never signed")
    assert shown["mr-smith"] == ("must sign", "past renewal")
    only_staff = people(signed_in(fleet, "auditor@district.example").get("/signoffs?audience=staff").text)
    assert set(only_staff) == {"mr-smith"}
    must = people(signed_in(fleet, "admin@district.example").get("/signoffs?state=must+sign").text)
    assert {"alan", "mr-smith", "kid"} <= set(must) and "ada" not in must and "grace" not in must


def test_a_technician_reads_only_their_schools_sign_offs(fleet: Fleet) -> None:
    tech = signed_in(fleet, "tech@lincoln.example")
    page = tech.get("/signoffs").text
    assert WASHINGTON not in page and "kid" not in people(page)
    assert tech.get(f"/signoffs?school={WASHINGTON}").status_code == 403
    assert tech.get(f"/signoffs.csv?school={WASHINGTON}").status_code == 403
    exported = list(csv.DictReader(io.StringIO(tech.get("/signoffs.csv").text)))
    assert {row["school"] for row in exported} == {LINCOLN}
    assert "kid" not in tech.get("/signoffs.csv?q=kid").text


def test_the_sign_off_export_is_spreadsheet_safe_filtered_and_audited(fleet: Fleet) -> None:
    admin = signed_in(fleet, "admin@district.example")
    answer = admin.get("/signoffs.csv?state=declined")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [(r["user"], r["full_name"], r["state"]) for r in rows] == [
        ("grace", '\'=HYPERLINK("http://x")', "declined")
    ]
    audit = admin.get("/audit?q=signoffs.exported").text
    assert "signoffs.exported" in audit and "user:admin@district.example" in audit and "127.0.0.1" in audit


def policies_etag(device: Device) -> str:
    answer = device.post("/heartbeat", heartbeat()).json()
    return str(answer["policies"]["etag"])


def test_publishing_a_policy_previews_it_then_reaches_laptops(fleet: Fleet) -> None:
    admin = signed_in(fleet, "admin@district.example")
    before = policies_etag(fleet.student_laptop)
    text = (POLICIES / "secondary.md").read_text(
        encoding="utf-8"
    ) + "\n- I will keep my password to myself.\n"

    assert admin.post("/policies/preview", {"school": LINCOLN, "content": text}).status_code == 403
    assert admin.post("/policies/publish", {"school": LINCOLN, "content": text}).status_code == 403
    assert admin.post("/policies/edit", {"school": LINCOLN, "content": text}).status_code == 403
    broken = admin.post(
        "/policies/preview", {"csrf_token": admin.csrf, "school": LINCOLN, "content": "# no header"}
    )
    assert (
        broken.status_code == 400
        and "Not published" in broken.text
        and "first line must be +++" in broken.text
    )
    unknown = admin.post(
        "/policies/preview", {"csrf_token": admin.csrf, "school": "Nowhere", "content": text}
    )
    assert unknown.status_code == 400

    # A browser sends a textarea's lines with CRLF: the version is that of the text as written.
    shown = admin.post(
        "/policies/preview",
        {"csrf_token": admin.csrf, "school": LINCOLN, "content": text.replace("\n", "\r\n")},
    )
    assert shown.status_code == 200
    assert "<li>I will keep my password to myself.</li>" in shown.text
    assert html.escape(SECONDARY.title, quote=False) in shown.text
    assert re.search(r'id="grade">Reading grade <strong>\d+\.\d</strong>', shown.text)
    assert "Publish this policy" in shown.text
    assert policies_etag(fleet.student_laptop) == before  # a preview publishes nothing

    done = admin.post(
        "/policies/publish",
        {
            "csrf_token": admin.csrf,
            "school": hidden(shown.text, "school"),
            "content": hidden(shown.text, "content"),
        },
    )
    assert done.status_code == 303, done.text
    version = hashlib.sha256(text.encode()).hexdigest()
    assert done.headers["location"] == f"/policies?published={version}"
    listing = admin.get("/policies").text
    assert version[:12] in listing.split('id="versions"', 1)[1]
    assert "user:admin@district.example" in listing

    # The laptop's next heartbeat carries it (after the server's few-second cache).
    deadline = time.monotonic() + 15
    while True:
        answer = fleet.student_laptop.post("/heartbeat", heartbeat()).json()["policies"]
        versions = {d["audience"]: d["version"] for d in answer["documents"]}
        if versions["student"] == version or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert versions["student"] == version and answer["etag"] != before
    # Washington keeps the district-wide policy.
    other = fleet.washington_laptop.post("/heartbeat", heartbeat()).json()["policies"]
    assert {d["audience"]: d["version"] for d in other["documents"]}["student"] == SECONDARY.version

    # Ada signed the version before: she must sign again because it changed.
    assert people(admin.get(f"/signoffs?school={LINCOLN}").text)["ada"] == (
        "must sign",
        "the version changed",
    )
    audit = admin.get("/audit.csv?q=policy.published").text
    rows = [r for r in csv.DictReader(io.StringIO(audit)) if version in r["detail"]]
    assert [(r["actor"], r["address"]) for r in rows] == [("user:admin@district.example", "127.0.0.1")]


def test_a_kept_policy_version_previews_within_the_readers_schools(fleet: Fleet) -> None:
    tech = signed_in(fleet, "tech@lincoln.example")
    listing = tech.get("/policies").text
    ids = re.findall(r'href="/policies/versions/(\d+)"', listing)
    assert ids
    page = tech.get(f"/policies/versions/{ids[-1]}")
    assert page.status_code == 200 and 'id="policy-text"' in page.text
    assert tech.get("/policies/versions/999999").status_code == 404


def review_form(school: str, csrf: str, **changed: Any) -> dict[str, Any]:
    values = form_values(SHIPPED, Requirements()) | changed
    return {"csrf_token": csrf, "school": school, **values}


def requirements_of(device: Device, etag: str | None = None) -> Any:
    return device.post("/heartbeat", heartbeat(etag)).json()["requirements"]


def test_requirements_are_reviewed_as_a_diff_saved_and_sent_by_etag(fleet: Fleet) -> None:
    admin = signed_in(fleet, "admin@district.example")
    first = requirements_of(fleet.student_laptop)
    assert first["content"] == SHIPPED  # init published the shipped default district-wide
    old_etag = first["etag"]

    assert admin.post("/requirements/review", review_form(LINCOLN, "")).status_code == 403
    wrong = admin.post("/requirements/review", review_form(LINCOLN, admin.csrf, max_idle_minutes="ten"))
    assert wrong.status_code == 400
    assert "max_idle_minutes must be a whole number" in wrong.text and 'value="ten"' in wrong.text
    too_long = admin.post("/requirements/review", review_form(LINCOLN, admin.csrf, max_idle_minutes="0"))
    assert too_long.status_code == 400 and "must be between 1 and 240" in too_long.text
    same = admin.post("/requirements/review", review_form(LINCOLN, admin.csrf))
    assert same.status_code == 200 and "Nothing changed" in same.text

    blocked = form_values(SHIPPED, Requirements())["blocked"] + "\nRoblox* | Roblox Corporation"
    review = admin.post(
        "/requirements/review", review_form(LINCOLN, admin.csrf, max_idle_minutes="10", blocked=blocked)
    )
    assert review.status_code == 200, review.text
    assert '<span class="diff-removed">-max_idle_minutes = 15</span>' in review.text
    assert '<span class="diff-added">+max_idle_minutes = 10</span>' in review.text
    assert requirements_of(fleet.student_laptop, old_etag) is None  # reviewing saves nothing

    content = hidden(review.text, "content")
    base = {"school": LINCOLN, "content": content, "base_etag": hidden(review.text, "base_etag")}
    assert admin.post("/requirements/publish", base).status_code == 403  # no CSRF token
    assert requirements_of(fleet.student_laptop, old_etag) is None
    stale = admin.post(
        "/requirements/publish",
        {"csrf_token": admin.csrf, "school": LINCOLN, "content": content, "base_etag": "0" * 64},
    )
    assert stale.status_code == 409 and "changed since you reviewed" in stale.text
    saved = admin.post(
        "/requirements/publish",
        {
            "csrf_token": admin.csrf,
            "school": LINCOLN,
            "content": content,
            "base_etag": hidden(review.text, "base_etag"),
        },
    )
    assert saved.status_code == 303, saved.text
    new_etag = hashlib.sha256(content.encode()).hexdigest()
    page = admin.get(saved.headers["location"]).text
    assert "Saved: ETag" in page and "has its own copy" in page
    assert new_etag[:12] in page.split('id="versions"', 1)[1]

    # A signed heartbeat with the old ETag gets the new document (after the few-second cache);
    # the other school keeps the district-wide one.
    deadline = time.monotonic() + 15
    while (sent := requirements_of(fleet.student_laptop, old_etag)) is None or sent["etag"] != new_etag:
        assert time.monotonic() < deadline, sent
        time.sleep(0.5)
    published = requirements_from_text("sent", sent["content"])
    assert published.screen_lock_max_idle_minutes == 10
    assert published.software_blocked[-1].publisher == "Roblox Corporation"
    assert requirements_of(fleet.washington_laptop, old_etag) is None
    assert requirements_of(fleet.student_laptop, new_etag) is None

    audit = admin.get("/audit.csv?q=requirements.published").text
    rows = [r for r in csv.DictReader(io.StringIO(audit)) if new_etag in r["detail"]]
    assert [(r["actor"], r["address"]) for r in rows] == [("user:admin@district.example", "127.0.0.1")]


def test_read_only_roles_cannot_publish(fleet: Fleet) -> None:
    text = (POLICIES / "staff.md").read_text(encoding="utf-8") + "\nOne more line.\n"
    before = requirements_of(fleet.washington_laptop)["etag"]
    for email in ("tech@lincoln.example", "auditor@district.example"):
        person = signed_in(fleet, email)
        assert person.get("/policies").status_code == 200
        assert 'action="/policies/preview"' not in person.get("/policies").text
        assert person.get(f"/requirements?school={LINCOLN}").status_code == 200
        assert 'action="/requirements/review"' not in person.get(f"/requirements?school={LINCOLN}").text
        for path, form in (
            ("/policies/preview", {"school": LINCOLN, "content": text}),
            ("/policies/publish", {"school": LINCOLN, "content": text}),
            ("/requirements/review", review_form(LINCOLN, "", max_idle_minutes="5")),
            ("/requirements/publish", {"school": "", "content": SHIPPED + "\n", "base_etag": before}),
        ):
            answer = person.post(path, {**form, "csrf_token": person.csrf})
            assert answer.status_code == 403, (email, path)
            assert "District administrators publish" in answer.text
    assert requirements_of(fleet.washington_laptop)["etag"] == before
    staff_version = hashlib.sha256(text.encode()).hexdigest()
    assert staff_version[:12] not in signed_in(fleet, "admin@district.example").get("/policies").text
    # A technician cannot even read another school's requirements.
    assert (
        signed_in(fleet, "tech@lincoln.example").get(f"/requirements?school={WASHINGTON}").status_code == 403
    )


def test_the_cli_publishes_by_the_same_path_and_keeps_versions(fleet: Fleet, tmp_path: Any) -> None:
    """`policy publish` of a file with CRLF line ends: the text stored is the text hashed (the laptop
    checks the version against what it receives), and the CLI's publication is a listed version."""
    crlf = tmp_path / "staff-crlf.md"
    crlf.write_bytes((POLICIES / "staff.md").read_bytes().replace(b"\n", b"\r\n"))
    version = load_policy(crlf).version
    done = fleet.server.cli("policy", "publish", str(crlf), "--group", WASHINGTON)
    assert done.returncode == 0, done.stderr
    documents = fleet.washington_laptop.post("/heartbeat", heartbeat()).json()["policies"]["documents"]
    deadline = time.monotonic() + 15
    while not any(d["version"] == version for d in documents):
        assert time.monotonic() < deadline, documents
        time.sleep(0.5)
        documents = fleet.washington_laptop.post("/heartbeat", heartbeat()).json()["policies"]["documents"]
    staff = next(d for d in documents if d["version"] == version)
    assert hashlib.sha256(staff["content"].encode()).hexdigest() == version
    versions = signed_in(fleet, "admin@district.example").get("/policies").text.split('id="versions"', 1)[1]
    first_row = versions.split("<tr><td>", 2)[1]
    assert version[:12] in first_row and WASHINGTON in first_row and "<td>cli</td>" in first_row
