"""The path every signed agent request shares: authenticate, do the work, answer, in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Response
from pydantic import BaseModel
from sqlalchemy import Connection

from server.api.schemas import ErrorOut
from server.auth import KnownDevice, SignedRequest
from server.deps import Services

REFUSALS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut},
    401: {"model": ErrorOut},
    403: {"model": ErrorOut},
    409: {"model": ErrorOut},
    413: {"model": ErrorOut},
}


def answer(
    services: Services, signed: SignedRequest, work: Callable[[Connection, KnownDevice], BaseModel]
) -> Response:
    """One transaction: the request id is recorded together with the work, or neither is.

    Reports and heartbeats run their few short statements inline on the event loop:
    a thread hop per request costs more than the statements themselves, and one
    server process serves one request's transaction at a time anyway on SQLite;
    PostgreSQL deployments scale out with more worker processes. The answer is
    serialised once here rather than validated again by FastAPI, and signed with the
    server's key (server.answer_signing) so the agent can tell it came from its own server.
    """
    with services.engine.begin() as connection:
        device = services.authenticator.authenticate(connection, signed)
        result = work(connection, device)
    body = result.model_dump_json().encode()
    return Response(body, media_type="application/json", headers=services.answer_signer.headers(signed, body))
