"""POST /api/v1/signoffs: one user's decision on a policy version, stored once per record id."""

from __future__ import annotations

from fastapi import APIRouter, Response

from contract.wire import API_PREFIX
from server.api.bodies import documented
from server.api.schemas import SignOffIn, SignOffOut
from server.api.signed import REFUSALS, answer
from server.deps import ServicesDep, SignedDep
from server.fleet.signoffs import store_signoff

router = APIRouter(prefix=API_PREFIX, tags=["agent"], responses=REFUSALS)


@router.post("/signoffs", response_model=SignOffOut, openapi_extra=documented(SignOffIn))
async def signoff(signed: SignedDep, services: ServicesDep) -> Response:
    return await answer(services, signed, SignOffIn, store_signoff)
