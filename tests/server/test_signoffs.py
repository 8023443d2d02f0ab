"""Policies published per group and audience, sign-offs stored once, and the report IT reads."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from contract.policy import load_policy
from server.fleet.spreadsheet import spreadsheet_safe
from tests.helpers.paths import CONFIG
from tests.helpers.servers import ServerProcess
from tests.helpers.signed_device import Device, heartbeat, report

POLICIES = CONFIG / "policies"


def signoff(
    user: str, version: str, decision: str = "agree", full_name: str = "Ada Lovelace"
) -> dict[str, Any]:
    return {
        "record_id": uuid.uuid4().hex,
        "user": user,
        "full_name": full_name,
        "policy_id": "aup-secondary",
        "policy_version": version,
        "decision": decision,
        "decided_at": datetime.now(timezone.utc).isoformat(),
    }


def signoffs(server: ServerProcess, *args: str) -> Any:
    done = server.cli("signoffs", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["signoffs"] if "--json" in args else done.stdout


def test_policy_reaches_devices_and_signoffs_are_reported(server: ServerProcess, tmp_path: Path) -> None:
    secondary = load_policy(POLICIES / "secondary.md")
    published = server.cli("policy", "publish", str(POLICIES / "secondary.md"), "--group", "Lincoln High")
    assert published.returncode == 0, published.stderr
    assert "asked to sign it at their next login" in published.stdout
    device = Device(server)
    device.enrol(server.token("Lincoln High"))
    first = device.post("/heartbeat", heartbeat()).json()["policies"]
    (document,) = first["documents"]
    assert document["audience"] == "student" and document["version"] == secondary.version
    assert document["content"] == (POLICIES / "secondary.md").read_text(encoding="utf-8")
    again = device.post("/heartbeat", {**heartbeat(), "policies_etag": first["etag"]}).json()
    assert again["policies"] is None

    body = {**report(), "users": ["ada", "grace", "alan"], "audience": "student"}
    assert device.post("/reports", body).status_code == 200
    agreed = signoff("ada", secondary.version)
    assert device.post("/signoffs", agreed).json() == {
        "record_id": agreed["record_id"],
        "stored": True,
        "duplicate": False,
    }
    assert device.post("/signoffs", agreed).json()["duplicate"] is True  # sent twice, kept once
    declined = signoff("grace", secondary.version, "decline", "Grace Hopper")
    assert device.post("/signoffs", declined).status_code == 200
    rows = {row["user"]: row for row in signoffs(server, "--json")}
    assert rows["ada"]["status"] == "signed" and rows["ada"]["full_name"] == "Ada Lovelace"
    assert rows["grace"]["status"] == "declined"
    assert rows["alan"]["status"] == "not signed" and rows["alan"]["note"] == "has not signed"
    assert all(row["group"] == "Lincoln High" for row in rows.values())
    table = signoffs(server)
    assert "1 signed, 1 declined, 1 not signed." in table

    # A new version: everyone must sign again; Ada's earlier signature is noted.
    changed = tmp_path / "secondary.md"
    changed.write_text((POLICIES / "secondary.md").read_text(encoding="utf-8") + "\nI will be kind online.\n")
    assert server.cli("policy", "publish", str(changed), "--group", "Lincoln High").returncode == 0
    rows = {row["user"]: row for row in signoffs(server, "--json")}
    assert rows["ada"]["status"] == "not signed" and rows["ada"]["note"] == "signed an earlier version"
    assert rows["ada"]["policy_version"] == load_policy(changed).version
    assert signoffs(server, "--json", "--group", "Other School") == []


def test_csv_export_neutralises_spreadsheet_formulas(server: ServerProcess) -> None:
    version = load_policy(POLICIES / "secondary.md").version
    assert server.cli("policy", "publish", str(POLICIES / "secondary.md")).returncode == 0
    device = Device(server, {**report()["identity"], "hostname": '=HYPERLINK("http://evil","x")'})
    device.enrol(server.token("=cmd|' /C calc'!A0"))
    for user, name in (("@sum", "+1+2"), ("-minus", "\tTabbed"), ("plain", "Ada Lovelace")):
        assert device.post("/signoffs", signoff(user, version, full_name=name)).status_code == 200
    exported = signoffs(server, "--csv")
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert {row["user"] for row in rows} == {"'@sum", "'-minus", "plain"}
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value
    assert rows[0]["hostname"].startswith("'=HYPERLINK")
    assert {row["full_name"] for row in rows} == {"'+1+2", "'\tTabbed", "Ada Lovelace"}


def test_spreadsheet_safe() -> None:
    assert spreadsheet_safe("=1+1") == "'=1+1"
    assert spreadsheet_safe("\r=x") == "'\r=x"
    assert spreadsheet_safe("Ada") == "Ada"
    assert spreadsheet_safe(None) == ""
    assert spreadsheet_safe(-5) == "'-5"


def test_bad_signoffs_are_refused_with_a_reason(server: ServerProcess) -> None:
    device = Device(server)
    device.enrol(server.token())
    bad_version = device.post("/signoffs", signoff("ada", "not-a-hash"))
    assert bad_version.status_code == 422 and "policy_version" in bad_version.text
    maybe = device.post("/signoffs", {**signoff("ada", "a" * 64), "decision": "maybe"})
    assert maybe.status_code == 422 and "decision" in maybe.text


def test_a_bad_policy_file_is_not_published(server: ServerProcess, tmp_path: Path) -> None:
    broken = tmp_path / "broken.md"
    broken.write_text('+++\nid = "aup-x"\naudience = "teachers"\n+++\nI will.\n', encoding="utf-8")
    done = server.cli("policy", "publish", str(broken))
    assert done.returncode == 2 and "broken.md" in done.stderr and "audience" in done.stderr


def _requirements_with(tmp_path: Path, signoff_settings: str) -> Path:
    """config/requirements.toml with its [signoff] table replaced."""
    text = (CONFIG / "requirements.toml").read_text(encoding="utf-8")
    head = text[: text.index("[signoff]")]
    rest = text[text.index("[signoff]") :].split("\n[", 1)
    tail = ("\n[" + rest[1]) if len(rest) > 1 else ""
    path = tmp_path / "requirements.toml"
    path.write_text(f"{head}[signoff]\n{signoff_settings}\n{tail}", encoding="utf-8")
    return path


def test_the_report_honours_the_districts_renewal(server: ServerProcess, tmp_path: Path) -> None:
    """After the renewal date an old "I agree" shows as "must sign again", not "signed"."""
    version = load_policy(POLICIES / "secondary.md").version
    assert server.cli("policy", "publish", str(POLICIES / "secondary.md")).returncode == 0
    device = Device(server)
    device.enrol(server.token("Lincoln High"))
    now = datetime.now(timezone.utc)
    old, recent = signoff("ada", version), signoff("grace", version, full_name="Grace Hopper")
    old["decided_at"] = (now - timedelta(days=40)).isoformat()
    recent["decided_at"] = (now - timedelta(days=2)).isoformat()
    for body in (old, recent):
        assert device.post("/signoffs", body).status_code == 200

    # A renewal of 30 days makes Ada's 40-day-old agreement expire, Grace's 2-day-old one not.
    every_30 = _requirements_with(tmp_path, "renew_after_days = 30")
    assert server.cli("requirements", "publish", str(every_30), "--group", "Lincoln High").returncode == 0
    rows = {row["user"]: row for row in signoffs(server, "--json")}
    assert rows["ada"]["status"] == "must sign again", rows["ada"]
    assert "expired on" in rows["ada"]["note"] and rows["ada"]["full_name"] == "Ada Lovelace"
    assert rows["grace"]["status"] == "signed" and rows["grace"]["note"] == ""
    assert "1 signed, 1 must sign again, 0 declined, 0 not signed." in signoffs(server)

    # A yearly date that fell between the two sign-offs: Ada signed before it, Grace after it.
    between = now - timedelta(days=20)
    yearly = _requirements_with(tmp_path, f'renew_on = "{between:%m-%d}"')
    assert server.cli("requirements", "publish", str(yearly), "--group", "Lincoln High").returncode == 0
    rows = {row["user"]: row for row in signoffs(server, "--json")}
    assert (rows["ada"]["status"], rows["grace"]["status"]) == ("must sign again", "signed")

    # With no renewal at all, both count.
    never = _requirements_with(tmp_path, "renew_after_days = 0")
    assert server.cli("requirements", "publish", str(never), "--group", "Lincoln High").returncode == 0
    rows = {row["user"]: row for row in signoffs(server, "--json")}
    assert (rows["ada"]["status"], rows["grace"]["status"]) == ("signed", "signed")
