"""Named dependencies: what a request handler may ask for, built once by `create_app`.

Handlers receive the server's parts through these instead of importing globals,
so a test builds a whole app on its own temporary database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session

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


async def signed_request(
    request: Request,
    x_homeroom_device: Annotated[str, Header(max_length=64)],
    x_homeroom_timestamp: Annotated[str, Header(max_length=20)],
    x_homeroom_request_id: Annotated[str, Header(min_length=8, max_length=64, pattern=r"^[0-9a-fA-F-]+$")],
    x_homeroom_signature: Annotated[str, Header(max_length=200)],
) -> SignedRequest:
    """The four signature headers and the raw body, exactly as received (the body hash is signed).

    The body is not parsed here: `server.api.signed.answer` checks the signature first."""
    return SignedRequest(
        device_id=x_homeroom_device,
        timestamp=x_homeroom_timestamp,
        request_id=x_homeroom_request_id,
        signature=x_homeroom_signature,
        method=request.method,
        path=request.url.path,
        body=await request.body(),
    )


ServicesDep = Annotated[Services, Depends(services)]
SignedDep = Annotated[SignedRequest, Depends(signed_request)]
