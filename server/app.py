"""`create_app(settings)`: the whole server, built from its settings and nothing global."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from contract import __version__
from contract.wire import MAX_BODY_BYTES
from server.api import enrolment, heartbeat, reports, signoffs
from server.api.enrolment import rekey_rule
from server.auth import DeviceAuthenticator, make_session_factory
from server.console import home
from server.db.engine import make_engine
from server.deps import Services
from server.errors import RequestRefused
from server.fleet.published import PoliciesCache, RequirementsCache, load_policies, load_requirements
from server.middleware import BodyLimit
from server.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    engine = make_engine(settings.database_url)
    services = Services(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        authenticator=DeviceAuthenticator(
            settings.max_clock_skew_seconds, settings.device_cache_seconds, rekey=rekey_rule(settings)
        ),
        requirements=RequirementsCache(settings.requirements_cache_seconds, load_requirements),
        policies=PoliciesCache(settings.requirements_cache_seconds, load_policies),
    )

    app = FastAPI(title="Homeroom server", version=__version__)
    app.state.services = services
    for resource in (enrolment, reports, heartbeat, signoffs):
        app.include_router(resource.router)
    app.include_router(home.router)

    @app.exception_handler(RequestRefused)
    async def refused(_request: Request, exc: RequestRefused) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    @app.get("/healthz", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    return app
