"""Heartbeats and reports are answered ahead of FastAPI (`server.api.signed_posts`), exactly as its
routes answer them.

Each request is sent twice to one real app on a real initialised database: through the app as
uvicorn calls it (the hot handler) and through FastAPI's own stack (`FastAPI.__call__`, the routes
that still describe these endpoints in the schema). Every refusal must come back the same: status,
body and headers. The real server process runs the same handler in the rest of tests/server.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from contract.wire import (
    API_PREFIX,
    HEADER_ANSWER_SIGNATURE,
    MAX_BODY_BYTES,
    answer_signature_valid,
    load_public_key,
    public_key_text,
    signed_headers,
)
from server.app import HomeroomApp, create_app
from server.middleware import ASGIApp, Message
from server.settings import Settings
from tests.helpers.servers import InitialisedDatabases, ServerProcess
from tests.helpers.signed_device import IDENTITY, heartbeat, report

ASGI = ASGIApp
HEARTBEAT = f"{API_PREFIX}/heartbeat"
REPORTS = f"{API_PREFIX}/reports"


class Answer:
    def __init__(self, messages: list[Message]) -> None:
        self.messages = messages
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""
        starts = [message for message in messages if message["type"] == "http.response.start"]
        if starts:
            self.status = int(starts[0]["status"])
            self.headers = sorted(starts[0]["headers"])
        for message in messages:
            if message["type"] == "http.response.body":
                self.body += message.get("body", b"")

    def header(self, name: str) -> str:
        value: bytes = next(value for key, value in self.headers if key == name.lower().encode())
        return value.decode("latin-1")

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    app: ASGI,
    method: str,
    path: str,
    headers: dict[str, str],
    chunks: Iterable[bytes | None],
    root_path: str = "",
) -> Answer:
    """One HTTP request as uvicorn hands it to the app: the body in the chunks given (None: the
    client goes away there)."""
    parts = list(chunks)
    pending: list[Message] = [
        {"type": "http.disconnect"}
        if part is None
        else {"type": "http.request", "body": part, "more_body": index < len(parts) - 1}
        for index, part in enumerate(parts or [b""])
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        await asyncio.sleep(3600)  # the body is over: a disconnect never comes while the app works
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Message = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": root_path,
        "query_string": b"",
        "headers": [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    return Answer(sent)


class Laptop:
    def __init__(self, app: ASGI, token: str) -> None:
        self.key = Ed25519PrivateKey.generate()
        body = {
            "token": token,
            "public_key": public_key_text(self.key),
            "identity": IDENTITY,
            "agent_version": "0.1.0",
        }
        enrolled = call(
            app,
            "POST",
            f"{API_PREFIX}/enrol",
            {"content-type": "application/json"},
            [json.dumps(body).encode()],
        )
        assert enrolled.status == 200, enrolled.body
        self.device_id: str = enrolled.json()["device_id"]

    def headers(
        self, path: str, body: bytes, now: float | None = None, request_id: str | None = None
    ) -> dict[str, str]:
        signed = signed_headers(
            self.key, self.device_id, "POST", path, body, time.time() if now is None else now, request_id
        )
        return {**signed, "Content-Type": "application/json"}


@pytest.fixture
def served(
    tmp_path: Path, initialised_databases: InitialisedDatabases
) -> Iterator[tuple[HomeroomApp, Laptop]]:
    url = f"sqlite:///{tmp_path / 'var' / 'homeroom.db'}"
    initialised_databases.copy_into(url)
    token = ServerProcess(url, tmp_path).token()
    app = create_app(Settings(database_url=url, data_dir=tmp_path))
    assert isinstance(app, HomeroomApp)
    yield app, Laptop(app, token)
    app.state.services.engine.dispose()


def through_fastapi(app: FastAPI) -> ASGI:
    """The same app with the hot handler skipped: FastAPI's stack and its declared routes."""
    return lambda scope, receive, send: FastAPI.__call__(app, scope, receive, send)


def both_ways(
    app: HomeroomApp, method: str, path: str, headers: dict[str, str], chunks: Iterable[bytes]
) -> Answer:
    """The answer of the hot handler, asserted equal to FastAPI's to the very same request."""
    parts = list(chunks)
    hot = call(app, method, path, headers, parts)
    routed = call(through_fastapi(app), method, path, headers, parts)
    assert (hot.status, hot.body, hot.headers) == (routed.status, routed.body, routed.headers)
    return hot


