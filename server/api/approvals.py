"""POST /api/v1/approvals: a user's request that IT approve an app, stored once per record id."""

from __future__ import annotations

from fastapi import APIRouter, Response

from contract.wire import API_PREFIX
from server.api.bodies import documented
from server.api.schemas import ApprovalRequestIn, ApprovalRequestOut
from server.api.signed import REFUSALS, answer
from server.deps import ServicesDep, SignedDep
from server.fleet.approvals import store_request

router = APIRouter(prefix=API_PREFIX, tags=["agent"], responses=REFUSALS)


@router.post("/approvals", response_model=ApprovalRequestOut, openapi_extra=documented(ApprovalRequestIn))
async def approval_request(signed: SignedDep, services: ServicesDep) -> Response:
    return await answer(services, signed, ApprovalRequestIn, store_request)
