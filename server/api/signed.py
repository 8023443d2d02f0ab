"""The path every signed agent request shares: verify, parse, work and answer, in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from fastapi import Response
from pydantic import BaseModel
from sqlalchemy import Connection

from server.api.bodies import parse
from server.api.schemas import ErrorOut, ValidationErrorOut
from server.api.signed_refusals import mark_refusal
from server.auth import KnownDevice, SignedRequest
from server.deps import Services
from server.group_commit import HEAVY_BYTES

Body = TypeVar("Body", bound=BaseModel)
Parsed = TypeVar("Parsed")

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


@dataclass(frozen=True)
class SignedAnswer:
    """A 200 answer to a signed request: its JSON and the headers that sign it (`answer_signing`)."""

    body: bytes
    headers: dict[str, str]

    def response(self) -> Response:
        return Response(self.body, media_type="application/json", headers=self.headers)


async def answer(
    services: Services,
    signed: SignedRequest,
    body_model: type[Body],
    work: Callable[[Connection, KnownDevice, Body], BaseModel],
) -> Response:
    """`signed_answer` for a FastAPI route, the body parsed by `body_model` before the transaction."""
    return (await signed_answer(services, signed, partial(parse, body_model), work)).response()


async def signed_answer(
    services: Services,
    signed: SignedRequest,
    read: Callable[[bytes], Parsed],
    work: Callable[[Connection, KnownDevice, Parsed], BaseModel],
) -> SignedAnswer:
    """Signature first, then the body, then the work in a transaction: the request id is recorded
    together with the work, or neither is, and the answer leaves only after the commit.

    Nothing is parsed before the signature verifies, so a stranger's large body costs a hash.
    All of it is blocking work (a key lookup on a cache miss, the database), run on the database
    threads (`server.group_commit`), which commit many requests at once; the event loop never
    waits for the database. The answer is serialised once here rather than validated again by
    FastAPI, and signed with the server's key (server.answer_signing) so the agent can tell it
    came from its own server.
    """

    def prepare() -> tuple[KnownDevice, Parsed]:
        device = services.authenticator.verify(signed, services.device_lookup)
        try:
            return device, read(signed.body)
        except Exception as exc:  # verified: its refusals are signed
            mark_refusal(exc, signed, services.answer_signer)
            raise

    def in_transaction(connection: Connection, prepared: tuple[KnownDevice, Parsed]) -> BaseModel:
        device, body = prepared
        services.authenticator.apply(connection, device)  # the request id: `once`, for the batch
        try:
            return work(connection, device, body)
        except Exception as exc:
            mark_refusal(exc, signed, services.answer_signer)
            raise

    def sign(result: BaseModel) -> SignedAnswer:
        # The serializer's bytes as they are (`model_dump_json` decodes them to a str to be encoded again).
        encoded = result.__pydantic_serializer__.to_json(result)
        return SignedAnswer(encoded, services.answer_signer.headers(signed, encoded))

    # A key not cached is read with the batch's other devices, in one statement.
    read_ahead = None if services.authenticator.is_cached(signed.device_id) else signed.device_id
    once = services.authenticator.once_key(signed)
    heavy = len(signed.body) > HEAVY_BYTES  # a full report: batched apart from heartbeats
    return await services.database.run(prepare, in_transaction, sign, read_ahead, once, heavy)
