"""`homeroom-server devices` says why a laptop fails, and `devices show HOST` shows the whole device,
as the console's device page does, with every value from the laptop escaped for the terminal.
Against a real server (SQLite and PostgreSQL) with a laptop enrolled and reporting."""

from __future__ import annotations

import json
import re
import uuid

from contract.policy import load_policy
from tests.helpers.paths import CONFIG
from tests.helpers.servers import ServerProcess
from tests.helpers.signed_device import IDENTITY, Device, report
from tests.server.test_signoffs import signoff

HOSTILE = "lt042\x1b]0;owned\x07\x1b[2J\nFAKE-ROW"
HOSTILE_APP = "Evil\x1b[31mApp\u202e"


def reporting(server: ServerProcess, token: str, hostname: str, app: str = "Krita") -> Device:
    unique = uuid.uuid4().hex
    identity = {
        **IDENTITY,
        "hostname": hostname,
        "serial": unique[:12],
        "hardware_uuid": unique,
        "machine_id": unique,
    }
    device = Device(server, identity)
    assert device.enrol(token).status_code == 200
    body = report(status="fail")
    body["identity"] = identity
    body["results"][0]["summary"] = "the firewall is off (ufw inactive)"
    body["results"][0]["remediation"] = "Turn on the firewall: sudo ufw enable"
    body["users"] = ["ada"]
    body["software"] = [{"name": app, "version": "5.1", "publisher": "KDE e.V.", "source": "dpkg"}]
    assert device.post("/reports", body).status_code == 200
    return device


def test_devices_lists_each_failing_requirements_summary(server: ServerProcess) -> None:
    device = reporting(server, server.token("Lincoln High"), "lincoln-lt01")
    shown = server.cli("devices")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("lincoln-lt01"))
    assert lines[row + 1].strip() == "fw fails: the firewall is off (ufw inactive)"
    listed = json.loads(server.cli("devices", "--json").stdout)["devices"]
    assert listed[0]["device_id"] == device.device_id
    assert listed[0]["failing"] == [{"id": "firewall", "summary": "the firewall is off (ufw inactive)"}]


def test_devices_show_host_is_the_whole_device(server: ServerProcess) -> None:
    assert server.cli("policy", "publish", str(CONFIG / "policies" / "secondary.md")).returncode == 0
    version = load_policy(CONFIG / "policies" / "secondary.md").version
    device = reporting(server, server.token("Lincoln High"), "lincoln-lt01")
    assert device.post("/signoffs", signoff("ada", version)).status_code == 200
    assert server.cli("command", "check_now", "--device", "lincoln-lt01").returncode == 0

    shown = server.cli("devices", "show", "lincoln-lt01")
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert out.startswith(f"lincoln-lt01 ({device.device_id})")
    for section in (
        "Identity",
        "Requirements",
        "Software (1 items, 1 not approved)",
        "Sign-offs",
        "Recent history",
        "Audit entries",
    ):
        assert f"\n{section}" in out, section
    assert "HP ProBook 440 G8" in out and "Lincoln High (student laptop)" in out
    assert "the firewall is off (ufw inactive)" in out and "fix: Turn on the firewall: sudo ufw enable" in out
    # The report left five requirements out: each says so, none is blank.
    assert out.count("the laptop's report did not include this requirement") == 5
    assert "not approved Krita" in out
    assert re.search(r"\n  ada +signed", out) and "agreed" in out and "Ada Lovelace" in out
    assert "report: fail (failing: Firewall)" in out and "software  software added: Krita 5.1 (dpkg)" in out
    assert "device.command" in out and "device.enrolled" in out
    same = server.cli("devices", "show", device.device_id)  # by id as well
    assert same.stdout == out

    as_json = json.loads(server.cli("devices", "show", "lincoln-lt01", "--json").stdout)
    assert as_json["id"] == device.device_id and as_json["signoffs"][0]["user"] == "ada"
    assert [r["cell"]["status"] for r in as_json["results"] if r["id"] == "firewall"] == ["fail"]


def test_devices_show_escapes_what_the_laptop_sent_and_names_the_problem(server: ServerProcess) -> None:
    token = server.token("Lincoln High")
    reporting(server, token, HOSTILE, app=HOSTILE_APP)
    shown = server.cli("devices", "show", HOSTILE)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert not [line for line in out.splitlines() if line.startswith("FAKE-ROW")]
    assert "lt042\\x1b]0;owned\\x07\\x1b[2J\\nFAKE-ROW" in out and "Evil\\x1b[31mApp\\u202e" in out

    missing = server.cli("devices", "show", "no-such-laptop")
    assert missing.returncode == 2 and "no device with id or hostname 'no-such-laptop'" in missing.stderr
    reporting(server, token, "twin")
    reporting(server, token, "twin")
    twins = server.cli("devices", "show", "twin")
    assert twins.returncode == 2 and "2 devices are called 'twin': give the device id" in twins.stderr
