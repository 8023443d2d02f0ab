"""Named dependencies: what a request handler may ask for, built once by `create_app`.

Handlers receive the server's parts through these instead of importing globals,
so a test builds a whole app on its own temporary database.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from starlette.routing import BaseRoute

from server.answer_signing import AnswerSigner
from server.auth import DeviceAuthenticator, DeviceLookup, SignedRequest
from server.fleet.published import PoliciesCache, RequirementsCache
from server.group_commit import GroupCommitter
from server.settings import Settings

T = TypeVar("T")


@dataclass(frozen=True)
class Services:
    """The server's long-lived parts, one set per app (per worker process)."""

    settings: Settings
    engine: Engine
    sessions: Callable[[], Session]
    authenticator: DeviceAuthenticator
    device_lookup: DeviceLookup
    requirements: RequirementsCache
    policies: PoliciesCache
    answer_signer: AnswerSigner
    # Where database work runs: off the event loop, on a few threads of its own that commit many
    # requests at once. SQLite has one connection per process, so one thread: requests queue in
    # order instead of forty threads contending for the connection and the GIL.
    database: GroupCommitter

    async def in_database_thread(self, work: Callable[..., T], *args: Any) -> T:
        """Blocking work with transactions of its own (enrolment), on the same database threads."""
        return await self.database.call(partial(work, *args))


async def services(request: Request) -> Services:
    """Async, though it awaits nothing: FastAPI runs a plain `def` dependency in its thread pool,
    a thread hop on every request for one attribute read."""
    found: Services = request.app.state.services
    return found


@dataclass(frozen=True)
class SignatureHeader:
    """One of the four headers every signed request carries, and the limits it is held to."""

    name: str
    max_length: int
    min_length: int = 1
    pattern: re.Pattern[str] | None = None

    def problem(self, value: str | None) -> dict[str, Any] | None:
        """A validation error in FastAPI's own shape (so the 422 reads as before), or None."""
        where = ("header", self.name)
        if value is None:
            return {"type": "missing", "loc": where, "msg": "Field required"}
        if len(value) > self.max_length:
            return {"type": "string_too_long", "loc": where, "msg": f"at most {self.max_length} characters"}
        if len(value) < self.min_length:
            return {"type": "string_too_short", "loc": where, "msg": f"at least {self.min_length} characters"}
        if self.pattern is not None and not self.pattern.fullmatch(value):
            return {
                "type": "string_pattern_mismatch",
                "loc": where,
                "msg": f"must match {self.pattern.pattern}",
            }
        return None


SIGNATURE_HEADERS = (
    SignatureHeader("x-homeroom-device", 64),
    SignatureHeader("x-homeroom-timestamp", 20),
    SignatureHeader("x-homeroom-request-id", 64, min_length=8, pattern=re.compile(r"[0-9a-fA-F-]+")),
    SignatureHeader("x-homeroom-signature", 200),
)


SIGNATURE_HEADER_NAMES = tuple(header.name.encode("latin-1") for header in SIGNATURE_HEADERS)


def signature_values(raw_headers: Iterable[tuple[bytes, bytes]]) -> list[str | None]:
    """The four signature headers' values from an ASGI scope's headers: the first of each name, as
    Starlette's `Headers.get` reads them (uvicorn gives names in lower case), None where missing."""
    found: dict[bytes, str] = {}
    for name, value in raw_headers:
        if name in SIGNATURE_HEADER_NAMES and name not in found:
            found[name] = value.decode("latin-1")
    return [found.get(name) for name in SIGNATURE_HEADER_NAMES]


def check_signature_headers(values: list[str | None]) -> None:
    """RequestValidationError (answered 422) naming each header that is missing or out of its
    limits: the one check of the headers, for FastAPI's routes (`signed_request`) and for the hot
    POSTs served ahead of it (`server.api.signed_posts`), made before the body is read."""
    problems = [
        found
        for header, value in zip(SIGNATURE_HEADERS, values, strict=True)
        if (found := header.problem(value)) is not None
    ]
    if problems:
        raise RequestValidationError(problems)


def signed_from(values: list[str | None], method: str, path: str, body: bytes) -> SignedRequest:
    """The request as signed, from header values `check_signature_headers` passed."""
    device_id, timestamp, request_id, signature = (str(value) for value in values)
    return SignedRequest(
        device_id=device_id,
        timestamp=timestamp,
        request_id=request_id,
        signature=signature,
        method=method,
        path=path,
        body=body,
    )


async def signed_request(request: Request) -> SignedRequest:
    """The four signature headers and the raw body, exactly as received (the body hash is signed).

    The headers are read and checked here by hand rather than declared as four `Header()`
    parameters: FastAPI validated each through pydantic on every request, about a tenth of a
    heartbeat's server time. `openapi_signature_headers` keeps them in the schema. The body is
    not parsed here: `server.api.signed.answer` checks the signature first."""
    values = signature_values(request.scope["headers"])
    check_signature_headers(values)
    return signed_from(values, request.method, request.url.path, await request.body())


def _takes_signed_request(dependant: Dependant) -> bool:
    return any(
        dependency.call is signed_request or _takes_signed_request(dependency)
        for dependency in dependant.dependencies
    )


def openapi_signature_headers(schema: dict[str, Any], routes: Iterable[BaseRoute]) -> None:
    """Documents the signature headers on every operation that reads them, as `Header()` did."""
    for route in routes:
        if not isinstance(route, APIRoute) or not _takes_signed_request(route.dependant):
            continue
        for method in route.methods or ():
            operation = schema.get("paths", {}).get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            parameters = operation.setdefault("parameters", [])
            for header in SIGNATURE_HEADERS:
                rules: dict[str, Any] = {
                    "type": "string",
                    "maxLength": header.max_length,
                    "minLength": header.min_length,
                }
                if header.pattern is not None:
                    rules["pattern"] = f"^{header.pattern.pattern}$"
                parameters.append({"name": header.name, "in": "header", "required": True, "schema": rules})


ServicesDep = Annotated[Services, Depends(services)]
SignedDep = Annotated[SignedRequest, Depends(signed_request)]
