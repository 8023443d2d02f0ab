"""Bad input found by hand, against a real server process on SQLite and PostgreSQL: each gets a short
4xx that does not echo the input, never a 500; and a signature is checked before the body is parsed."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import requests
from sqlalchemy import create_engine, text

from contract.wire import API_PREFIX
from tests.helpers.servers import ServerProcess
from tests.helpers.signed_device import IDENTITY, Device, devices, heartbeat, report

SURROGATE = "\\ud800"  # a lone surrogate as JSON writes it: Python's json.loads accepts it


def enrol_body(token: str, **identity: Any) -> dict[str, Any]:
    return {
        "token": token,
        "public_key": "A" * 43 + "=",
        "identity": {**IDENTITY, **identity},
        "agent_version": "0.1.0",
    }


def assert_short_422(response: requests.Response, *, limit: int = 3000) -> str:
    assert response.status_code == 422, (response.status_code, response.text[:300])
    assert len(response.content) < limit, len(response.content)
    detail = response.json()["detail"]
    return json.dumps(detail)


def enrolled(server: ServerProcess) -> Device:
    device = Device(server)
    assert device.enrol(server.token()).status_code == 200
    return device


def test_a_lone_surrogate_anywhere_is_a_short_422(server: ServerProcess) -> None:
    token = server.token()
    raw = json.dumps(enrol_body(token, hostname="x")).replace('"hostname": "x"', f'"hostname": "{SURROGATE}"')
    unauthenticated = requests.post(
        f"{server.url}{API_PREFIX}/enrol",
        data=raw.encode(),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert "JSON" in assert_short_422(unauthenticated)
    as_bytes = raw.replace(SURROGATE, "\udcff").encode("utf-8", "surrogatepass")
    raw_bytes = requests.post(f"{server.url}{API_PREFIX}/enrol", data=as_bytes, timeout=30)
    assert_short_422(raw_bytes)
    device = enrolled(server)
    body = json.dumps(report()).replace('"summary": "firewall is on (ufw)"', f'"summary": "{SURROGATE}"')
    assert_short_422(device.post("/reports", body.encode()))
    key = json.dumps(heartbeat()).replace('"dropped": {}', f'"dropped": {{"{SURROGATE}": 1}}')
    assert_short_422(device.post("/heartbeat", key.encode()))


def test_evidence_nested_deep_is_a_422(server: ServerProcess) -> None:
    device = enrolled(server)
    for depth in (20, 300, 5000):
        body = report()
        body["results"][0]["evidence"] = {"deep": "HERE"}
        raw = json.dumps(body).replace('"HERE"', "[" * depth + '"bottom"' + "]" * depth)
        assert_short_422(device.post("/reports", raw.encode()))
    shallow = report()
    shallow["results"][0]["evidence"] = {"a": {"b": [{"c": ["d"]}]}}
    assert device.post("/reports", shallow).status_code == 200


def test_a_nul_in_a_hostname_user_or_version_is_a_422(server: ServerProcess) -> None:
    refused = requests.post(
        f"{server.url}{API_PREFIX}/enrol", json=enrol_body(server.token(), hostname="lt\x00042"), timeout=30
    )
    assert "NUL" in assert_short_422(refused)
    device = enrolled(server)
    with_user = {**report(), "users": ["alice\x00"]}
    assert "NUL" in assert_short_422(device.post("/reports", with_user))
    assert "NUL" in assert_short_422(device.post("/heartbeat", {**heartbeat(), "agent_version": "0.1\x00"}))
    evidence = report()
    evidence["results"][0]["evidence"] = {"ufw": ["on", {"x": "a\x00b"}]}
    assert "NUL" in assert_short_422(device.post("/reports", evidence))
    assert device.post("/heartbeat", heartbeat()).status_code == 200


def test_a_422_never_echoes_a_large_input(server: ServerProcess) -> None:
    huge_name = requests.post(
        f"{server.url}{API_PREFIX}/enrol", json=enrol_body(server.token(), hostname="h" * 900_000), timeout=30
    )
    detail = assert_short_422(huge_name)
    assert "hostname" in detail and "hhhhhhhhhh" not in detail
    device = enrolled(server)
    many = report()
    many["software"] = [{"name": "app", "surprise": i} for i in range(5000)]
    assert "more errors" in assert_short_422(device.post("/reports", many))


def test_a_report_dated_in_the_future_cannot_pin_the_status(server: ServerProcess) -> None:
    device = enrolled(server)
    forged = {**report(status="pass"), "reported_at": "9999-12-31T23:59:59-01:00"}
    assert device.post("/reports", forged).status_code == 200
    genuine = report(status="fail")
    assert device.post("/reports", genuine).json()["stored"] is True
    (listed,) = devices(server)
    # The device record keeps every requirement; the firewall's result is the one these reports move.
    assert listed["checks"]["firewall"] == "fail", listed
    slightly_ahead = {
        **report(status="pass"),
        "reported_at": (datetime.now(timezone.utc) + timedelta(seconds=60)).isoformat(),
    }
    assert device.post("/reports", slightly_ahead).status_code == 200
    assert devices(server)[0]["checks"]["firewall"] == "pass"
    engine = create_engine(server.database_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as connection:
        noted = connection.execute(
            text("SELECT count(*) FROM audit_log WHERE action = 'device.report_dated_ahead'")
        ).scalar()
    engine.dispose()
    assert noted == 1  # the forged date, not the one within the clock-skew window


def test_the_signature_is_checked_before_the_body_is_parsed(server: ServerProcess) -> None:
    device = enrolled(server)
    stranger = Device(server)
    stranger.device_id = device.device_id
    garbage = b'{"heartbeat_id": ' + b"[" * 100_000
    refused = stranger.post("/heartbeat", garbage)
    assert refused.status_code == 401 and "signature not accepted" in refused.json()["detail"]
    big = json.dumps({**heartbeat(), "agent_version": "x" * 1000_000}).encode()[: 1024 * 1024 - 10]
    began = time.perf_counter()
    for _ in range(5):
        assert stranger.post("/heartbeat", big).status_code == 401
    assert (time.perf_counter() - began) / 5 < 1.0
    assert_short_422(device.post("/heartbeat", garbage))
    assert device.post("/heartbeat", heartbeat()).status_code == 200
