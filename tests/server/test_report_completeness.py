"""A device record carries every requirement the group has enabled, reported or not (real server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from server.fleet.completeness import MISSING_SUMMARY, complete_results
from tests.helpers.servers import ServerProcess
from tests.helpers.signed_device import Device, devices, report

FIVE = ("disk_encryption", "firewall", "power_on_password", "antivirus", "software")


def five_passing() -> dict[str, Any]:
    """A report as the root service sent it before: every system check passed, no screen lock."""
    body = report()
    template = body["results"][0]
    body["results"] = [{**template, "id": check_id, "title": check_id} for check_id in FIVE]
    return body


def test_a_report_without_screen_lock_is_not_pass(server: ServerProcess) -> None:
    device = Device(server)
    device.enrol(server.token())
    assert device.post("/reports", five_passing()).status_code == 200
    (listed,) = devices(server)
    assert listed["checks"]["screen_lock"] == "unknown"
    assert set(listed["checks"]) == {*FIVE, "screen_lock"}
    assert listed["overall"] == "unknown"


def test_a_requirement_the_group_disabled_is_not_asked_for(server: ServerProcess, tmp_path: Path) -> None:
    toml = tmp_path / "requirements.toml"
    toml.write_text(f"[checks]\nenabled = {list(FIVE)!r}\n".replace("'", '"'), encoding="utf-8")
    published = server.cli("requirements", "publish", str(toml), "--group", "No Lock")
    assert published.returncode == 0, published.stderr
    device = Device(server)
    device.enrol(server.token("No Lock"))
    assert device.post("/reports", five_passing()).status_code == 200
    (listed,) = devices(server)
    assert "screen_lock" not in listed["checks"] and listed["overall"] == "pass"


def test_complete_results_names_what_was_missing() -> None:
    completed = complete_results([{"id": "firewall", "status": "pass"}], ("firewall", "screen_lock"))
    assert completed[1]["id"] == "screen_lock" and completed[1]["status"] == "unknown"
    assert completed[1]["summary"] == MISSING_SUMMARY
