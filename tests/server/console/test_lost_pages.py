"""The console's lost-laptop pages on a real server (SQLite and PostgreSQL): the lost devices with
where each was seen, one case's timeline, "mark recovered" (CSRF, roles, audit), another school's
case hidden like one that does not exist, and the printable report as HTML and as a PDF whose text
(read back with pypdf) holds what the police and the insurer need."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from pypdf import PdfReader

from tests.helpers.audit import audit_details
from tests.helpers.console import ConsoleUser, create_user
from tests.helpers.servers import ServerProcess
from tests.helpers.signed_device import heartbeat, report
from tests.server.test_lost_cases import cases, enrolled, evidence, lost_report

PASSWORD = "a long enough password"


def signed_in(server: ServerProcess, email: str) -> ConsoleUser:
    person = ConsoleUser(server)
    assert person.sign_in(email, PASSWORD).status_code == 303
    return person


def test_lost_pages_report_and_mark_recovered(server: ServerProcess, tmp_path: Path) -> None:
    teacher, student = enrolled(server), enrolled(server)
    elsewhere = enrolled(server, group="Washington Elementary")
    serial = student.identity["serial"]
    assert (
        student.post("/reports", {**report(), "identity": student.identity, "users": ["ada"]}).status_code
        == 200
    )
    assert server.cli("devices", "set-asset-tag", serial, "LHS-0042").returncode == 0
    points = tmp_path / "aps.csv"
    points.write_text("BSSID,Building,Room\n00:1a:2b:3c:4d:50,Lincoln High,Library\n")
    assert server.cli("networks", "import-access-points", str(points)).returncode == 0
    filed = lost_report(
        "serial", serial, what_happened="Taken from the library <b>table</b>.", police_report="PD-77"
    )
    assert teacher.post("/lost-reports", filed).json()["outcome"] == "recorded"
    case_id = student.post("/heartbeat", heartbeat()).json()["lost_mode"]["case_id"]
    heard = [{"bssid": "00:1a:2b:3c:4d:50", "ssid": "LHS-Staff", "signal": -60, "channel": 36}]
    assert student.post("/lost-evidence", evidence(case_id, wifi=heard)).status_code == 200
    assert server.cli("devices", "mark-lost", elsewhere.identity["serial"], "--kind", "lost").returncode == 0

    create_user(server, "tech@lincoln.example", PASSWORD, "technician", ("Lincoln High",))
    create_user(server, "viewer@lincoln.example", PASSWORD, "viewer", ("Lincoln High",))
    tech = signed_in(server, "tech@lincoln.example")

    listed = tech.get("/lost")
    assert listed.status_code == 200
    assert serial in listed.text and "seen near Lincoln High, Library" in listed.text
    assert elsewhere.identity["serial"] not in listed.text  # another school's case
    other_id = next(c["case_id"] for c in cases(server) if c["school"] != "Lincoln High")
    assert tech.get(f"/lost/{other_id}").status_code == 404
    assert tech.get(f"/lost/{other_id}/report.pdf").status_code == 404

    page = tech.get(f"/lost/{case_id}")
    assert page.status_code == 200 and "Seen near Lincoln High, Library" in page.text
    assert "Taken from the library &lt;b&gt;table&lt;/b&gt;." in page.text  # escaped
    printable = tech.get(f"/lost/{case_id}/report")
    for expected in (serial, "LHS-0042", "HP ProBook 440 G8", "ada", "PD-77", "Maria Rossi", "LHS-Staff"):
        assert expected in printable.text, expected
    pdf = tech.get(f"/lost/{case_id}/report.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    for expected in (
        serial,
        "LHS-0042",
        "HP ProBook 440 G8",
        "ada",
        "PD-77",
        "Maria Rossi",
        "seen near Lincoln High",
    ):
        assert expected in text, expected

    viewer = signed_in(server, "viewer@lincoln.example")
    read_only = viewer.post(f"/lost/{case_id}/recovered", {"csrf_token": viewer.csrf})
    assert read_only.status_code == 403
    forged = tech.post(f"/lost/{case_id}/recovered", {"csrf_token": "0" * 64})
    assert forged.status_code == 403
    done = tech.post(f"/lost/{case_id}/recovered", {"csrf_token": tech.csrf, "note": "At the office"})
    assert done.status_code == 303, done.text
    assert student.post("/heartbeat", heartbeat()).json()["lost_mode"] is None
    (audited,) = audit_details(server, "lost.status_changed")
    assert audited["to"] == "recovered" and audited["note"] == "At the office"
    assert "Marked recovered" in tech.get(f"/lost/{case_id}?done=1").text


def test_it_marks_a_laptop_lost_and_sets_its_asset_tag_from_the_device_page(server: ServerProcess) -> None:
    """Issue 12 §1-2: "IT marks a device lost from the console", the asset tag "settable by CLI and
    console": the same code as the CLI, CSRF-checked, read-only roles refused, another school's
    laptop hidden, audited with the person and the laptop entering lost mode at its next heartbeat."""
    laptop = enrolled(server)
    elsewhere = enrolled(server, group="Washington Elementary")
    create_user(server, "tech@lincoln.example", PASSWORD, "technician", ("Lincoln High",))
    create_user(server, "viewer@lincoln.example", PASSWORD, "viewer", ("Lincoln High",))
    tech = signed_in(server, "tech@lincoln.example")
    viewer = signed_in(server, "viewer@lincoln.example")
    page = tech.get(f"/devices/{laptop.device_id}")
    assert page.status_code == 200 and 'action="/devices/' in page.text and "Mark lost" in page.text
    assert "Mark lost" not in viewer.get(f"/devices/{laptop.device_id}").text

    mark = {"csrf_token": tech.csrf, "kind": "stolen", "notice": "Please return me to Lincoln High."}
    assert (
        viewer.post(f"/devices/{laptop.device_id}/mark-lost", {**mark, "csrf_token": viewer.csrf}).status_code
        == 403
    )
    assert (
        tech.post(f"/devices/{laptop.device_id}/mark-lost", {**mark, "csrf_token": "0" * 64}).status_code
        == 403
    )
    assert tech.post(f"/devices/{elsewhere.device_id}/mark-lost", mark).status_code == 404
    assert (
        tech.post(f"/devices/{laptop.device_id}/mark-lost", {**mark, "kind": "misplaced"}).status_code == 400
    )
    assert heartbeat_lost_mode(laptop) is None  # nothing was marked by the refused forms

    done = tech.post(f"/devices/{laptop.device_id}/mark-lost", mark)
    assert done.status_code == 303, done.text
    lost_mode = heartbeat_lost_mode(laptop)
    assert lost_mode is not None and lost_mode["notice"] == "Please return me to Lincoln High."
    (marked,) = audit_details(server, "lost.marked")
    assert marked["device"] == laptop.device_id and marked["kind"] == "stolen"
    again = tech.post(f"/devices/{laptop.device_id}/mark-lost", mark)
    assert again.status_code == 409 and "already confirmed stolen" in again.text

    tag = {"csrf_token": tech.csrf, "asset_tag": "LHS-0099"}
    assert (
        viewer.post(f"/devices/{laptop.device_id}/asset-tag", {**tag, "csrf_token": viewer.csrf}).status_code
        == 403
    )
    assert (
        tech.post(f"/devices/{laptop.device_id}/asset-tag", {**tag, "asset_tag": "\x1b[2J"}).status_code
        == 400
    )
    assert tech.post(f"/devices/{laptop.device_id}/asset-tag", tag).status_code == 303
    assert any(case["asset_tag"] == "LHS-0099" for case in cases(server))
    assert (
        tech.post(f"/devices/{elsewhere.device_id}/asset-tag", {**tag, "asset_tag": "WES-1"}).status_code
        == 404
    )


def heartbeat_lost_mode(laptop: Any) -> Any:
    answer = laptop.post("/heartbeat", heartbeat())
    assert answer.status_code == 200, answer.text
    return answer.json()["lost_mode"]


def test_the_device_page_shows_every_lost_case_with_its_timeline(server: ServerProcess) -> None:
    """Issue 12 §2: "the device page's lost timeline": each case of the laptop, closed ones too and
    newest first, with every change, who made it and when, the notes escaped; read-only roles see
    it; a laptop never lost says so rather than showing an empty table."""
    laptop, teacher = enrolled(server), enrolled(server)
    serial = laptop.identity["serial"]
    create_user(server, "viewer@lincoln.example", PASSWORD, "viewer", ("Lincoln High",))
    viewer = signed_in(server, "viewer@lincoln.example")
    assert "never been reported lost or stolen" in viewer.get(f"/devices/{laptop.device_id}").text

    filed = lost_report("serial", serial, kind="lost")
    assert teacher.post("/lost-reports", filed).json()["outcome"] == "recorded"
    (first,) = cases(server)
    note = "Found in the <b>gym</b>"
    assert (
        server.cli("devices", "lost-status", str(first["case_id"]), "recovered", "--note", note).returncode
        == 0
    )
    assert server.cli("devices", "mark-lost", serial, "--kind", "stolen").returncode == 0
    (second,) = cases(server)  # the open one

    page = viewer.get(f"/devices/{laptop.device_id}")
    assert page.status_code == 200
    text = page.text
    assert "never been reported lost" not in text
    newest, oldest = (
        text.index(f"Case {second['case_id']}</a>: stolen"),
        text.index(f"Case {first['case_id']}</a>: lost"),
    )
    assert newest < oldest  # newest first
    first_case = text[oldest:]
    assert "recovered" in first_case and "closed" in first_case
    assert "Found in the &lt;b&gt;gym&lt;/b&gt;" in first_case and "<b>gym</b>" not in text
    assert "Maria Rossi (rossi on" in first_case  # the user's report opened it
    second_case = text[newest:oldest]
    assert ", open." in second_case and "opened" in second_case
    assert text.count('class="lost-timeline"') == 2
    assert viewer.get(f"/devices/{teacher.device_id}").text.count('class="lost-timeline"') == 0
