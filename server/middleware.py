"""ASGI middleware that runs before FastAPI sees a request: bodies bounded in size and in time,
and the headers every answer carries."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _TooLarge(Exception):
    pass


class _TooSlow(Exception):
    pass


Headers = list[tuple[bytes, bytes]]


async def _answer_and_close(send: Send, status: int, detail: str, extra: Headers) -> None:
    """A JSON refusal with `connection: close`: uvicorn then drops the connection, so a client
    still sending the rest of its body cannot keep it."""
    body = ('{"detail":"' + detail + '"}').encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _oversized(scope: Scope, limit: int) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"content-length" and (not value.isdigit() or int(value) > limit):
            return True
    return False


class RequestGuard:
    """Every HTTP request's body is bounded in size (413) and in time (408), and every answer
    gets the headers `extra_headers` chooses for its request (the security headers).

    Size: Content-Length is checked up front; a chunked body is counted as it arrives and cut
    off at the limit, before it is read into memory. Time: the whole body must arrive within
    `seconds` of the headers, or a client that sends one byte a second would hold a connection
    and a task for as long as it likes; once the body is complete, waiting for a disconnect is
    not limited.

    One wrapper rather than three: each ASGI layer wraps `receive` and `send` again on every
    request, and on a heartbeat the three layers cost more than the answer's signature.
    """

    def __init__(
        self, app: ASGIApp, limit: int, seconds: float, extra_headers: Callable[[Scope], Headers]
    ) -> None:
        self.app = app
        self.limit = limit
        self.seconds = seconds
        self.extra_headers = extra_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.extra_headers(scope)
        if _oversized(scope, self.limit):
            await _answer_and_close(send, 413, self._too_large, extra)
            return
        deadline = asyncio.get_running_loop().time() + self.seconds
        limit = self.limit
        body_complete = False
        received = 0
        response_started = False
        # Set once the body passed the limit: whatever the app then makes of the exception (FastAPI
        # turns any error while it parses a form into 400 "error parsing the body"), the answer is 413.
        too_large = False
        replaced = False

        async def guarded_receive() -> Message:
            nonlocal body_complete, received, too_large
            if body_complete:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise _TooSlow from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    raise _TooLarge
                body_complete = not message.get("more_body", False)
            else:
                body_complete = True
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started, replaced
            if too_large and not response_started:  # the app's own answer to the overflow
                response_started = replaced = True
                await _answer_and_close(send, 413, self._too_large, extra)
                return
            if replaced:
                return
            if message["type"] == "http.response.start":
                response_started = True
                headers = message.get("headers", [])
                present = {name.lower() for name, _ in headers}
                message["headers"] = [*headers, *(h for h in extra if h[0] not in present)]
            await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except _TooLarge:
            if not response_started:
                await _answer_and_close(send, 413, self._too_large, extra)
        except _TooSlow:
            if not response_started:
                detail = f"request body not received within {self.seconds:g} s"
                await _answer_and_close(send, 408, detail, extra)

    @property
    def _too_large(self) -> str:
        return f"request body over the {self.limit} byte limit"
