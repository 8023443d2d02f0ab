"""Real receivers for the server's notifications: an SMTP server (aiosmtpd) that keeps every message
it accepts, and an HTTP server that checks each webhook's signature the way a district's would."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from tests.helpers.servers import free_port


@dataclass
class Mail:
    recipients: list[str]
    message: EmailMessage


class _Keeper:
    def __init__(self, inbox: list[Mail]) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.inbox.append(Mail(list(envelope.rcpt_tos), parsed))
        return "250 OK"


class SmtpServer:
    """aiosmtpd on loopback; `stop()` and `start()` again on the same port make an outage."""

    def __init__(self) -> None:
        self.port = free_port()
        self.inbox: list[Mail] = []
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(_Keeper(self.inbox), hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    signed: bool

    @property
    def document(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


@dataclass
class WebhookReceiver:
    """Answers 200 to a correctly signed, fresh delivery and 401 to anything else; keeps them all."""

    secret: str
    port: int = field(default_factory=free_port)
    deliveries: list[Delivery] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/homeroom"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                timestamp = self.headers.get("X-Homeroom-Timestamp", "")
                fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) < 300
                # As documented for receivers (docs/architecture.md), written here on its own rather
                # than with the server's function: HMAC-SHA256 of "<timestamp>.<body>".
                expected = (
                    "sha256="
                    + hmac.new(
                        receiver.secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256
                    ).hexdigest()
                )
                signed = fresh and hmac.compare_digest(expected, self.headers.get("X-Homeroom-Signature", ""))
                receiver.deliveries.append(Delivery(dict(self.headers), body, signed))
                self.send_response(200 if signed else 401)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def wait_for(what: Callable[[], bool], timeout: float = 30.0, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if what():
            return True
        time.sleep(step)
    return what()
