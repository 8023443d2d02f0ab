"""A locked, slow or unreachable database is answered with 503 and Retry-After, never 500.

Agents keep every record in their outbox and obey Retry-After, so "come back in a
few seconds" loses nothing; a 500 would say the server is broken when it is only busy.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.requests import Request

RETRY_AFTER_SECONDS = 5

log = logging.getLogger("homeroom.server")


def busy_answer() -> JSONResponse:
    return JSONResponse(
        {"detail": f"the database is busy: try again in {RETRY_AFTER_SECONDS} s"},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def add_busy_answers(app: FastAPI) -> None:
    @app.exception_handler(OperationalError)
    async def database_busy(request: Request, exc: OperationalError) -> JSONResponse:
        # SQLite "database is locked", PostgreSQL lock_timeout / statement_timeout, a lost connection.
        log.warning("503 for %s: %s", request.url.path, str(exc.orig or exc).splitlines()[0][:200])
        return busy_answer()

    @app.exception_handler(PoolTimeout)
    async def pool_exhausted(request: Request, _exc: PoolTimeout) -> JSONResponse:
        log.warning("503 for %s: every database connection is in use", request.url.path)
        return busy_answer()
