"""The path every signed agent request shares: verify, parse, work and answer, in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Response
from pydantic import BaseModel
from sqlalchemy import Connection

from server.api.bodies import parse
from server.api.schemas import ErrorOut, ValidationErrorOut
from server.auth import KnownDevice, SignedRequest
from server.deps import Services

Body = TypeVar("Body", bound=BaseModel)

REFUSALS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut},
    401: {"model": ErrorOut},
    403: {"model": ErrorOut},
    408: {"model": ErrorOut},
    409: {"model": ErrorOut},
    413: {"model": ErrorOut},
    422: {"model": ValidationErrorOut},
    503: {"model": ErrorOut, "description": "The database is busy: try again after Retry-After seconds"},
}


def answer(
    services: Services,
    signed: SignedRequest,
    body_model: type[Body],
    work: Callable[[Connection, KnownDevice, Body], BaseModel],
) -> Response:
    """Signature first, then the body, then one transaction: the request id is recorded together
    with the work, or neither is.

    Nothing is parsed before the signature verifies, so a stranger's large body costs
    a hash. This is blocking work (the database, and a key lookup on a cache miss):
    the routes run it in the thread pool, so a locked or slow database holds a thread,
    never the event loop. The answer is serialised once here rather than validated
    again by FastAPI.
    The answer is signed with the server's key (server.answer_signing) so the agent can
    tell it came from its own server.
    """
    device = services.authenticator.verify(signed, services.device_lookup)
    body = parse(body_model, signed.body)
    with services.engine.begin() as connection:
        services.authenticator.record(connection, signed, device)
        result = work(connection, device, body)
    encoded = result.model_dump_json().encode()
    return Response(
        encoded, media_type="application/json", headers=services.answer_signer.headers(signed, encoded)
    )
