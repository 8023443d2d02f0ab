"""Requests to approve an app on a real server (SQLite and PostgreSQL): stored once, listed for IT,
approved (the group's requirements published again: a new ETag) or declined (a message), both
audited, and the answer handed to the laptop in its next heartbeat's signed answer."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any

from contract.requirements import requirements_from_text
from tests.helpers.audit import audit_details
from tests.helpers.servers import ServerProcess
from tests.helpers.signed_device import IDENTITY, Device, heartbeat


def request(**changes: Any) -> dict[str, Any]:
    return {
        "record_id": uuid.uuid4().hex,
        "user": "ada",
        "full_name": "Ada Lovelace",
        "app": "Krita",
        "publisher": "KDE e.V.",
        "reason": "Art class: my portfolio needs layers.\nMs Rossi asked for it.",
        "requested_at": datetime.now(timezone.utc).isoformat(),
        **changes,
    }


def listed(server: ServerProcess, *args: str) -> list[dict[str, Any]]:
    done = server.cli("approvals", *args, "--json")
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout)["approvals"])


def enrolled(server: ServerProcess, group: str = "Lincoln High") -> Device:
    unique = uuid.uuid4().hex
    identity = {**IDENTITY, "serial": unique[:12], "hardware_uuid": unique, "machine_id": unique}
    device = Device(server, identity)
    assert device.enrol(server.token(group)).status_code == 200
    return device


def current_etag(device: Device) -> str:
    answer = device.post("/heartbeat", heartbeat())
    assert answer.status_code == 200, answer.text
    return str(answer.json()["requirements"]["etag"])


def test_a_request_is_stored_once_listed_and_approved_into_the_groups_requirements(
    server: ServerProcess,
) -> None:
    device = enrolled(server)
    other = enrolled(server, "Roosevelt Elementary")
    etag_before = current_etag(device)
    body = request()
    first = device.post("/approvals", body)
    assert first.status_code == 200, first.text
    assert first.json() == {
        "record_id": body["record_id"],
        "stored": True,
        "duplicate": False,
        "decision": "waiting",
        "message": "",
    }
    again = device.post("/approvals", body)  # sent again after a lost answer: one request
    assert again.json()["duplicate"] is True
    assert other.post("/approvals", request(app="Steam", publisher="")).status_code == 200

    everything = listed(server)
    assert [(r["app"], r["group"], r["state"]) for r in everything] == [
        ("Krita", "Lincoln High", "waiting"),
        ("Steam", "Roosevelt Elementary", "waiting"),
    ]
    mine = listed(server, "--group", "Lincoln High")
    assert len(mine) == 1 and mine[0]["reason"] == body["reason"] and mine[0]["full_name"] == "Ada Lovelace"
    table = server.cli("approvals")
    assert "Krita" in table.stdout and "Ada Lovelace" in table.stdout and "2 waiting" in table.stdout

    approved = server.cli("approvals", "approve", str(mine[0]["id"]))
    assert approved.returncode == 0, approved.stderr
    assert "Approved Krita for group Lincoln High" in approved.stdout
    assert "its own copy of the district-wide requirements" in approved.stdout
    assert listed(server, "--group", "Lincoln High")[0]["state"] == "approved"

    # The next heartbeat: IT's answer, and the requirements that approve the app (a new ETag).
    answer = device.post("/heartbeat", heartbeat(etag_before))
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert [(a["request_id"], a["app"], a["decision"]) for a in data["approvals"]] == [
        (body["record_id"], "Krita", "approved")
    ]
    assert data["requirements"]["etag"] != etag_before
    published = requirements_from_text("published", data["requirements"]["content"])
    assert any(r.name == "Krita" and r.publisher == "KDE e.V." for r in published.software_approved)
    assert "# Names use * and ? wildcards" in data["requirements"]["content"]  # IT's comments kept
    # Told once.
    assert device.post("/heartbeat", heartbeat(data["requirements"]["etag"])).json()["approvals"] == []
    # The other group's laptops keep the district-wide copy.
    other_copy = other.post("/heartbeat", heartbeat()).json()["requirements"]
    assert other_copy["etag"] == etag_before

    (audited,) = audit_details(server, "approval.approved")
    assert (audited["app"], audited["group"], audited["etag"]) == (
        "Krita",
        "Lincoln High",
        data["requirements"]["etag"],
    )
    assert (
        server.cli("approvals", "approve", str(mine[0]["id"])).stderr.strip().endswith("is already approved")
    )


def test_a_declined_request_carries_its_message_to_the_laptop(server: ServerProcess) -> None:
    device = enrolled(server)
    device.post("/heartbeat", heartbeat())
    body = request(app="Steam", publisher="")
    assert device.post("/approvals", body).status_code == 200
    (row,) = listed(server)
    no_message = server.cli("approvals", "decline", str(row["id"]), "--message", "  ")
    assert no_message.returncode == 2 and "say why in --message" in no_message.stderr
    controls = server.cli("approvals", "decline", str(row["id"]), "--message", "no\x1b[2J")
    assert controls.returncode == 2 and "control character (U+001B)" in controls.stderr
    message = "Games are not for school work; ask your teacher about Scratch instead."
    declined = server.cli("approvals", "decline", str(row["id"]), "--message", message)
    assert declined.returncode == 0, declined.stderr
    answer = device.post("/heartbeat", heartbeat()).json()
    assert [(a["decision"], a["message"]) for a in answer["approvals"]] == [("declined", message)]
    # A resend after the decision is answered with the decision.
    resent = device.post("/approvals", body).json()
    assert (resent["duplicate"], resent["decision"], resent["message"]) == (True, "declined", message)
    details = audit_details(server, "approval.declined")
    assert details and details[0]["message"] == message and details[0]["app"] == "Steam"
    unknown = server.cli("approvals", "approve", "999")
    assert unknown.returncode == 2 and "no approval request 999" in unknown.stderr


BAD_REQUESTS: list[tuple[dict[str, Any], str]] = [
    ({"reason": ""}, "reason"),
    ({"app": ""}, "app"),
    ({"reason": "x" * 1001}, "reason"),
    ({"app": "Krita\x1b]0;pwned\x07"}, "app"),
    ({"full_name": "Ada\u202eecalevoL"}, "full_name"),
    ({"publisher": "KDE\r\nX-Injected: 1"}, "publisher"),
    ({"reason": "fine\x00"}, "reason"),
    ({"record_id": "../../etc"}, "record_id"),
    ({"unknown_field": 1}, "unknown_field"),
]


def test_bad_requests_get_a_422_that_names_the_field(server: ServerProcess) -> None:
    device = enrolled(server)
    for changes, field in BAD_REQUESTS:
        answer = device.post("/approvals", request(**changes))
        assert answer.status_code == 422, (changes, answer.text)
        assert field in json.dumps(answer.json()["detail"]), (changes, answer.text)
    assert listed(server) == []
