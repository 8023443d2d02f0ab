"""POST /api/v1/reports: a full compliance report, stored once per report id."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Response

from contract.wire import API_PREFIX
from server.api.bodies import documented
from server.api.schemas import ReportIn, ReportOut
from server.api.signed import REFUSALS, SignedAnswer, signed_answer
from server.auth import SignedRequest
from server.deps import Services, ServicesDep, SignedDep
from server.fleet.ingest import store_report

PATH = f"{API_PREFIX}/reports"
router = APIRouter(prefix=API_PREFIX, tags=["agent"], responses=REFUSALS)


async def respond(services: Services, signed: SignedRequest) -> SignedAnswer:
    """The report's answer; served by `server.api.signed_posts` ahead of FastAPI's router."""
    clock_ahead = timedelta(seconds=services.settings.max_clock_skew_seconds)
    return await signed_answer(
        services,
        signed,
        bytes,  # read in `store_report`, its software list compared as bytes first (`fleet.report_body`)
        lambda connection, device, body: store_report(
            connection, device, body, clock_ahead, services.requirements
        ),
    )


@router.post("/reports", response_model=ReportOut, openapi_extra=documented(ReportIn))
async def report(signed: SignedDep, services: ServicesDep) -> Response:
    """What the schema describes; requests are answered by `respond` through `signed_posts`."""
    return (await respond(services, signed)).response()
