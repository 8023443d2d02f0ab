"""POST /api/v1/reports: a full compliance report, stored once per report id."""

from __future__ import annotations

from fastapi import APIRouter, Response

from contract.wire import API_PREFIX
from server.api.schemas import ReportIn, ReportOut
from server.api.signed import REFUSALS, answer
from server.deps import ServicesDep, SignedDep
from server.fleet.ingest import store_report

router = APIRouter(prefix=API_PREFIX, tags=["agent"], responses=REFUSALS)


@router.post("/reports", response_model=ReportOut)
async def report(body: ReportIn, signed: SignedDep, services: ServicesDep) -> Response:
    return answer(
        services,
        signed,
        lambda connection, device: store_report(connection, device, body, services.requirements),
    )
