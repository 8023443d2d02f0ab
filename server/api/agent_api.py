"""The agent API, version 1: enrolment (token), then signed reports and heartbeats."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response
from pydantic import BaseModel
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from agent.protocol import API_PREFIX
from server.api.schemas import (
    EnrolIn,
    EnrolOut,
    ErrorOut,
    HeartbeatIn,
    HeartbeatOut,
    ReportIn,
    ReportOut,
    SignOffIn,
    SignOffOut,
)
from server.auth import DeviceAuthenticator, KnownDevice, SignedRequest
from server.fleet import (
    PoliciesCache,
    RequirementsCache,
    enrol,
    now_utc,
    record_heartbeat,
    store_report,
    store_signoff,
)

REFUSALS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut},
    401: {"model": ErrorOut},
    403: {"model": ErrorOut},
    409: {"model": ErrorOut},
    413: {"model": ErrorOut},
}


async def signed_request(
    request: Request,
    x_homeroom_device: Annotated[str, Header(max_length=64)],
    x_homeroom_timestamp: Annotated[str, Header(max_length=20)],
    x_homeroom_request_id: Annotated[str, Header(min_length=8, max_length=64, pattern=r"^[0-9a-fA-F-]+$")],
    x_homeroom_signature: Annotated[str, Header(max_length=200)],
) -> SignedRequest:
    """The four signature headers and the raw body, exactly as received (the body hash is signed)."""
    return SignedRequest(
        device_id=x_homeroom_device,
        timestamp=x_homeroom_timestamp,
        request_id=x_homeroom_request_id,
        signature=x_homeroom_signature,
        method=request.method,
        path=request.url.path,
        body=await request.body(),
    )


def build_router(
    engine: Engine,
    sessions: Callable[[], Session],
    authenticator: DeviceAuthenticator,
    requirements: RequirementsCache,
    policies: PoliciesCache,
) -> APIRouter:
    """Reports and heartbeats run their few short statements inline on the event loop.

    A thread hop per request costs more than the statements themselves, and
    one server process serves one request's transaction at a time anyway on
    SQLite; PostgreSQL deployments scale out with more worker processes.
    """
    router = APIRouter(prefix=API_PREFIX, tags=["agent"], responses=REFUSALS)

    @router.post("/enrol", response_model=EnrolOut)
    def enrol_device(body: EnrolIn) -> EnrolOut:
        with sessions() as session, session.begin():
            enrolled = enrol(session, body)
        authenticator.forget(enrolled.device_id)
        return EnrolOut(
            device_id=enrolled.device_id,
            group=enrolled.group,
            replaced_key=enrolled.replaced_key,
            server_time=now_utc(),
        )

    def answer(signed: SignedRequest, work: Callable[[Connection, KnownDevice], BaseModel]) -> Response:
        """One transaction: the request id is recorded together with the work, or neither is.
        The answer is serialised once here rather than validated again by FastAPI."""
        with engine.begin() as connection:
            device = authenticator.authenticate(connection, signed)
            result = work(connection, device)
        return Response(result.model_dump_json(), media_type="application/json")

    @router.post("/reports", response_model=ReportOut)
    async def report(body: ReportIn, signed: Annotated[SignedRequest, Depends(signed_request)]) -> Response:
        return answer(signed, lambda connection, device: store_report(connection, device, body))

    @router.post("/heartbeat", response_model=HeartbeatOut)
    async def heartbeat(
        body: HeartbeatIn, signed: Annotated[SignedRequest, Depends(signed_request)]
    ) -> Response:
        return answer(
            signed,
            lambda connection, device: record_heartbeat(connection, device, body, requirements, policies),
        )

    @router.post("/signoffs", response_model=SignOffOut)
    async def signoff(body: SignOffIn, signed: Annotated[SignedRequest, Depends(signed_request)]) -> Response:
        return answer(signed, lambda connection, device: store_signoff(connection, device, body))

    return router
