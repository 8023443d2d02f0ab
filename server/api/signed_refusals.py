"""Refusals of a request whose signature verified, signed with the server's key and their status.

An agent sets a record aside for good only on a refusal (400, 403, 422 ...) its own server signed
(contract.wire, "answers"): a school's web filter answering 403, a captive portal or anyone on the
network could otherwise make a laptop give up its sign-off or its lost-laptop report. Only a request
whose device signature verified gets a signed refusal: the server vouches for what it said to that
device's request, and never signs an answer to a request it could not tell from a stranger's (a 401,
or a 413 answered before the body was read, stays unsigned).

The request is marked on the exception as it rises from the work (`mark_refusal`, on a database
thread), and every handler of the app signs what it builds for a marked exception (`sign_refusals`),
so FastAPI's routes and the hot POSTs served ahead of it (`server.api.signed_posts`) sign alike.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

from server.answer_signing import AnswerSigner
from server.auth import SignedRequest

_VERIFIED = "homeroom_verified_request"


def mark_refusal(exc: BaseException, signed: SignedRequest, signer: AnswerSigner) -> None:
    """Marks `exc`, rising out of the work of `signed` (which verified), as that request's refusal.

    Called from an `except` (free on the path where nothing is raised, unlike a `with` block)."""
    # Read here, on a database thread, so signing the refusal on the event loop never waits for
    # the database (the key is read once per process).
    signer.key()
    setattr(exc, _VERIFIED, signed)


def verified_request(exc: BaseException) -> SignedRequest | None:
    found = getattr(exc, _VERIFIED, None)
    return found if isinstance(found, SignedRequest) else None


Handler = Callable[[Request, Any], Any]


def signing(handler: Handler, signer: AnswerSigner) -> Handler:
    """`handler`, signing its answer when the exception is a verified request's refusal."""

    async def handle(request: Request, exc: Exception) -> Any:
        response = handler(request, exc)
        if inspect.isawaitable(response):
            response = await response
        signed = verified_request(exc)
        if signed is not None and isinstance(response, Response):
            response.headers.update(signer.headers(signed, bytes(response.body), response.status_code))
        return response

    return handle


def sign_refusals(app: FastAPI, signer: AnswerSigner) -> None:
    """Every exception handler the app has now signs verified requests' refusals; call it once,
    after the last handler is added."""
    for key, handler in list(app.exception_handlers.items()):
        app.exception_handlers[key] = signing(handler, signer)
