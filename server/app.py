"""`create_app(settings)`: the whole server, built from its settings and nothing global."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

from agent import __version__
from agent.protocol import MAX_BODY_BYTES
from server.api.agent_api import build_router
from server.auth import DeviceAuthenticator, RequestRefused, make_session_factory
from server.db.engine import make_engine
from server.fleet import PoliciesCache, RequirementsCache, load_policies, load_requirements
from server.settings import Settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyLimit:
    """Refuses bodies over the limit with 413 before they are read into memory.

    Content-Length is checked up front; a chunked body is counted as it
    arrives and cut off at the limit.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                await self._refuse(send)
                return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not response_started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = f'{{"detail":"request body over the {self.limit} byte limit"}}'.encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


HOME_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Homeroom</title>
<style>
body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;line-height:1.5;padding:0 1rem}
</style>
</head><body>
<h1>Homeroom server</h1>
<p>The server is running and laptops can enrol and report to it.</p>
<p>The web console for compliance, sign-off and lost-device reports is being built. Until then,
list devices with <code>homeroom-server devices</code>; the agent API is described at
<a href="/docs">/docs</a>.</p>
</body></html>
"""


class _TooLarge(Exception):
    pass


def create_app(settings: Settings) -> FastAPI:
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    authenticator = DeviceAuthenticator(settings.max_clock_skew_seconds, settings.device_cache_seconds)
    requirements = RequirementsCache(settings.requirements_cache_seconds, load_requirements)
    policies = PoliciesCache(settings.requirements_cache_seconds, load_policies)

    app = FastAPI(title="Homeroom server", version=__version__)
    app.state.engine = engine
    app.state.settings = settings
    app.include_router(build_router(engine, sessions, authenticator, requirements, policies))

    @app.exception_handler(RequestRefused)
    async def refused(_request: Request, exc: RequestRefused) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    @app.get("/", include_in_schema=False, response_class=HTMLResponse)
    def home() -> str:
        return HOME_PAGE

    @app.get("/healthz", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    return app
