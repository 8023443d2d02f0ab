"""Lost and stolen laptops on a real server (SQLite and PostgreSQL), through signed requests from real
device keys and the real `homeroom-server` commands: a user's report and what the server makes of it,
lost mode in the signed heartbeat answer from the next heartbeat until recovery, evidence with the
address the server saw, IT's cases and drills, asset tags, the district's networks ("seen near"),
the timeline and the audit log, and evidence deleted after the configured days."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import requests

from contract.wire import HEADER_ANSWER_SIGNATURE, answer_signature_valid, load_public_key
from server.db.engine import make_engine
from server.lost import listing
from tests.helpers.audit import audit_details
from tests.helpers.servers import ServerProcess, free_port
from tests.helpers.signed_device import IDENTITY, Device, heartbeat

_TOKENS: dict[tuple[str, str], str] = {}


def enrolled(server: ServerProcess, group: str = "Lincoln High", hostname: str | None = None) -> Device:
    """A laptop of `group`, enrolled with a real token (one per server and group: each costs a process)."""
    key = (server.database_url, group)
    if key not in _TOKENS:
        _TOKENS[key] = server.token(group)
    unique = uuid.uuid4().hex
    identity = {
        **IDENTITY,
        "serial": f"5CG{unique[:7].upper()}",
        "hardware_uuid": unique,
        "machine_id": unique,
        "hostname": hostname or f"lt-{unique[:6]}",
    }
    device = Device(server, identity)
    assert device.enrol(_TOKENS[key]).status_code == 200
    return device


def lost_report(by: str, value: str = "", **changes: Any) -> dict[str, Any]:
    return {
        "record_id": uuid.uuid4().hex,
        "reporter": "rossi",
        "reporter_name": "Maria Rossi",
        "contact": "rossi@lincoln.example, room 12",
        "device": {"by": by, "value": value},
        "kind": "stolen",
        "last_seen_at": (datetime.now(timezone.utc) - timedelta(hours=2)).isoformat(),
        "last_seen_where": "the library, by the windows",
        "what_happened": "I left it on the table for ten minutes.\nIt was gone when I came back.",
        "police_report": None,
        "made_at": datetime.now(timezone.utc).isoformat(),
        **changes,
    }


def evidence(case_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "record_id": uuid.uuid4().hex,
        "case_id": case_id,
        "collected_at": datetime.now(timezone.utc).isoformat(),
        "local_addresses": ["192.168.1.23", "fe80::1c2d:3e4f"],
        "gateway": "192.168.1.1",
        "wifi": [
            {"bssid": "aa:bb:cc:dd:ee:01", "ssid": "HomeNet", "signal": -48, "channel": 6},
            {"bssid": "aa:bb:cc:dd:ee:02", "ssid": "Cafe", "signal": None, "channel": None},
        ],
        "logged_in_user": "stranger",
        "uptime_seconds": 3600,
        "unseen": [],
        **changes,
    }


def lost_mode(device: Device) -> dict[str, Any] | None:
    """The heartbeat answer's lost_mode, only from an answer signed by the server's key for this request."""
    answer = device.post("/heartbeat", heartbeat())
    assert answer.status_code == 200, answer.text
    assert signed_for_request(answer, device), "the heartbeat answer must be signed for its request"
    found = answer.json().get("lost_mode")
    return None if found is None else dict(found)


def signed_for_request(answer: requests.Response, device: Device) -> bool:
    key = answer.headers.get("X-Homeroom-Server-Key", "")
    return answer_signature_valid(
        load_public_key(key),
        answer.headers.get(HEADER_ANSWER_SIGNATURE, ""),
        "POST",
        "/api/v1/heartbeat",
        dict(answer.request.headers),
        answer.content,
    )


def cli_ok(server: ServerProcess, *args: str) -> str:
    done = server.cli(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def cases(
    server: ServerProcess, everything: bool = False, case_id: str | None = None
) -> list[dict[str, Any]]:
    """What `devices lost --json` prints, read in this process by the function it prints (a process per
    look would cost a second each); the tests below run the command itself where its output matters."""
    engine = make_engine(server.database_url)
    try:
        with engine.connect() as connection:
            rows = listing.case_rows(connection, everything, None if case_id is None else int(case_id))
    finally:
        engine.dispose()
    return list(json.loads(json.dumps(listing.as_json(rows))))


def cases_printed(server: ServerProcess, *args: str) -> list[dict[str, Any]]:
    return list(json.loads(cli_ok(server, "devices", "lost", *args, "--json"))["lost"])


def test_a_report_puts_the_laptop_in_lost_mode_from_its_next_heartbeat_until_it_is_recovered(
    server: ServerProcess,
) -> None:
    teacher, student = enrolled(server), enrolled(server)
    serial = student.identity["serial"]
    assert lost_mode(student) is None
    cli_ok(server, "devices", "set-asset-tag", student.identity["hostname"], "LHS-0042")

    body = lost_report("serial", f"  {serial.lower()} ")  # any case, stray spaces
    first = teacher.post("/lost-reports", body)
    assert first.status_code == 200, first.text
    answer = first.json()
    assert (answer["stored"], answer["duplicate"], answer["outcome"], answer["closest"]) == (
        True,
        False,
        "recorded",
        [],
    )
    (case,) = cases(server)
    case_id = str(case["case_id"])
    assert f"case {case_id}" in answer["message"]
    again = teacher.post("/lost-reports", body).json()  # resent after a lost answer: one report
    assert (again["stored"], again["duplicate"], again["outcome"]) == (False, True, "recorded")

    # Lost mode at the very next heartbeat, in its signed answer; a user's report keeps it quiet.
    mode = lost_mode(student)
    assert mode == {
        "case_id": case_id,
        "since": mode["since"] if mode else None,
        "interval_seconds": 120,
        "notice": None,
        "lock_screen": False,
        "drill": False,
    }
    assert lost_mode(teacher) is None

    # Evidence, with the address the server saw; once per record id; only from the lost laptop.
    sent = evidence(case_id)
    stored = student.post("/lost-evidence", sent)
    assert stored.status_code == 200, stored.text
    assert stored.json() == {"record_id": sent["record_id"], "stored": True, "duplicate": False}
    assert student.post("/lost-evidence", sent).json()["duplicate"] is True
    not_its_case = teacher.post("/lost-evidence", evidence(case_id))
    assert not_its_case.status_code == 409 and "not in lost mode" in not_its_case.json()["detail"]

    # A second report of the same laptop, by its asset tag: added to the case.
    second = teacher.post("/lost-reports", lost_report("asset_tag", "lhs-0042", kind="lost")).json()
    assert second["outcome"] == "already_reported" and second["stored"] is True

    # IT confirms it stolen, with a notice and a locked screen: the laptop's next heartbeat says so.
    changed = cli_ok(
        server,
        "devices",
        "lost-status",
        case_id,
        "confirmed_stolen",
        "--lock",
        "--notice",
        "Return it to room 12.",
    )
    assert "confirmed stolen" in changed
    assert lost_mode(student) == {**(mode or {}), "notice": "Return it to room 12.", "lock_screen": True}

    # Recovered: lost mode ends at the next heartbeat and evidence is refused from then on.
    before_recovery = datetime.now(timezone.utc)
    cli_ok(server, "devices", "lost-status", case_id, "recovered", "--note", "Found at the front desk")
    assert lost_mode(student) is None
    late = student.post("/lost-evidence", evidence(case_id))
    assert late.status_code == 409 and "not in lost mode" in late.json()["detail"]
    # Collected while it was still lost, delivered after recovery (an outbox that waited): kept.
    queued = evidence(case_id, collected_at=before_recovery.isoformat())
    assert student.post("/lost-evidence", queued).json()["stored"] is True

    # A report made before the recovery, arriving after it (queued offline): already recovered.
    made_before = (datetime.now(timezone.utc) - timedelta(minutes=30)).isoformat()
    old = teacher.post(
        "/lost-reports", lost_report("hostname", student.identity["hostname"].upper(), made_at=made_before)
    ).json()
    assert old["outcome"] == "already_recovered" and "recovered" in old["message"]
    closed_again = server.cli("devices", "lost-status", case_id, "confirmed_lost")
    assert closed_again.returncode == 2 and "is closed (recovered)" in closed_again.stderr

    # The timeline: every change, who and when.
    (detail,) = cases_printed(server, "--case", case_id)  # the command itself, once
    assert [(e["event"], e["status"]) for e in detail["timeline"]] == [
        ("reported", "reported"),
        ("reported", "reported"),
        ("status", "confirmed_stolen"),
        ("status", "recovered"),
        ("reported_after_close", "recovered"),
    ]
    assert detail["timeline"][0]["actor"] == f"Maria Rossi (rossi on {teacher.identity['hostname']})"
    assert detail["timeline"][3]["detail"]["note"] == "Found at the front desk"
    assert "@" in detail["timeline"][2]["actor"]  # the account that ran the command, and where
    assert [r["outcome"] for r in detail["reports"]] == ["recorded", "already_reported", "already_recovered"]
    assert detail["reports"][0]["what_happened"] == body["what_happened"]
    assert {e["public_address"] for e in detail["evidence_records"]} == {"127.0.0.1"}
    assert detail["evidence_records"][0]["wifi"][0]["ssid"] in ("HomeNet",)
    assert detail["asset_tag"] == "LHS-0042" and detail["closed_at"] is not None
    assert cases(server) == []  # no open case
    assert len(cases(server, everything=True)) == 1
    table = cli_ok(server, "devices", "lost", "--case", case_id)
    assert "Timeline:" in table and "Maria Rossi" in table and "recovered" in table

    # The audit log has it too.
    assert [d["outcome"] for d in audit_details(server, "lost.reported")] == [
        "recorded",
        "already_reported",
        "already_recovered",
    ]
    assert [(d["from"], d["to"]) for d in audit_details(server, "lost.status_changed")] == [
        ("reported", "confirmed_stolen"),
        ("confirmed_stolen", "recovered"),
    ]
    assert audit_details(server, "device.asset_tag_set")[0]["asset_tag"] == "LHS-0042"

    # The laptop can be lost again: a new report opens a new case.
    new = teacher.post("/lost-reports", lost_report("serial", serial)).json()
    assert new["outcome"] == "recorded"
    assert lost_mode(student) is not None


def test_reporting_this_laptop_and_the_closest_matches_for_an_unknown_one(server: ServerProcess) -> None:
    mine = enrolled(server, hostname="art-cart-07")
    other = enrolled(server, hostname="art-cart-07")  # two laptops with one hostname
    serial = mine.identity["serial"]

    typo = serial[:-1] + ("X" if serial[-1] != "X" else "Y")  # the last character mistyped
    unknown = mine.post("/lost-reports", lost_report("serial", typo)).json()
    assert (unknown["outcome"], unknown["stored"]) == ("unknown_device", False)
    assert serial in unknown["closest"] and f"Did you mean {serial}" in unknown["message"]
    empty = mine.post("/lost-reports", lost_report("asset_tag", "   ")).json()
    assert empty["outcome"] == "unknown_device" and "Please type the laptop's asset tag" in empty["message"]
    twice = mine.post("/lost-reports", lost_report("hostname", "ART-CART-07")).json()
    assert twice["outcome"] == "unknown_device" and "2 district laptops are called" in twice["message"]
    assert set(twice["closest"]) == {serial, other.identity["serial"]}
    assert cases(server) == []
    assert lost_mode(mine) is None

    own = mine.post("/lost-reports", lost_report("this", kind="lost")).json()  # filed on the laptop itself
    assert own["outcome"] == "recorded"
    (case,) = cases(server)
    assert case["device_id"] == mine.device_id and case["kind"] == "lost" and case["status"] == "reported"
    assert lost_mode(mine) is not None and lost_mode(other) is None


def test_it_marks_a_laptop_lost_runs_a_drill_and_sets_asset_tags(server: ServerProcess) -> None:
    first, second = enrolled(server), enrolled(server)
    tagged = cli_ok(server, "devices", "set-asset-tag", first.identity["serial"], "LHS-0100")
    assert "has asset tag LHS-0100" in tagged
    taken = server.cli("devices", "set-asset-tag", second.identity["hostname"], "lhs-0100")
    assert taken.returncode == 2 and "already on" in taken.stderr
    nobody = server.cli("devices", "mark-lost", "5CG-NOBODY", "--kind", "lost")
    assert (
        nobody.returncode == 2 and "no device with id, serial number, asset tag or hostname" in nobody.stderr
    )

    marked = cli_ok(server, "devices", "mark-lost", "lhs-0100", "--kind", "stolen", "--lock")
    assert "enters lost mode at its next heartbeat, shows a notice and locks its screen" in marked
    mode = lost_mode(first)
    assert mode is not None and mode["lock_screen"] is True and mode["drill"] is False
    assert mode["notice"] and "has been reported lost" in mode["notice"]  # the default notice
    (case,) = cases(server)
    assert case["status"] == "confirmed_stolen"
    again = server.cli("devices", "mark-lost", first.identity["hostname"], "--kind", "lost")
    assert again.returncode == 2 and f"(case {case['case_id']})" in again.stderr
    # A user's report of a laptop IT already marked: added to the case.
    added = second.post("/lost-reports", lost_report("serial", first.identity["serial"])).json()
    assert added["outcome"] == "already_reported"

    # A drill: lost mode on, quiet, no status of its own, ended by "recovered".
    drill = cli_ok(
        server, "devices", "mark-lost", second.identity["hostname"], "--kind", "lost", "--drill", "--quiet"
    )
    assert "Nobody is notified (a drill)" in drill
    practice = lost_mode(second)
    assert practice is not None and practice["drill"] is True and practice["notice"] is None
    drill_case = next(c for c in cases(server) if c["drill"])
    assert "drill" in cli_ok(server, "devices", "lost")
    refused = server.cli("devices", "lost-status", str(drill_case["case_id"]), "confirmed_stolen")
    assert refused.returncode == 2 and "is a drill" in refused.stderr
    ended = cli_ok(server, "devices", "lost-status", str(drill_case["case_id"]), "recovered")
    assert "The drill" in ended and lost_mode(second) is None
    assert [d["case"] for d in audit_details(server, "lost.drill_started")] == [drill_case["case_id"]]
    assert audit_details(server, "lost.marked")[0]["lock"] is True


def test_the_districts_networks_say_where_a_lost_laptop_was_seen(
    server: ServerProcess, tmp_path: Path
) -> None:
    laptop = enrolled(server)
    bad = tmp_path / "bad-ranges.txt"
    bad.write_text("10.12.0.0/16 Lincoln High\n10.12.0.1/16 Roosevelt\n")
    refused = server.cli("networks", "import-ranges", str(bad))
    assert refused.returncode == 2 and "line 2: 10.12.0.1/16 has host bits set" in refused.stderr
    ranges = tmp_path / "ranges.txt"
    ranges.write_text("# the district\n10.12.0.0/16 Lincoln High\n127.0.0.0/8 District Office\n")
    assert "Imported 2 address ranges in 2 buildings" in cli_ok(
        server, "networks", "import-ranges", str(ranges)
    )
    points = tmp_path / "aps.csv"
    points.write_text("Name,Serial,MAC address,Site\nLibrary,Q2XX-1,00-1A-2B-3C-4D-50,Lincoln High\n")
    assert "Imported 1 access points" in cli_ok(server, "networks", "import-access-points", str(points))

    cli_ok(server, "devices", "mark-lost", laptop.identity["serial"], "--kind", "lost", "--quiet")
    (case,) = cases(server)
    case_id = str(case["case_id"])
    # From loopback, which the ranges file says is the District Office: building level.
    assert laptop.post("/lost-evidence", evidence(case_id)).status_code == 200
    assert cases(server)[0]["seen_near"] == "seen near District Office"
    # Then the laptop hears a district access point (another SSID of the listed radio): room level.
    heard = [{"bssid": "00:1A:2B:3C:4D:52", "ssid": "LHS-Staff", "signal": -60, "channel": 36}]
    assert laptop.post("/lost-evidence", evidence(case_id, wifi=heard)).status_code == 200
    (now,) = cases(server)
    assert now["seen_near"] == "seen near Lincoln High, Library"
    assert "seen near Lincoln High, Library" in cli_ok(server, "devices", "lost")
    assert "** seen near Lincoln High, Library" in cli_ok(server, "devices", "lost", "--case", case_id)
    shown = json.loads(cli_ok(server, "networks", "show", "--json"))
    assert shown["access_points"] == [
        {"bssid": "00:1a:2b:3c:4d:50", "building": "Lincoln High", "room": "Library"}
    ]
    assert audit_details(server, "networks.access_points_imported")[0]["access_points"] == 1


def test_evidence_is_deleted_the_configured_days_after_the_case_closes(server: ServerProcess) -> None:
    laptop = enrolled(server)
    cli_ok(server, "devices", "mark-lost", laptop.identity["serial"], "--kind", "lost")
    case_id = str(cases(server)[0]["case_id"])
    for _ in range(3):
        assert laptop.post("/lost-evidence", evidence(case_id)).json()["stored"] is True
    (server.data_dir / "server.toml").write_text("[lost]\nevidence_keep_days = 0\n")
    assert "No evidence to delete" in cli_ok(server, "lost", "purge")  # the case is open: kept
    cli_ok(server, "devices", "lost-status", case_id, "recovered")
    (server.data_dir / "server.toml").write_text("[lost]\nevidence_keep_days = 30\n")
    assert "No evidence to delete (kept 30 days" in cli_ok(server, "lost", "purge")
    (server.data_dir / "server.toml").write_text("[lost]\nevidence_keep_days = 0\n")
    assert f"Case {case_id}: deleted 3 evidence records" in cli_ok(server, "lost", "purge")
    (detail,) = cases(server, case_id=case_id)
    assert detail["evidence_records"] == []
    assert (
        detail["timeline"][-1]["event"] == "evidence_deleted"
        and detail["timeline"][-1]["detail"]["records"] == 3
    )
    assert audit_details(server, "lost.evidence_deleted")[0]["records"] == 3

    # A mistake in server.toml: the server refuses to start and says where; other commands go on.
    (server.data_dir / "server.toml").write_text('[lost]\nevidence_keep_days = "thirty"\n')
    refused = server.cli("serve", "--port", str(free_port()))
    assert (
        refused.returncode == 2
        and "server.toml:2: [lost] evidence_keep_days must be a whole number" in refused.stderr
    )
    assert server.cli("devices").returncode == 0


BAD = [
    ({"kind": "misplaced"}, "kind"),
    ({"device": {"by": "imei", "value": "1"}}, "device"),
    ({"device": {"by": "serial", "value": "5CG\x1b[2J"}}, "device"),
    ({"reporter_name": "Maria\u202eissoR"}, "reporter_name"),
    ({"what_happened": "x" * 4001}, "what_happened"),
    ({"made_at": "9999-12-31T23:59:59-14:00"}, "made_at"),
    ({"police_report": "PD\x00"}, "police_report"),
    ({"record_id": "../etc"}, "record_id"),
    ({"gps": [1, 2]}, "gps"),
]


def test_bad_reports_and_evidence_get_a_short_422(server: ServerProcess) -> None:
    laptop = enrolled(server)
    for change, field in BAD:
        answer = laptop.post("/lost-reports", lost_report("this", **change))
        assert answer.status_code == 422, (change, answer.text)
        assert field in json.dumps(answer.json()), (change, answer.text)
    for change, field in [
        ({"case_id": "12345678901234567890"}, "case_id"),
        ({"wifi": [{"bssid": "x", "ssid": "y", "signal": 10**6, "channel": 1}]}, "signal"),
        ({"local_addresses": ["10.0.0.1"] * 51}, "local_addresses"),
    ]:
        answer = laptop.post("/lost-evidence", {**evidence("1"), **change})
        assert answer.status_code == 422, (change, answer.text)
        assert field in json.dumps(answer.json())
    not_lost = laptop.post("/lost-evidence", evidence("1"))
    assert not_lost.status_code == 409 and "not in lost mode" in not_lost.json()["detail"]
    assert cases(server) == []
