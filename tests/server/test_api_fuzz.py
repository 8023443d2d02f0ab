"""Schemathesis fuzzes the agent API of a real server process from the app's own OpenAPI schema,
on SQLite and on PostgreSQL (which refuses some text SQLite stores, such as NUL).

Half the generated requests to signed endpoints are signed with a real enrolled device's key, so the
fuzzing reaches the body validation behind the signature check, not only the 401 in front of it; the
other half keep the generated headers, fuzzing the check itself. The signing is done where the request
is sent (`_send`), over the exact bytes sent: schemathesis's `before_call` hook runs before the body is
serialised, so a signature made there could not cover it. Whatever arrives, the server must answer with
a documented 4xx or a valid 2xx, never a 500.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance, status_code_conformance

from contract.wire import API_PREFIX, HEADER_DEVICE, public_key_text, signed_headers
from tests.helpers.servers import PostgresCluster, ServerProcess
from tests.helpers.signed_device import IDENTITY


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fuzz_target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, str, Ed25519PrivateKey]]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz")
    if request.param == "sqlite":
        url = f"sqlite:///{data_dir / 'var' / 'homeroom.db'}"
    else:
        cluster: PostgresCluster = request.getfixturevalue("postgres")
        url = cluster.new_database()
    server = ServerProcess(url, data_dir)
    server.init()
    server.start()
    key = Ed25519PrivateKey.generate()
    enrolled = requests.post(
        f"{server.url}{API_PREFIX}/enrol",
        json={
            "token": server.token(),
            "public_key": public_key_text(key),
            "identity": IDENTITY,
            "agent_version": "0.1.0",
        },
        timeout=30,
    )
    assert enrolled.status_code == 200, enrolled.text
    try:
        yield server, enrolled.json()["device_id"], key
    finally:
        server.stop()


def _send(case: Any, server: ServerProcess, device_id: str, key: Ed25519PrivateKey) -> None:
    kwargs = case.as_transport_kwargs(base_url=server.url)
    headers = dict(kwargs.get("headers") or {})
    if "json" in kwargs:
        body = json.dumps(kwargs.pop("json")).encode()
        headers["Content-Type"] = "application/json"
    else:
        body = kwargs.pop("data", b"") or b""
        if isinstance(body, str):
            body = body.encode()
    path = case.formatted_path if case.formatted_path.startswith("/") else "/" + case.formatted_path
    signed_endpoint = HEADER_DEVICE.lower() in {h.lower() for h in headers}
    if signed_endpoint and hash(body) % 2 == 0:
        headers = {k: v for k, v in headers.items() if not k.lower().startswith("x-homeroom-")}
        headers.update(signed_headers(key, device_id, case.method, path, body, time.time()))
    kwargs["headers"] = headers
    kwargs["data"] = body
    kwargs.pop("timeout", None)
    response = requests.request(**kwargs, timeout=30)
    case.validate_response(
        response, checks=[not_a_server_error, response_schema_conformance, status_code_conformance]
    )


def test_agent_api_never_answers_500(fuzz_target: tuple[ServerProcess, str, Ed25519PrivateKey]) -> None:
    server, device_id, key = fuzz_target
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    # The admin API (bearer tokens) is fuzzed with a real token in tests/server/console/test_admin_api.py.
    operations = [
        operation
        for operation in (result.ok() for result in schema.get_all_operations())
        if not operation.path.startswith(f"{API_PREFIX}/admin/")
    ]
    assert {op.label for op in operations} == {
        "POST /api/v1/enrol",
        "POST /api/v1/reports",
        "POST /api/v1/heartbeat",
        "POST /api/v1/signoffs",
        "POST /api/v1/approvals",
        "POST /api/v1/lost-reports",
        "POST /api/v1/lost-evidence",
    }
    # The handlers read their bodies themselves (signature first), yet every body is in the schema.
    documented = {
        op.label: op.definition.raw["requestBody"]["content"]["application/json"] for op in operations
    }
    assert {label: body["schema"]["$ref"].rsplit("/", 1)[1] for label, body in documented.items()} == {
        "POST /api/v1/enrol": "EnrolIn",
        "POST /api/v1/reports": "ReportIn",
        "POST /api/v1/heartbeat": "HeartbeatIn",
        "POST /api/v1/signoffs": "SignOffIn",
        "POST /api/v1/approvals": "ApprovalRequestIn",
        "POST /api/v1/lost-reports": "LostReportIn",
        "POST /api/v1/lost-evidence": "LostEvidenceIn",
    }
    assert all(len(op.body) == 1 for op in operations)
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case: Any) -> None:
            _send(case, server, device_id, key)

        fuzz()
