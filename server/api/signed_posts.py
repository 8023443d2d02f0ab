"""The two hot signed POSTs (heartbeat, report) answered by a plain ASGI handler, ahead of FastAPI.

Nearly every request a server gets is one of these two. Through FastAPI each went through a
dozen layers: its middleware stack, the router's matching of every route, dependency injection,
a Request and a Response object; measured, about a fifth of a heartbeat's server CPU, as much as
the heartbeat's own database work. Here the request is read straight from the ASGI scope and
answered with two `send` calls. Nothing else changes:

- `server.middleware.RequestGuard` wraps this handler as it wraps FastAPI (`server.app`): the same
  body limits in size (413) and time (408), and the same security headers on every answer;
- the signature headers are checked by the same function as FastAPI's routes use
  (`server.deps.check_signature_headers`), before the body is read;
- the work is the route's own `respond` (`server.api.heartbeat`, `server.api.reports`);
- every refusal (401, 409, 422, 503, ...) is answered by the app's own exception handlers, so its
  status, body and headers are the ones FastAPI's route would give; an exception no handler takes
  is a 500, as FastAPI's `ServerErrorMiddleware` makes it, and is raised on for uvicorn to log.

The routes stay declared in FastAPI (and answer the same if reached) so that the OpenAPI schema
describes them. Only an exact `POST` to one of the paths comes here: anything else (another
method, a trailing slash, an app mounted under a root path) goes to FastAPI as before.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from server.api.signed import SignedAnswer
from server.auth import SignedRequest
from server.deps import Services, check_signature_headers, signature_values, signed_from
from server.middleware import Receive, Scope, Send

Responder = Callable[[Services, SignedRequest], Awaitable[SignedAnswer]]
# An app's `exception_handlers`: an exception class (or a status) to what answers it.
ExceptionHandlers = Mapping[Any, Callable[[Request, Exception], Response | Awaitable[Response]]]

JSON = b"application/json"


def handler_for(handlers: ExceptionHandlers, exc: Exception) -> Callable[..., Any] | None:
    """The handler of the nearest class in the exception's MRO, as Starlette picks it."""
    for cls in type(exc).__mro__:
        if cls in handlers:
            return handlers[cls]
    return None


def answer_headers(answer: SignedAnswer) -> list[tuple[bytes, bytes]]:
    """The headers Starlette's `Response(body, media_type="application/json", headers=...)` sends."""
    return [
        *(
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in answer.headers.items()
        ),
        (b"content-length", str(len(answer.body)).encode("latin-1")),
        (b"content-type", JSON),
    ]


async def read_body(receive: Receive) -> bytes | None:
    """The whole body, or None if the client went away first (nobody is left to answer).

    The guard's limits apply as it arrives: `RequestGuard` raises out of `receive` past them."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks)
        elif message["type"] == "http.disconnect":
            return None


class SignedPosts:
    """Answers `POST` to each of `routes` (a path to its responder) with the app's own handlers."""

    def __init__(
        self, services: Services, routes: Mapping[str, Responder], handlers: ExceptionHandlers
    ) -> None:
        self.services = services
        self.routes = dict(routes)
        # The app's own dict, read when an error is answered: handlers added later count too.
        self.handlers = handlers

    def serves(self, scope: Scope) -> bool:
        return (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] in self.routes
            and not scope.get("root_path")
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        values = signature_values(scope["headers"])
        try:
            check_signature_headers(values)
        except Exception as exc:  # noqa: BLE001 - answered by the app's handler (422)
            await self._refuse(scope, receive, send, exc)
            return
        # Outside the `try`: the guard's own refusals (413, 408) rise through here to it.
        body = await read_body(receive)
        if body is None:
            return
        try:
            answer = await self.routes[path](self.services, signed_from(values, "POST", path, body))
        except Exception as exc:  # noqa: BLE001 - 401, 409, 422, 503 ...: the app's handler answers
            await self._refuse(scope, receive, send, exc)
            return
        await send({"type": "http.response.start", "status": 200, "headers": answer_headers(answer)})
        await send({"type": "http.response.body", "body": answer.body})

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
        handler = handler_for(self.handlers, exc)
        if handler is None:
            await PlainTextResponse("Internal Server Error", status_code=500)(scope, receive, send)
            raise exc
        response = handler(Request(scope, receive, send), exc)
        if inspect.isawaitable(response):
            response = await response
        await response(scope, receive, send)
