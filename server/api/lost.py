"""POST /api/v1/lost-reports (a user's report) and /api/v1/lost-evidence (a lost laptop's evidence)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from contract.wire import API_PREFIX
from server.api.bodies import documented
from server.api.schemas import LostEvidenceIn, LostEvidenceOut, LostReportIn, LostReportOut
from server.api.signed import REFUSALS, answer
from server.console.pages import address_of
from server.deps import ServicesDep, SignedDep
from server.lost.evidence import store_evidence
from server.lost.reports import store_lost_report

router = APIRouter(prefix=API_PREFIX, tags=["agent"], responses=REFUSALS)


@router.post("/lost-reports", response_model=LostReportOut, openapi_extra=documented(LostReportIn))
async def lost_report(signed: SignedDep, services: ServicesDep) -> Response:
    config = services.settings.config
    return await answer(
        services,
        signed,
        LostReportIn,
        lambda connection, device, body: store_lost_report(connection, device, body, config),
    )


@router.post("/lost-evidence", response_model=LostEvidenceOut, openapi_extra=documented(LostEvidenceIn))
async def lost_evidence(request: Request, signed: SignedDep, services: ServicesDep) -> Response:
    # The address the request came from, as the console reads it (uvicorn applies X-Forwarded-For
    # only from a trusted proxy: nginx on loopback), never a value the laptop wrote in the body.
    address = address_of(request)
    return await answer(
        services,
        signed,
        LostEvidenceIn,
        lambda connection, device, body: store_evidence(connection, device, body, address),
    )
