"""Real agent processes against a real server process: enrolment, reporting, and faults.

Faults are made for real: the server is killed with SIGKILL in the middle of a burst, an agent is killed
with SIGKILL while it sends, and a proxy in front of the server answers 503 with Retry-After.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from agent.server_link.client import ServerClient
from agent.server_link.keys import open_key_store
from agent.server_link.outbox import Outbox
from agent.service import EnrolmentRecord, write_enrolment
from server.db.engine import make_engine
from server.db.models import Report
from tests.helpers.agent_process import agent
from tests.helpers.paths import ROOT
from tests.helpers.servers import ServerProcess, free_port
from tests.helpers.signed_device import IDENTITY


def enroll(server_url: str, token: str, state: Path) -> subprocess.CompletedProcess[str]:
    return agent("enroll", "--server", server_url, "--token", token, "--state-dir", str(state))


def enroll_as_laptop(server: ServerProcess, token: str, state: Path, serial: str) -> None:
    """Enrol a state directory as a distinct laptop (its own serial), as `homeroom-agent enroll` would.

    Several agents on this one machine would otherwise be one device: the server rightly maps the same
    hardware to the same record. The agent processes that then send are real.
    """
    key = Ed25519PrivateKey.generate()
    identity = {**IDENTITY, "serial": serial, "hardware_uuid": str(uuid.uuid4()).upper()}
    answer = ServerClient(server.url).enrol(token, key, identity, "0.1.0")
    open_key_store(state).save(key)
    write_enrolment(
        state, EnrolmentRecord(server.url, answer.device_id, answer.group, "2026-11-23T00:00:00+00:00")
    )


def stored_reports(server: ServerProcess) -> dict[str, int]:
    """report_id -> how many rows hold it (must be 1 each)."""
    engine = make_engine(server.database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(Report.report_id, func.count()).group_by(Report.report_id)).all()
    finally:
        engine.dispose()
    return {row[0]: row[1] for row in rows}


def queue_reports(state: Path, count: int, padding: int = 20_000) -> list[str]:
    """Reports queued in an agent's real outbox, as the service queues them; realistic size with software."""
    ids = []
    with Outbox(state / "outbox.sqlite3") as outbox:
        for number in range(count):
            report_id = uuid.uuid4().hex
            body: dict[str, Any] = {
                "report_id": report_id,
                "reported_at": datetime.now(timezone.utc).isoformat(),
                "agent_version": "0.1.0",
                "identity": IDENTITY,
                "results": [
                    {
                        "id": "firewall",
                        "title": "Firewall",
                        "status": "pass",
                        "summary": f"report {number}",
                        "evidence": {},
                        "remediation": None,
                        "duration_ms": 3,
                    }
                ],
                "software": [
                    {"name": f"package-{i}", "version": "1.0", "publisher": "x" * 40, "source": "dpkg"}
                    for i in range(padding // 100)
                ],
            }
            outbox.put("report", body)
            ids.append(report_id)
    return ids


def test_enrol_run_once_and_status(server: ServerProcess, state_dir: Path) -> None:
    enrolled = enroll(server.url, server.token("Lincoln High"), state_dir)
    assert enrolled.returncode == 0, enrolled.stderr
    assert "Enrolled with" in enrolled.stdout and "group Lincoln High" in enrolled.stdout
    ran = agent("run", "--once", "--state-dir", str(state_dir))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "sent: 1" in ran.stdout
    listed = json.loads(server.cli("devices", "--json").stdout)["devices"]
    assert len(listed) == 1 and set(listed[0]["checks"]) >= {"disk_encryption", "firewall", "software"}
    status = agent("status", "--state-dir", str(state_dir))
    assert "group Lincoln High" in status.stdout
    assert "Queued to send:  nothing" in status.stdout
    assert "Last report:     never" not in status.stdout
    assert "Device key:" in status.stdout
    # A second run right away: nothing is due, nothing is sent twice.
    again = agent("run", "--once", "--state-dir", str(state_dir))
    assert again.returncode == 0 and "report queued: no" in again.stdout
    assert sum(stored_reports(server).values()) == 1


def test_reenrolment_keeps_the_device_and_revoked_token_is_explained(
    server: ServerProcess, tmp_path: Path
) -> None:
    token = server.token()
    first, second = tmp_path / "first", tmp_path / "second"
    assert enroll(server.url, token, first).returncode == 0
    again = enroll(server.url, token, second)
    # A known laptop's record is not re-keyed by identity alone: the claim waits (test_reenrol.py).
    assert again.returncode == 0 and "Claim sent to" in again.stdout, again.stdout
    assert len(json.loads(server.cli("devices", "--json").stdout)["devices"]) == 1
    assert server.cli("token", "revoke", token).returncode == 0
    refused = enroll(server.url, token, tmp_path / "third")
    assert refused.returncode == 1
    assert "revoked" in refused.stderr and "ask IT" in refused.stderr


def test_offline_reports_wait_in_the_outbox_and_arrive_once(tmp_path: Path, state_dir: Path) -> None:
    server = ServerProcess(f"sqlite:///{tmp_path / 'var' / 'homeroom.db'}", tmp_path)
    server.init()
    server.start()
    try:
        assert enroll(server.url, server.token(), state_dir).returncode == 0
    finally:
        server.kill()
    offline = agent("run", "--once", "--state-dir", str(state_dir))
    assert offline.returncode == 3, offline.stdout + offline.stderr
    assert "could not deliver" in offline.stderr
    assert "1 report" in agent("status", "--state-dir", str(state_dir)).stdout
    with Outbox(state_dir / "outbox.sqlite3") as outbox:
        assert outbox.stats().queued == {"report": 1}
        outbox.due_now()
        (item,) = outbox.next_batch()
        assert item.kind == "report" and item.attempts == 1
    server.start()
    try:
        deadline = time.monotonic() + 120
        while True:
            done = agent("run", "--once", "--state-dir", str(state_dir))
            if done.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert done.returncode == 0, done.stdout + done.stderr
        assert list(stored_reports(server).values()) == [1]
    finally:
        server.stop()


class RetryAfterProxy:
    """Answers 503 with Retry-After for the first `refusals` requests, then forwards to the real server."""

    def __init__(self, target: str, refusals: int, retry_after: int) -> None:
        self.target = target
        self.refusals = refusals
        self.retry_after = retry_after
        self.seen: list[float] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                proxy.seen.append(time.time())
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if len(proxy.seen) <= proxy.refusals:
                    self.send_response(503)
                    self.send_header("Retry-After", str(proxy.retry_after))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in {"host", "content-length"}
                }
                answer = requests.post(f"{proxy.target}{self.path}", data=body, headers=headers, timeout=30)
                self.send_response(answer.status_code)
                self.send_header("Content-Type", "application/json")
                for name, value in answer.headers.items():  # as a real proxy does: the answer's signature
                    if name.lower().startswith("x-homeroom-"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()


@pytest.fixture
def proxy(server: ServerProcess) -> Iterator[RetryAfterProxy]:
    # Long enough that the next `run --once` surely starts within it, even on a loaded machine
    # (the suite runs many workers on two cores): a process start there can take seconds.
    running = RetryAfterProxy(server.url, refusals=1, retry_after=10)
    try:
        yield running
    finally:
        running.close()


def test_503_with_retry_after_is_honoured(
    server: ServerProcess, proxy: RetryAfterProxy, state_dir: Path
) -> None:
    assert enroll(server.url, server.token(), state_dir).returncode == 0
    enrolment = json.loads((state_dir / "enrolment.json").read_text())
    enrolment["server_url"] = proxy.url
    (state_dir / "enrolment.json").write_text(json.dumps(enrolment))
    refused = agent("run", "--once", "--state-dir", str(state_dir))
    assert refused.returncode == 3 and len(proxy.seen) == 1
    too_soon = agent("run", "--once", "--state-dir", str(state_dir))
    assert too_soon.returncode == 3
    assert len(proxy.seen) == 1, "the agent must not try again before Retry-After has passed"
    time.sleep(max(0.0, proxy.seen[0] + proxy.retry_after + 0.2 - time.time()))
    delivered = agent("run", "--once", "--state-dir", str(state_dir))
    assert delivered.returncode == 0, delivered.stdout + delivered.stderr
    assert len(proxy.seen) == 2 and proxy.seen[1] - proxy.seen[0] >= proxy.retry_after
    assert list(stored_reports(server).values()) == [1]


def _run_until_delivered(states: list[Path], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    pending = list(states)
    while pending and time.monotonic() < deadline:
        for state in list(pending):
            with Outbox(state / "outbox.sqlite3") as outbox:
                outbox.due_now()  # the test does not wait out real backoff
            done = agent("run", "--once", "--state-dir", str(state), timeout=300)
            if done.returncode == 0:
                pending.remove(state)
    assert not pending, f"still undelivered: {pending}"


def test_server_killed_mid_burst_stores_every_report_exactly_once(
    server: ServerProcess, tmp_path: Path
) -> None:
    token = server.token()
    states = [tmp_path / f"agent{n}" for n in range(3)]
    queued: list[str] = []
    for number, state in enumerate(states):
        enroll_as_laptop(server, token, state, f"5CG00{number}")
        queued += queue_reports(state, 40)
    senders = [
        subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "run", "--once", "--state-dir", str(state)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for state in states
    ]
    deadline = time.monotonic() + 60
    while sum(stored_reports(server).values()) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.kill()
    for sender in senders:
        sender.wait(120)
    midway = sum(stored_reports(server).values())
    assert 0 < midway < len(queued) + 3, "the kill must land in the middle of the burst"
    server.start()
    _run_until_delivered(states)
    stored = stored_reports(server)
    assert set(queued) <= set(stored)
    assert all(count == 1 for count in stored.values())
    server.stop()


def test_agent_killed_while_sending_loses_and_duplicates_nothing(
    server: ServerProcess, state_dir: Path
) -> None:
    assert enroll(server.url, server.token(), state_dir).returncode == 0
    queued = queue_reports(state_dir, 120)
    sender = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "run", "--once", "--state-dir", str(state_dir)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while sum(stored_reports(server).values()) < 15 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(sender.pid, signal.SIGKILL)
    sender.wait(30)
    midway = sum(stored_reports(server).values())
    assert 0 < midway < len(queued), "the kill must land while the agent sends"
    _run_until_delivered([state_dir])
    stored = stored_reports(server)
    assert set(queued) <= set(stored)
    assert all(count == 1 for count in stored.values())
