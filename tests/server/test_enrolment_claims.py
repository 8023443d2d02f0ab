"""Taking over a laptop's record, tried for real against a real server process (SQLite and PostgreSQL).

The attacks of issue 8 §1: an enrolment token plus a laptop's serial and SMBIOS UUID (or only its
keyed machine id) used to re-key the record, move it to the token's group and lock the real laptop
out; a device could plant another laptop's serial in its own record. Time passing ("the old key has
been silent for two hours") is made by moving the stored times back, as the server's clock would.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import update

from server.db.engine import make_engine
from server.db.models import Device as DeviceRow
from server.db.models import EnrolmentClaim
from tests.helpers.servers import ServerProcess
from tests.helpers.signed_device import IDENTITY, Device, devices, heartbeat, report


def silence(server: ServerProcess, device_id: str, minutes: int) -> None:
    """The record's current key last spoke `minutes` ago; waiting claims were made just after that."""
    then = datetime.now(timezone.utc) - timedelta(minutes=minutes)
    engine = make_engine(server.database_url)
    try:
        with engine.begin() as connection:
            connection.execute(update(DeviceRow).where(DeviceRow.id == device_id).values(last_seen_at=then))
            connection.execute(
                update(EnrolmentClaim)
                .where(EnrolmentClaim.device_id == device_id)
                .values(created_at=then + timedelta(seconds=1))
            )
    finally:
        engine.dispose()


def audit(server: ServerProcess) -> list[dict[str, Any]]:
    done = server.cli("audit", "--json")
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout)["audit"])


def actions(server: ServerProcess) -> list[str]:
    return [entry["action"] for entry in audit(server)]


def the_device(server: ServerProcess) -> dict[str, Any]:
    (listed,) = devices(server)
    return listed


def test_another_groups_token_and_a_copied_identity_wait_for_it(server: ServerProcess) -> None:
    victim = Device(server)
    assert victim.enrol(server.token("Lincoln High")).status_code == 200
    assert victim.post("/reports", report(status="fail")).status_code == 200
    silence(server, victim.device_id, 3 * 24 * 60)  # even a laptop switched off for days

    attacker = Device(server, {**IDENTITY, "hostname": "attacker-pc"})
    claim = attacker.enrol(server.token("Oak Elementary"))
    assert claim.status_code == 202, claim.text
    assert claim.json()["waits_for"] == "it" and "Oak Elementary" in claim.json()["detail"]
    assert attacker.post("/reports", report(status="pass")).status_code == 401
    assert victim.post("/heartbeat", heartbeat()).status_code == 200  # the original keeps reporting

    listed = the_device(server)
    assert listed["group"] == "Lincoln High" and listed["hostname"] == "student-lt042"
    assert listed["overall"] == "fail"  # the attacker's all-pass report was not stored
    (waiting,) = listed["claims"]
    assert waiting["state"] == "pending" and waiting["claimant_hostname"] == "attacker-pc"
    table = server.cli("devices").stdout
    assert "1 claim waiting" in table and "attacker-pc" in table
    assert "devices approve-claim ID" in table
    assert "device.claim_waiting" in actions(server)

    # IT decides the laptop really moved to Oak Elementary: the claimant's key takes the record.
    approved = server.cli("devices", "approve-claim", str(waiting["claim_id"]))
    assert approved.returncode == 0, approved.stderr
    assert attacker.post("/heartbeat", heartbeat()).status_code == 200
    assert victim.post("/heartbeat", heartbeat()).status_code == 401
    assert the_device(server)["group"] == "Oak Elementary"
    logged = actions(server)
    assert {"device.re-keyed", "device.group_moved", "device.claim_approved"} <= set(logged)
    assert server.cli("devices", "approve-claim", str(waiting["claim_id"])).returncode == 2


def test_the_machine_id_alone_is_never_enough(server: ServerProcess) -> None:
    unprivileged = {**IDENTITY, "serial": None, "hardware_uuid": None}
    victim = Device(server, unprivileged)
    token = server.token("Lincoln High")
    assert victim.enrol(token).status_code == 200
    silence(server, victim.device_id, 3 * 24 * 60)
    # Any user of the laptop can compute its keyed machine id; the group's token is in agent.toml.
    attacker = Device(server, {**unprivileged, "hostname": "attacker-pc"})
    claim = attacker.enrol(token)
    assert claim.status_code == 202 and claim.json()["waits_for"] == "it"
    assert "machine id alone" in claim.json()["detail"]
    assert attacker.post("/heartbeat", heartbeat()).status_code == 401
    assert victim.post("/heartbeat", heartbeat()).status_code == 200


