"""The agent API against a real server process on loopback, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract.wire import API_PREFIX
from tests.helpers.servers import ServerProcess
from tests.helpers.signed_device import IDENTITY, Device, devices, heartbeat, report


def test_enrol_report_and_list(server: ServerProcess) -> None:
    device = Device(server)
    enrolled = device.enrol(server.token("Lincoln High"))
    assert enrolled.status_code == 200, enrolled.text
    assert enrolled.json()["group"] == "Lincoln High" and enrolled.json()["replaced_key"] is False
    stored = device.post("/reports", report(status="fail"))
    assert stored.status_code == 200, stored.text
    assert stored.json()["stored"] is True
    (listed,) = devices(server)
    assert listed["hostname"] == "student-lt042" and listed["group"] == "Lincoln High"
    assert listed["overall"] == "fail" and listed["checks"]["firewall"] == "fail"
    assert listed["last_seen"] is not None
    table = server.cli("devices")
    assert "student-lt042" in table.stdout and "Lincoln High" in table.stdout


def test_same_report_twice_is_stored_once(server: ServerProcess) -> None:
    device = Device(server)
    device.enrol(server.token())
    body = report()
    first, second = device.post("/reports", body), device.post("/reports", body)
    assert first.json() == {"report_id": body["report_id"], "stored": True, "duplicate": False}
    assert second.status_code == 200
    assert second.json() == {"report_id": body["report_id"], "stored": False, "duplicate": True}


def test_revoked_and_expired_and_unknown_tokens_are_refused(server: ServerProcess) -> None:
    token = server.token()
    assert server.cli("token", "revoke", token).returncode == 0
    refused = Device(server).enrol(token)
    assert refused.status_code == 403 and "revoked" in refused.json()["detail"]
    unknown = Device(server).enrol("not-a-token")
    assert unknown.status_code == 403 and "not recognised" in unknown.json()["detail"]
    assert server.cli("token", "create", "--group", "x", "--expires", "0").returncode == 2


def test_tampered_body_bad_key_replay_skew_and_unknown_device(server: ServerProcess) -> None:
    device = Device(server)
    device.enrol(server.token())
    body = report()
    tampered = device.post("/reports", body, tamper=json.dumps({**body, "agent_version": "6.6.6"}).encode())
    assert tampered.status_code == 401 and "signature not accepted" in tampered.json()["detail"]
    other_key = device.post("/heartbeat", heartbeat(), key=Ed25519PrivateKey.generate())
    assert other_key.status_code == 401
    request_id = uuid.uuid4().hex
    assert device.post("/heartbeat", heartbeat(), request_id=request_id).status_code == 200
    replayed = device.post("/heartbeat", heartbeat(), request_id=request_id)
    assert replayed.status_code == 409 and "already used" in replayed.json()["detail"]
    skewed = device.post("/heartbeat", heartbeat(), now=time.time() - 600)
    assert skewed.status_code == 401 and "behind the server's clock" in skewed.json()["detail"]
    ahead = device.post("/heartbeat", heartbeat(), now=time.time() + 400)
    assert ahead.status_code == 401 and "ahead of" in ahead.json()["detail"]
    stranger = Device(server)
    stranger.device_id = uuid.uuid4().hex
    unknown = stranger.post("/heartbeat", heartbeat())
    # The same answer as a wrong key: the API does not say which device ids exist.
    assert (unknown.status_code, unknown.json()) == (other_key.status_code, other_key.json())


def test_bad_input_gets_a_4xx_that_says_what_is_wrong(server: ServerProcess) -> None:
    device = Device(server)
    device.enrol(server.token())
    extra = device.post("/reports", {**report(), "surprise": 1})
    assert extra.status_code == 422 and "surprise" in extra.text
    too_many = report()
    too_many["software"] = [{"name": f"app{i}"} for i in range(10_001)]
    assert device.post("/reports", too_many).status_code in (413, 422)
    huge = device.post("/reports", b"{" + b" " * (1024 * 1024 + 10) + b"}")
    assert huge.status_code == 413 and "limit" in huge.json()["detail"]
    not_json = device.post("/heartbeat", b"not json at all")
    assert not_json.status_code == 422
    missing_headers = requests.post(f"{server.url}{API_PREFIX}/heartbeat", json=heartbeat(), timeout=30)
    assert missing_headers.status_code == 422 and "x-homeroom-signature" in missing_headers.text.lower()
    bad_key = requests.post(
        f"{server.url}{API_PREFIX}/enrol",
        json={"token": server.token(), "public_key": "AAAA", "identity": IDENTITY, "agent_version": "1"},
        timeout=30,
    )
    assert bad_key.status_code == 400 and "32 bytes" in bad_key.json()["detail"]


def test_heartbeat_carries_changed_requirements(server: ServerProcess, tmp_path: Any) -> None:
    device = Device(server)
    device.enrol(server.token("Oak Elementary"))
    first = device.post("/heartbeat", heartbeat()).json()
    assert first["requirements"] is not None and "[screen_lock]" in first["requirements"]["content"]
    etag = first["requirements"]["etag"]
    assert device.post("/heartbeat", heartbeat(etag)).json()["requirements"] is None
    stricter = tmp_path / "requirements.toml"
    stricter.write_text("[screen_lock]\nmax_idle_minutes = 5\n", encoding="utf-8")
    published = server.cli("requirements", "publish", str(stricter), "--group", "Oak Elementary")
    assert published.returncode == 0, published.stderr
    time.sleep(5.5)  # the server caches a group's requirements for 5 s
    changed = device.post("/heartbeat", heartbeat(etag)).json()["requirements"]
    assert changed["content"] == "[screen_lock]\nmax_idle_minutes = 5\n" and changed["etag"] != etag
    bad = tmp_path / "bad.toml"
    bad.write_text("[screen_lock]\nmax_idle = 5\n", encoding="utf-8")
    refused = server.cli("requirements", "publish", str(bad))
    assert refused.returncode == 2 and "unknown key 'max_idle'" in refused.stderr


def test_expired_token_is_refused_with_its_date(server: ServerProcess) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from server.auth import token_hash
    from server.db.engine import make_engine
    from server.db.models import EnrolmentToken

    token = server.token()
    engine = make_engine(server.database_url)
    with engine.begin() as connection:
        connection.execute(
            update(EnrolmentToken)
            .where(EnrolmentToken.token_hash == token_hash(token))
            .values(expires_at=datetime.now(timezone.utc) - timedelta(days=2))
        )
    engine.dispose()
    refused = Device(server).enrol(token)
    assert refused.status_code == 403 and "expired on" in refused.json()["detail"]


def test_the_service_fills_in_what_an_unprivileged_enrolment_could_not_read(server: ServerProcess) -> None:
    unprivileged = {
        **IDENTITY,
        "serial": None,
        "hardware_uuid": None,
        "unreadable": {"serial": "only root can read /sys/class/dmi/id/product_serial"},
    }
    device = Device(server, unprivileged)
    assert device.enrol(server.token()).status_code == 200
    assert devices(server)[0]["serial"] is None
    assert device.post("/reports", report()).status_code == 200  # the report carries the full IDENTITY
    assert devices(server)[0]["serial"] == "5CG1234XYZ"


def test_init_reads_the_password_file_and_refuses_a_short_one(tmp_path: Any) -> None:
    server = ServerProcess(f"sqlite:///{tmp_path / 'var' / 'homeroom.db'}", tmp_path)
    short = tmp_path / "short.txt"
    short.write_text("hunter2\n", encoding="utf-8")
    refused = server.cli("init", "--password-file", str(short))
    assert refused.returncode == 2 and "at least 12 characters" in refused.stderr
    good = tmp_path / "good.txt"
    good.write_text("correct horse battery staple\n", encoding="utf-8")
    done = server.cli("init", "--password-file", str(good))
    assert done.returncode == 0, done.stderr
    assert "One-time password" not in done.stdout
    from sqlalchemy import select

    from server.auth import password_matches
    from server.db.engine import make_engine
    from server.db.models import Admin

    engine = make_engine(server.database_url)
    with engine.connect() as connection:
        stored = connection.execute(
            select(Admin.password_hash).where(Admin.username == "admin@localhost")
        ).scalar_one()
    engine.dispose()
    assert password_matches(stored, "correct horse battery staple")
    assert not password_matches(stored, "hunter2")


def test_what_a_full_outbox_dropped_reaches_the_audit_log(server: ServerProcess) -> None:
    from sqlalchemy import select

    from server.db.engine import make_engine
    from server.db.models import AuditEntry

    device = Device(server)
    device.enrol(server.token())
    assert device.post("/reports", {**report(), "dropped": {"heartbeat": 3}}).status_code == 200
    assert device.post("/heartbeat", {**heartbeat(), "dropped": {"heartbeat": 1}}).status_code == 200
    assert device.post("/heartbeat", heartbeat()).status_code == 200  # nothing dropped: nothing logged
    engine = make_engine(server.database_url)
    with engine.connect() as connection:
        logged = connection.execute(
            select(AuditEntry.actor, AuditEntry.detail)
            .where(AuditEntry.action == "device.outbox_dropped")
            .order_by(AuditEntry.id)
        ).all()
    engine.dispose()
    assert [(actor, detail) for actor, detail in logged] == [
        (f"device:{device.device_id}", {"heartbeat": 3}),
        (f"device:{device.device_id}", {"heartbeat": 1}),
    ]


def test_local_problems_a_laptop_reports_reach_the_audit_log_and_a_nul_is_refused(
    server: ServerProcess,
) -> None:
    from tests.helpers.audit import audit_details

    device = Device(server)
    device.enrol(server.token())
    problem = "the outbox was not usable (file is not a database); it was moved to outbox.sqlite3.unusable-x"
    assert device.post("/heartbeat", {**heartbeat(), "local_problems": [problem]}).status_code == 200
    assert (
        device.post("/reports", {**report(), "local_problems": ["requirements.toml:2: broken"]}).status_code
        == 200
    )
    assert device.post("/heartbeat", heartbeat()).status_code == 200  # none: nothing logged
    refused = device.post("/heartbeat", {**heartbeat(), "local_problems": ["bad\x00byte"]})
    assert refused.status_code == 422, refused.text
    assert audit_details(server, "device.local_problem") == [
        {"problems": [problem]},
        {"problems": ["requirements.toml:2: broken"]},
    ]
