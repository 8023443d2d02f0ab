"""`software_changes` in a report, sent signed to a real server on SQLite and PostgreSQL: a good one
is stored with the report, a bad one is a short 422 and nothing is stored."""

from __future__ import annotations

import json

from tests.helpers.audit import stored_report_count
from tests.helpers.servers import ServerProcess
from tests.helpers.signed_device import Device, report

ZOOM = {"name": "zoom", "version": "6.2", "publisher": "Zoom", "source": "dpkg"}


def changes(**override: object) -> dict[str, object]:
    return {
        "added": [ZOOM],
        "removed": [],
        "since": "2026-12-01T10:00:00+00:00",
        "seen_by": "watch",
        **override,
    }


def test_a_reported_change_is_stored_and_a_bad_one_is_a_short_422(server: ServerProcess) -> None:
    device = Device(server)
    assert device.enrol(server.token()).status_code == 200
    assert device.post("/reports", {**report(), "software_changes": changes()}).status_code == 200
    assert stored_report_count(server) == 1
    bad = [
        changes(seen_by="the student"),
        changes(added=[{**ZOOM, "licence_key": "X"}]),
        changes(added=[ZOOM] * 10_001),
        changes(since="yesterday"),
        changes(removed=[{**ZOOM, "name": "zo\u0000om"}]),
        {key: value for key, value in changes().items() if key != "seen_by"},
    ]
    for software_changes in bad:
        answer = device.post("/reports", {**report(), "software_changes": software_changes})
        assert answer.status_code == 422, (answer.status_code, answer.text[:200])
        assert len(answer.content) < 3000 and "zoom" not in json.dumps(answer.json()["detail"]).lower()
    assert stored_report_count(server) == 1