def test_the_same_groups_token_cannot_take_over_a_laptop_that_keeps_reporting(server: ServerProcess) -> None:
    token = server.token("Lincoln High")
    victim = Device(server)
    assert victim.enrol(token).status_code == 200
    attacker = Device(server, {**IDENTITY, "hostname": "attacker-pc"})
    claim = attacker.enrol(token)
    assert claim.status_code == 202 and claim.json()["waits_for"] == "quiet"
    assert attacker.post("/reports", report()).status_code == 401
    assert victim.post("/heartbeat", heartbeat()).status_code == 200  # the laptop is alive: the claim loses
    silence(server, victim.device_id, 120)  # and however long it is then silent, the claim stays refused
    assert attacker.post("/heartbeat", heartbeat()).status_code == 401
    (refused,) = the_device(server)["claims"]
    assert refused["state"] == "refused" and "reported again" in refused["reason"]
    assert "device.claim_refused" in actions(server)
    assert victim.post("/heartbeat", heartbeat()).status_code == 200


def test_a_takeover_while_the_laptop_was_off_is_undone_when_it_returns(server: ServerProcess) -> None:
    token = server.token("Lincoln High")
    victim = Device(server)
    assert victim.enrol(token).status_code == 200
    silence(server, victim.device_id, 120)  # switched off for the night
    attacker = Device(server, {**IDENTITY, "hostname": "attacker-pc"})
    taken = attacker.enrol(token)
    assert taken.status_code == 200 and taken.json()["replaced_key"] is True
    assert attacker.post("/reports", report(status="pass")).status_code == 200
    # Re-keying again (after keeping quiet) does not push the real laptop's key out.
    silence(server, victim.device_id, 120)
    second = Device(server, {**IDENTITY, "hostname": "attacker-pc"})
    assert second.enrol(token).status_code == 200
    # In the morning the real laptop signs with the key the re-key replaced: it gets its record back.
    assert victim.post("/heartbeat", heartbeat()).status_code == 200
    assert attacker.post("/heartbeat", heartbeat()).status_code == 401
    assert second.post("/heartbeat", heartbeat()).status_code == 401
    assert victim.post("/reports", report(status="fail")).status_code == 200
    listed = the_device(server)
    assert listed["overall"] == "fail"
    (contested,) = listed["claims"]
    assert contested["state"] == "contested"
    logged = actions(server)
    assert logged.index("device.re-keyed") < logged.index("device.re-key_undone")
    assert "1 claim waiting" in server.cli("devices").stdout


def test_a_reinstall_rekeys_without_it(server: ServerProcess) -> None:
    """The common case: same laptop, key gone with the old install, token of its own group."""
    token = server.token("Lincoln High")
    first = Device(server)
    assert first.enrol(token).status_code == 200
    silence(server, first.device_id, 120)  # re-imaging took a while
    again = Device(server)
    answer = again.enrol(token)
    assert answer.status_code == 200, answer.text
    assert answer.json()["device_id"] == first.device_id and answer.json()["replaced_key"] is True
    assert again.post("/heartbeat", heartbeat()).status_code == 200
    assert len(devices(server)) == 1
    assert "re-keyed" in server.cli("devices").stdout

    # A quick re-install (the old agent spoke minutes ago) waits, then is taken by itself once the old
    # key has stayed silent: the agent keeps the key and its requests start to succeed.
    quick = Device(server)
    waiting = quick.enrol(token)
    assert waiting.status_code == 202 and waiting.json()["waits_for"] == "quiet"
    assert quick.post("/heartbeat", heartbeat()).status_code == 401
    silence(server, first.device_id, 120)
    assert quick.post("/heartbeat", heartbeat()).status_code == 200
    listed = the_device(server)
    assert [c["state"] for c in listed["claims"]] == ["approved"]
    assert actions(server).count("device.re-keyed") == 2


def test_a_planted_serial_is_flagged_never_merged(server: ServerProcess) -> None:
    token = server.token("Lincoln High")
    victim = Device(server)
    assert victim.enrol(token).status_code == 200
    planter = Device(
        server,
        {
            **IDENTITY,
            "serial": None,
            "hardware_uuid": None,
            "machine_id": "f" * 32,
            "hostname": "attacker-pc",
        },
    )
    assert planter.enrol(token).status_code == 200
    # Its "service" reports the victim's serial and UUID (report() carries IDENTITY).
    assert planter.post("/reports", report()).status_code == 200
    by_id = {d["device_id"]: d for d in devices(server)}
    assert by_id[planter.device_id]["serial"] is None  # not filled in
    assert by_id[planter.device_id]["identity_collision"] == victim.device_id
    assert by_id[victim.device_id]["identity_collision"] == planter.device_id
    assert "identity collides with" in server.cli("devices").stdout
    (logged,) = [e for e in audit(server) if e["action"] == "device.identity_collision"]
    assert logged["detail"]["serial"] == IDENTITY["serial"] and logged["detail"]["other"] == victim.device_id
    # The victim's re-install still lands in its own record.
    silence(server, victim.device_id, 120)
    again = Device(server)
    answer = again.enrol(token)
    assert answer.status_code == 200 and answer.json()["device_id"] == victim.device_id
