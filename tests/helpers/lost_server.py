"""A small server on loopback that answers the agent's lost-device requests the way the real server
does (the lost-server work builds the real endpoints): every request's device signature checked
against the key sent at enrolment, every answer signed with the server's Ed25519 key through
`server.answer_signing.AnswerSigner.headers` semantics (contract.wire.sign_answer over the request's
own headers), and every request kept for the test to read.

The answers are signed by the server's own `AnswerSigner` (server/answer_signing.py), given this
server's key instead of reading one from a database.

`answer_mode`: "signed" (as the real server), "unsigned" (no signature: a stranger on the network),
"other_key" (signed, but by a key that is not the pinned one).
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract.wire import (
    API_PREFIX,
    HEADER_DEVICE,
    HEADER_REQUEST_ID,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    load_public_key,
    public_key_text,
    signature_valid,
    signing_string,
)
from server.answer_signing import AnswerSigner, SigningKey
from server.auth import SignedRequest
from tests.helpers.servers import serving_http


@dataclass
class Seen:
    path: str
    body: dict[str, Any]
    signed_by_device: bool


@dataclass
class LostServer:
    url: str = ""
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    stranger: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    device_key: str = ""
    answer_mode: str = "signed"
    lost_mode: dict[str, Any] | None = None
    report_answer: dict[str, Any] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self, endpoint: str) -> list[dict[str, Any]]:
        with self.lock:
            return [s.body for s in self.seen if s.path == f"{API_PREFIX}{endpoint}"]

    def answer(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        now = datetime.now(timezone.utc).isoformat()
        if path.endswith("/heartbeat"):
            answer: dict[str, Any] = {"server_time": now}
            if self.lost_mode is not None:
                answer["lost_mode"] = self.lost_mode
            return answer
        if path.endswith("/reports"):
            return {"report_id": body.get("report_id"), "stored": True, "duplicate": False}
        if path.endswith("/lost-reports"):
            base = {"record_id": body.get("record_id"), "stored": True, "duplicate": False}
            return {**base, "outcome": "recorded", "message": "", "closest": [], **self.report_answer}
        return {"record_id": body.get("record_id"), "stored": True, "duplicate": False}


def signer_for(key: Ed25519PrivateKey) -> AnswerSigner:
    """The server's signer with this key in place of the database's."""
    signer = AnswerSigner(engine=None)  # type: ignore[arg-type]  # the key is given, never read
    signer._key = SigningKey(key, public_key_text(key))
    return signer


@contextmanager
def lost_server() -> Iterator[LostServer]:
    state = LostServer()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw)
            except ValueError:
                body = {}
            if self.path == f"{API_PREFIX}/enrol":
                state.device_key = str(body.get("public_key"))
                answer = {
                    "device_id": "d-lost-1",
                    "group": "Lincoln High",
                    "replaced_key": False,
                    "server_time": datetime.now(timezone.utc).isoformat(),
                    "server_public_key": public_key_text(state.key),
                }
                self._send(200, json.dumps(answer).encode(), {})
                return
            signed = bool(state.device_key) and signature_valid(
                load_public_key(state.device_key),
                self.headers.get(HEADER_SIGNATURE, ""),
                signing_string(
                    "POST",
                    self.path,
                    int(self.headers.get(HEADER_TIMESTAMP, "0")),
                    self.headers.get(HEADER_REQUEST_ID, ""),
                    raw,
                ),
            )
            if not signed:  # as the real server: an unsigned request learns nothing
                self._send(401, b'{"detail": "unknown device or bad signature"}', {})
                return
            with state.lock:
                state.seen.append(Seen(self.path, body, signed))
            answer_body = json.dumps(state.answer(self.path, body)).encode()
            request = SignedRequest(
                self.headers.get(HEADER_DEVICE, ""),
                self.headers.get(HEADER_TIMESTAMP, ""),
                self.headers.get(HEADER_REQUEST_ID, ""),
                self.headers.get(HEADER_SIGNATURE, ""),
                "POST",
                self.path,
                raw,
            )
            headers: dict[str, str] = {}
            if state.answer_mode != "unsigned":
                key = state.key if state.answer_mode == "signed" else state.stranger
                headers = signer_for(key).headers(request, answer_body)
            self._send(200, answer_body, headers)

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with serving_http(Handler) as url:
        state.url = url
        yield state
