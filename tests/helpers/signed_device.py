"""A device that enrols and signs its requests by hand, to call a real server's agent API directly."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract.wire import API_PREFIX, public_key_text, signed_headers
from tests.helpers.servers import ServerProcess

IDENTITY = {
    "serial": "5CG1234XYZ",
    "hardware_uuid": "4C4C4544-0042-3510-8052-B4C04F4E4B32",
    "hostname": "student-lt042",
    "manufacturer": "HP",
    "model": "HP ProBook 440 G8",
    "os": "linux",
    "os_version": "Debian GNU/Linux 12 (bookworm)",
    "machine_id": "0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e",
    "macs": ["3c:52:82:11:22:33"],
    "unreadable": {},
}


class Device:
    def __init__(self, server: ServerProcess, identity: dict[str, Any] | None = None) -> None:
        self.server = server
        self.key = Ed25519PrivateKey.generate()
        self.identity = identity or dict(IDENTITY)
        self.device_id = ""

    def enrol(self, token: str) -> requests.Response:
        response = requests.post(
            f"{self.server.url}{API_PREFIX}/enrol",
            json={
                "token": token,
                "public_key": public_key_text(self.key),
                "identity": self.identity,
                "agent_version": "0.1.0",
            },
            timeout=30,
        )
        if response.status_code in (200, 202):  # 202: a claim on a known record, waiting
            self.device_id = response.json()["device_id"]
        return response

    def post(
        self,
        path: str,
        body: dict[str, Any] | bytes,
        now: float | None = None,
        request_id: str | None = None,
        key: Ed25519PrivateKey | None = None,
        tamper: bytes | None = None,
    ) -> requests.Response:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        full = f"{API_PREFIX}{path}"
        headers = signed_headers(
            key or self.key,
            self.device_id,
            "POST",
            full,
            payload,
            time.time() if now is None else now,
            request_id,
        )
        headers["Content-Type"] = "application/json"
        return requests.post(f"{self.server.url}{full}", data=tamper or payload, headers=headers, timeout=30)


def report(report_id: str | None = None, status: str = "pass") -> dict[str, Any]:
    return {
        "report_id": report_id or uuid.uuid4().hex,
        "reported_at": datetime.now(timezone.utc).isoformat(),
        "agent_version": "0.1.0",
        "identity": IDENTITY,
        "results": [
            {
                "id": "firewall",
                "title": "Firewall",
                "status": status,
                "summary": "firewall is on (ufw)",
                "evidence": {"ufw": "on"},
                "remediation": None,
                "duration_ms": 12,
            },
        ],
        "software": [{"name": "firefox-esr", "version": "115.12", "publisher": "Mozilla", "source": "dpkg"}],
        "dropped": {},
    }


def heartbeat(etag: str | None = None) -> dict[str, Any]:
    return {
        "heartbeat_id": uuid.uuid4().hex,
        "sent_at": datetime.now(timezone.utc).isoformat(),
        "agent_version": "0.1.0",
        "overall": "pass",
        "requirements_etag": etag,
        "dropped": {},
    }


def devices(server: ServerProcess) -> list[dict[str, Any]]:
    done = server.cli("devices", "--json")
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout)["devices"])
