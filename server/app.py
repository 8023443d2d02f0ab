"""`create_app(settings)`: the whole server, built from its settings and nothing global."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from contract import __version__
from contract.wire import MAX_BODY_BYTES
from server.answer_signing import AnswerSigner
from server.api import approvals, enrolment, heartbeat, lost, reports, signoffs
from server.api.bodies import add_body_schemas, add_validation_answers
from server.api.busy import add_busy_answers
from server.api.enrolment import rekey_rule
from server.api.schemas import (
    ApprovalRequestIn,
    EnrolIn,
    HeartbeatIn,
    LostEvidenceIn,
    LostReportIn,
    ReportIn,
    SignOffIn,
)
from server.api.signed_posts import SignedPosts
from server.api.signed_refusals import sign_refusals
from server.auth import DeviceAuthenticator, device_lookup, make_session_factory
from server.cache_counts import counts_from_environment
from server.collector import settle_after_start
from server.console import admin_api, api_token_pages, lost_pages
from server.console.docs import add_docs
from server.console.headers import security_headers
from server.console.pages import add_console
from server.db.checkpointer import WalCheckpointer, sqlite_file
from server.db.engine import make_engine
from server.deps import Services, openapi_signature_headers
from server.errors import RequestRefused
from server.fleet.published import PoliciesCache, RequirementsCache, load_policies, load_requirements
from server.group_commit import GroupCommitter
from server.middleware import ASGIApp, Receive, RequestGuard, Scope, Send
from server.notify.background import background_lifespan
from server.settings import Settings


class HomeroomApp(FastAPI):
    """FastAPI, with the hot signed POSTs (`signed_posts`) answered before its own stack sees them."""

    signed_posts: SignedPosts | None = None
    # `signed_posts` inside the same guard as the rest of the app (`create_app`).
    guarded_posts: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.guarded_posts is not None
            and self.signed_posts is not None
            and self.signed_posts.serves(scope)
        ):
            scope["app"] = self
            await self.guarded_posts(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def serving_lifespan(settings: Settings) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    """What each server process does while it serves: on SQLite, the log checkpointed by a thread
    of its own (`server.db.checkpointer`); the collector settled (`server.collector`); notifications
    and the evidence purge (`server.notify.background`)."""
    background = background_lifespan(settings)
    served_file = sqlite_file(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        checkpointer = WalCheckpointer(served_file) if served_file is not None else None
        if checkpointer is not None:
            checkpointer.start()
        settle_after_start()
        try:
            async with background(app):
                yield
        finally:
            if checkpointer is not None:
                await asyncio.to_thread(checkpointer.stop)

    return lifespan


def create_app(settings: Settings) -> FastAPI:
    engine = make_engine(settings.database_url, for_server=True)
    # The database threads' engine: on PostgreSQL a pool of their own, set up for their statements
    # (`make_engine(hot_path=True)`); SQLite's one connection per process is its write lock, shared.
    hot_path = (
        engine
        if engine.dialect.name == "sqlite"
        else make_engine(settings.database_url, for_server=True, hot_path=True)
    )
    lookup = device_lookup(hot_path)
    services = Services(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        authenticator=DeviceAuthenticator(
            settings.max_clock_skew_seconds,
            settings.device_cache_seconds,
            rekey=rekey_rule(settings),
            counts=counts_from_environment(),
        ),
        device_lookup=lookup,
        requirements=RequirementsCache(settings.requirements_cache_seconds, load_requirements),
        policies=PoliciesCache(settings.requirements_cache_seconds, load_policies),
        answer_signer=AnswerSigner(engine),
        # PostgreSQL: two per worker process, so one request waiting on a row lock does not hold
        # the rest; more threads only contend for the GIL (measured: 8 threads gave 930
        # heartbeats/s with 2 workers, 2 threads 1,160-1,460/s).
        database=GroupCommitter(
            hot_path, threads=1 if engine.dialect.name == "sqlite" else 2, prepare_scope=lookup.batch
        ),
    )

    # Homeroom sends no telemetry anywhere; with OpenTelemetry installed (a dependency of a test
    # tool), FastAPI would otherwise look up the global providers on every request.
    # /docs is served by server.console.docs from local files (FastAPI's own loads a CDN).
    app = HomeroomApp(
        title="Homeroom server",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        telemetry={"tracing": False, "metrics": False, "logs": False},
        lifespan=serving_lifespan(settings),
    )
    app.state.services = services
    for resource in (enrolment, reports, heartbeat, signoffs, approvals, lost):
        app.include_router(resource.router)
    add_console(app, engine)
    app.include_router(api_token_pages.router)
    app.include_router(admin_api.router)
    app.include_router(lost_pages.router)
    add_docs(app)
    add_body_schemas(
        app,
        (EnrolIn, ReportIn, HeartbeatIn, SignOffIn, ApprovalRequestIn, LostReportIn, LostEvidenceIn),
        openapi_signature_headers,
    )

    @app.exception_handler(RequestRefused)
    async def refused(_request: Request, exc: RequestRefused) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    add_validation_answers(app)
    add_busy_answers(app)

    # On the event loop, touching nothing: it answers at once even while every thread waits for a lock.
    @app.get("/healthz", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    sign_refusals(app, services.answer_signer)  # after every handler is added

    guard = partial(
        RequestGuard,
        limit=MAX_BODY_BYTES,
        seconds=settings.body_timeout_seconds,
        extra_headers=security_headers,
    )
    app.add_middleware(guard.func, *guard.args, **guard.keywords)
    app.signed_posts = SignedPosts(
        services, {heartbeat.PATH: heartbeat.respond, reports.PATH: reports.respond}, app.exception_handlers
    )
    app.guarded_posts = guard(app.signed_posts)
    return app