def test_every_refusal_is_the_one_fastapi_s_route_gives(served: tuple[HomeroomApp, Laptop]) -> None:
    app, laptop = served
    for path, body in (
        (HEARTBEAT, json.dumps(heartbeat()).encode()),
        (REPORTS, json.dumps(report()).encode()),
    ):
        signed = laptop.headers(path, body)
        missing = {name: value for name, value in signed.items() if name != "X-Homeroom-Signature"}
        assert both_ways(app, "POST", path, missing, [body]).status == 422
        bad_id = laptop.headers(path, body, request_id="not hex!")
        answer = both_ways(app, "POST", path, bad_id, [body])
        assert answer.status == 422 and answer.json()["detail"][0]["loc"] == [
            "header",
            "x-homeroom-request-id",
        ]
        answer = both_ways(app, "POST", path, {**signed, "X-Homeroom-Timestamp": "soon"}, [body])
        assert answer.status == 401 and "whole seconds" in answer.json()["detail"]
        # The server's clock held still for both calls: the answer says by how many seconds
        # (rounded), which could otherwise differ between them.
        authenticator = app.state.services.authenticator
        held = time.time()
        authenticator.clock = lambda: held  # noqa: B023 - used before the loop moves on
        try:
            late = laptop.headers(path, body, now=held - 3600)
            answer = both_ways(app, "POST", path, late, [body])
        finally:
            authenticator.clock = time.time
        assert answer.status == 401 and "behind the server's clock" in answer.json()["detail"]
        assert both_ways(app, "POST", path, signed, [body + b" "]).status == 401  # not what was signed
        stranger = {**signed, "X-Homeroom-Device": uuid.uuid4().hex}
        assert both_ways(app, "POST", path, stranger, [body]).status == 401
        for wrong in (b"{not json", b'{"heartbeat_id": 5}', b"[]", b'"\\ud800"'):
            answer = both_ways(app, "POST", path, laptop.headers(path, wrong), [wrong])
            assert answer.status == 422, answer.body
        # A body signed as sent, arriving in pieces, is read whole.
        once = laptop.headers(path, body)
        pieces = [body[:10], b"", body[10:]]
        assert call(app, "POST", path, once, pieces).status == 200
        answer = both_ways(app, "POST", path, once, pieces)  # the same request id again
        assert answer.status == 409 and "replayed" in answer.json()["detail"]
        # Over the limit, declared or chunked: 413, and the connection closes.
        big = {**laptop.headers(path, b""), "Content-Length": str(MAX_BODY_BYTES + 1)}
        assert both_ways(app, "POST", path, big, [b""]).status == 413
        chunked = laptop.headers(path, b"")
        answer = both_ways(app, "POST", path, chunked, [b"a" * 64 * 1024] * 80)  # 5 MB
        assert answer.status == 413 and answer.header("connection") == "close"
        assert f"{MAX_BODY_BYTES} byte limit" in answer.json()["detail"]
        # What the hot handler does not take goes to FastAPI: another method, a trailing slash.
        assert call(app, "GET", path, signed, [b""]).status == 405
        assert call(app, "POST", path + "/", signed, [body]).status == 307


def test_a_signed_answer_carries_the_same_headers_and_verifies(served: tuple[HomeroomApp, Laptop]) -> None:
    app, laptop = served
    server_key = load_public_key(app.state.services.answer_signer.public_key())
    for path, make in ((HEARTBEAT, heartbeat), (REPORTS, report)):
        answers = []
        for way in (app, through_fastapi(app)):
            body = json.dumps(make()).encode()
            signed = laptop.headers(path, body)
            answer = call(way, "POST", path, signed, [body])
            assert answer.status == 200, answer.body
            request_headers = {name: value for name, value in signed.items() if name.startswith("X-Homeroom")}
            assert answer_signature_valid(
                server_key, answer.header(HEADER_ANSWER_SIGNATURE), "POST", path, request_headers, answer.body
            )
            answers.append(answer)
        hot, routed = answers
        assert [name for name, _ in hot.headers] == [name for name, _ in routed.headers]
        assert hot.header("content-type") == "application/json"
        assert hot.header("content-security-policy") == routed.header("content-security-policy")
        assert hot.json().keys() == routed.json().keys()


def test_the_hot_posts_never_enter_fastapi_s_stack(served: tuple[HomeroomApp, Laptop]) -> None:
    """What makes them cheaper: FastAPI builds its middleware stack at the first request it serves."""
    app, laptop = served
    app.middleware_stack = None  # the enrolment went through it
    body = json.dumps(heartbeat()).encode()
    assert call(app, "POST", HEARTBEAT, laptop.headers(HEARTBEAT, body), [body]).status == 200
    assert call(app, "POST", HEARTBEAT, laptop.headers(HEARTBEAT, b"{}"), [b"{}"]).status == 422
    assert call(app, "POST", REPORTS, {}, [b""]).status == 422
    assert app.middleware_stack is None
    # Under a root path (a proxy that mounts the server below a prefix) FastAPI answers as before.
    assert call(app, "POST", HEARTBEAT, laptop.headers(HEARTBEAT, body), [body], root_path="/homeroom").status
    assert app.middleware_stack is not None


def test_a_client_gone_before_its_body_ends_is_not_answered_and_nothing_is_kept(
    served: tuple[HomeroomApp, Laptop],
) -> None:
    app, laptop = served
    body = json.dumps(heartbeat()).encode()
    signed = laptop.headers(HEARTBEAT, body)
    gone = call(app, "POST", HEARTBEAT, signed, [body[:20], None])
    assert gone.messages == []  # nobody to answer; and no exception for uvicorn to log as a 500
    # The request id was not kept: the whole request, sent again, is served.
    assert call(app, "POST", HEARTBEAT, signed, [body]).status == 200
