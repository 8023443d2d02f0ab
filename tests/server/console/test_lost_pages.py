"""The console's lost-laptop pages on a real server (SQLite and PostgreSQL): the lost devices with
where each was seen, one case's timeline, "mark recovered" (CSRF, roles, audit), another school's
case hidden like one that does not exist, and the printable report as HTML and as a PDF whose text
(read back with pypdf) holds what the police and the insurer need."""

from __future__ import annotations

import io
from pathlib import Path

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
