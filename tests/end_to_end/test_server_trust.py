"""The agent obeys only its own server: a real agent process, a real server process, and a fake
server on the network (a small HTTP server in this test) that answers in the real one's place.

The attack (issue 8, section 7): a fake server answered heartbeats with `enabled = []` and a
replaced student policy; the agent applied both and its next report carried no results.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from agent.server_link.outbox import Outbox
from contract.wire import HEADER_ANSWER_SIGNATURE, HEADER_SERVER_KEY, public_key_text, sign_answer
from server.answer_signing import load_or_create_signing_key
from server.db.engine import make_engine
from server.db.models import AuditEntry
from tests.helpers.agent_process import agent
from tests.helpers.servers import ServerProcess, free_port

EVIL_REQUIREMENTS = "[checks]\nenabled = []\n"
EVIL_POLICY = '---\nid = "aup-evil"\n---\nI will let anyone do anything.\n'
SYSTEM_CHECKS = {"disk_encryption", "firewall", "power_on_password", "antivirus", "software"}


def evil_heartbeat_answer() -> bytes:
    return json.dumps(
        {
            "server_time": "2026-12-01T10:00:00+00:00",
            "requirements": {"etag": "evil", "content": EVIL_REQUIREMENTS},
            "policies": {
                "etag": "evil",
                "documents": [
                    {
                        "audience": "student",
                        "policy_id": "aup-evil",
                        "version": "0" * 64,
                        "content": EVIL_POLICY,
                    }
                ],
            },
            "commands": [{"id": 1, "command": "check_now"}],
        }
    ).encode()


class FakeServer:
    """Stands where the server should be. Modes:

    - "forward": a transparent proxy to the real server, keeping the last heartbeat answer;
    - "unsigned": the evil heartbeat answer, unsigned (any other path: a plain 200);
    - "other_key": the evil answer, properly signed for the request, but by the fake's own key
      (and offering that key, as if to be pinned);
    - "replay": the real server's heartbeat answer captured in "forward" mode, replayed as it was.
    """

    def __init__(self, target: str, host: str = "127.0.0.1") -> None:
        self.target = target
        self.mode = "forward"
        self.key = Ed25519PrivateKey.generate()
        self.captured: tuple[bytes, dict[str, str]] | None = None
        self.requests: list[str] = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                fake.requests.append(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, answer, headers = fake.answer(self.path, dict(self.headers.items()), body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer((host, free_port()), Handler)
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes, dict[str, str]]:
        if self.mode == "forward":
            sent = {k: v for k, v in headers.items() if k.lower() not in {"host", "content-length"}}
            real = requests.post(f"{self.target}{path}", data=body, headers=sent, timeout=30)
            kept = {k: v for k, v in real.headers.items() if k.lower().startswith("x-homeroom-")}
            if path.endswith("/heartbeat"):
                self.captured = (real.content, kept)
            return real.status_code, real.content, kept
        if path.endswith("/enrol"):  # as a server from before signing keys answered
            old = {
                "device_id": "d1",
                "group": "g",
                "replaced_key": False,
                "server_time": "2026-12-01T10:00:00Z",
            }
            return 200, json.dumps(old).encode(), {}
        if self.mode == "replay" and path.endswith("/heartbeat"):
            assert self.captured is not None
            return 200, *self.captured
        if not path.endswith("/heartbeat"):
            return (
                200,
                json.dumps({"report_id": "x", "record_id": "x", "stored": True, "duplicate": False}).encode(),
                {},
            )
        answer = evil_heartbeat_answer()
        if self.mode == "unsigned":
            return 200, answer, {}
        signature = sign_answer(self.key, "POST", path, headers, answer)
        return 200, answer, {HEADER_ANSWER_SIGNATURE: signature, HEADER_SERVER_KEY: public_key_text(self.key)}

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def real_server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(f"sqlite:///{tmp_path / 'var' / 'homeroom.db'}", tmp_path)
    process.init()
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def fake(real_server: ServerProcess) -> Iterator[FakeServer]:
    running = FakeServer(real_server.url)
    try:
        yield running
    finally:
        running.close()


def point_at(state: Path, url: str) -> None:
    """Where the agent believes its server is (a fake on the network answers at the same address)."""
    enrolment = json.loads((state / "enrolment.json").read_text())
    enrolment["server_url"] = url
    (state / "enrolment.json").write_text(json.dumps(enrolment))


def time_passes(state: Path, *fields: str) -> None:
    """Make the named schedule slots due (as hours passing would), and every queued record due now."""
    schedule = json.loads((state / "schedule.json").read_text())
    for name in fields:
        schedule[name] = 0
    (state / "schedule.json").write_text(json.dumps(schedule))
    with Outbox(state / "outbox.sqlite3") as outbox:
        outbox.due_now()


def run_once(state: Path, *extra: str) -> Any:
    return agent("run", "--once", "--state-dir", str(state), *extra)


def audit(server: ServerProcess, action: str) -> list[dict[str, Any]]:
    engine = make_engine(server.database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(AuditEntry.detail).where(AuditEntry.action == action)).all()
    finally:
        engine.dispose()
    return [row[0] for row in rows]


def test_answers_not_signed_by_the_pinned_key_are_refused_and_the_checks_stay(
    real_server: ServerProcess, fake: FakeServer, state_dir: Path, tmp_path: Path
) -> None:
    stricter = tmp_path / "lincoln.toml"
    stricter.write_text("[screen_lock]\nmax_idle_minutes = 9\n", encoding="utf-8")
    assert (
        real_server.cli("requirements", "publish", str(stricter), "--group", "Lincoln High").returncode == 0
    )
    assert real_server.cli("policy", "publish", "config/policies/secondary.md").returncode == 0
    enrolled = agent(
        "enroll", "--server", real_server.url, "--token", real_server.token(), "--state-dir", str(state_dir)
    )
    assert enrolled.returncode == 0, enrolled.stderr
    server_key = load_or_create_signing_key(make_engine(real_server.database_url)).public_key
    assert json.loads((state_dir / "enrolment.json").read_text())["server_public_key"] == server_key

    # The real server's answers, through a transparent proxy: a genuine change is applied.
    point_at(state_dir, fake.url)
    assert run_once(state_dir).returncode == 0  # the first report
    time_passes(state_dir, "last_heartbeat_at")
    genuine = run_once(state_dir)
    assert genuine.returncode == 0, genuine.stdout + genuine.stderr
    assert (state_dir / "server-requirements.toml").read_text() == stricter.read_text()
    policy = (state_dir / "policies" / "student.md").read_text()
    assert policy == Path("config/policies/secondary.md").read_text()
    assert fake.captured is not None and b"max_idle_minutes = 9" in fake.captured[0]
    # New requirements are checked against on the next cycle (check_now), here still through the
    # real server: that check's report depends on this machine (a result or the installed software
    # changed since the first report, say), and must not be left to the fake.
    applied = run_once(state_dir)
    assert applied.returncode == 0 and "checked: yes" in applied.stdout, applied.stdout + applied.stderr

    # The fake answers the heartbeat itself: unsigned, signed by its own key, and a replay of a
    # genuine signed answer. Each is refused whole, and said so. From the second on a report waits
    # too (--now), behind the oldest heartbeat: after a refused answer nothing more goes to the fake.
    for mode in ("unsigned", "other_key", "replay"):
        fake.mode = mode
        time_passes(state_dir, "last_heartbeat_at")
        offered = len(fake.requests)
        attacked = run_once(state_dir, *(() if mode == "unsigned" else ("--now",)))
        assert attacked.returncode == 3, (mode, attacked.stdout, attacked.stderr)
        assert "refused an answer" in attacked.stderr and "nothing in it was applied" in attacked.stderr, mode
        assert fake.requests[offered:] == ["/api/v1/heartbeat"], mode
        schedule = json.loads((state_dir / "schedule.json").read_text())
        assert schedule["check_now"] is False, f"{mode}: the fake's check_now must not be taken"
        assert (state_dir / "server-requirements.toml").read_text() == stricter.read_text(), mode
        assert (state_dir / "policies" / "student.md").read_text() == policy, mode
        enrolment = json.loads((state_dir / "enrolment.json").read_text())
        assert enrolment["server_public_key"] == server_key, f"{mode}: the pinned key must not change"
    status = agent("status", "--state-dir", str(state_dir)).stdout
    assert "Refused answers: 3 not from this district's server" in status, status
    assert "pinned at enrolment" in status

    # The real server again: what waited is delivered, the next report carries every check, and IT
    # sees the refusals in the audit log.
    point_at(state_dir, real_server.url)
    time_passes(state_dir, "last_check_at", "last_report_at")
    back = run_once(state_dir)
    assert back.returncode == 0, back.stdout + back.stderr
    (device,) = json.loads(real_server.cli("devices", "--json").stdout)["devices"]
    assert set(device["checks"]) >= SYSTEM_CHECKS, device["checks"]
    told = audit(real_server, "device.answers_refused")
    assert sum(entry["count"] for entry in told) == 3
    assert all(entry["server_url"] == fake.url for entry in told)
    assert any("not signed" in entry["last_reason"] for entry in told)


def test_an_agent_enrolled_before_keys_pins_the_first_signed_answer_and_then_refuses_others(
    real_server: ServerProcess, fake: FakeServer, state_dir: Path
) -> None:
    enrolled = agent(
        "enroll", "--server", real_server.url, "--token", real_server.token(), "--state-dir", str(state_dir)
    )
    assert enrolled.returncode == 0, enrolled.stderr
    enrolment = json.loads((state_dir / "enrolment.json").read_text())
    server_key = enrolment.pop("server_public_key")
    enrolment.pop("server_key_pinned")
    (state_dir / "enrolment.json").write_text(json.dumps(enrolment))  # as an older agent wrote it
    assert "not pinned yet" in agent("status", "--state-dir", str(state_dir)).stdout

    point_at(state_dir, fake.url)
    fake.mode = "unsigned"
    unsigned = run_once(state_dir)
    assert unsigned.returncode == 3 and "not signed" in unsigned.stderr
    assert "server_public_key" not in json.loads((state_dir / "enrolment.json").read_text())

    point_at(state_dir, real_server.url)
    time_passes(state_dir)
    pinned = run_once(state_dir)
    assert pinned.returncode == 0, pinned.stdout + pinned.stderr
    after = json.loads((state_dir / "enrolment.json").read_text())
    assert after["server_public_key"] == server_key
    assert after["server_key_pinned"].startswith("from the first signed answer over loopback http")

    point_at(state_dir, fake.url)
    fake.mode = "other_key"
    time_passes(state_dir, "last_heartbeat_at")
    refused = run_once(state_dir)
    assert refused.returncode == 3 and "does not match the server key pinned" in refused.stderr
    assert json.loads((state_dir / "enrolment.json").read_text())["server_public_key"] == server_key


def test_plain_http_to_another_host_is_refused_before_connecting_unless_allowed(
    real_server: ServerProcess, state_dir: Path, tmp_path: Path
) -> None:
    """192.0.2.2 is this machine's own non-loopback address: a listener there shows whether the
    agent connected at all."""
    listener = FakeServer(real_server.url, host="192.0.2.2")
    listener.mode = "unsigned"
    try:
        token = real_server.token()
        refused = agent("enroll", "--server", listener.url, "--token", token, "--state-dir", str(state_dir))
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert f"refusing {listener.url}" in refused.stderr
        assert "anyone on the network" in refused.stderr and "https://" in refused.stderr
        assert "allow_insecure_http = true" in refused.stderr
        assert listener.requests == [] and not (state_dir / "enrolment.json").exists()

        # Enrolled with the real server, then told (by whoever edits the file) to send elsewhere.
        assert (
            agent(
                "enroll", "--server", real_server.url, "--token", token, "--state-dir", str(state_dir)
            ).returncode
            == 0
        )
        point_at(state_dir, listener.url)
        not_run = run_once(state_dir)
        assert not_run.returncode == 2 and f"refusing {listener.url}" in not_run.stderr
        assert (
            f"Not sending:     refusing {listener.url}"
            in agent("status", "--state-dir", str(state_dir)).stdout
        )
        assert listener.requests == []

        allowed = tmp_path / "agent.toml"
        allowed.write_text("[server]\nallow_insecure_http = true\n", encoding="utf-8")
        sent = run_once(state_dir, "--config", str(allowed))
        assert listener.requests, "with allow_insecure_http the agent does connect"
        assert sent.returncode == 3 and "not signed" in sent.stderr  # and still trusts only signed answers
    finally:
        listener.close()


def test_enrolment_with_a_server_that_sends_no_signing_key_is_refused(state_dir: Path) -> None:
    old_server = FakeServer("http://127.0.0.1:9")  # forwards nowhere: it answers by itself
    old_server.mode = "unsigned"
    try:
        refused = agent("enroll", "--server", old_server.url, "--token", "t", "--state-dir", str(state_dir))
    finally:
        old_server.close()
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "sent no usable signing key" in refused.stderr and "upgrade the Homeroom server" in refused.stderr
    assert not (state_dir / "enrolment.json").exists()
