"""A recording proxy between a real agent and a real server: forwards every request unchanged and
keeps a copy of each (method, path, headers, body), so a test can see exactly what was sent."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import requests

from tests.helpers.servers import serving_http


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int


@contextmanager
def recording_proxy(upstream: str) -> Iterator[tuple[str, list[Recorded]]]:
    """(the proxy's URL, the list it fills); forwards to `upstream` and answers what it answered."""
    recorded: list[Recorded] = []
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            answer = requests.request(
                self.command, upstream + self.path, data=body, headers=headers, timeout=60
            )
            with lock:
                recorded.append(
                    Recorded(self.command, self.path, dict(self.headers.items()), body, answer.status_code)
                )
            self.send_response(answer.status_code)
            for key, value in answer.headers.items():
                if key.lower() not in (
                    "content-length",
                    "transfer-encoding",
                    "connection",
                    "content-encoding",
                ):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        do_GET = do_POST = do_PUT = _forward

        def log_message(self, format: str, *args: object) -> None:
            return

    with serving_http(Handler) as url:
        yield url, recorded
