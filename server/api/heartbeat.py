"""POST /api/v1/heartbeat: "still here", answered with new requirements, policies and commands."""

from __future__ import annotations

from fastapi import APIRouter, Response

from contract.wire import API_PREFIX
from server.api.bodies import documented
from server.api.schemas import HeartbeatIn, HeartbeatOut
from server.api.signed import REFUSALS, answer
from server.deps import ServicesDep, SignedDep
from server.fleet.ingest import record_heartbeat

router = APIRouter(prefix=API_PREFIX, tags=["agent"], responses=REFUSALS)


@router.post("/heartbeat", response_model=HeartbeatOut, openapi_extra=documented(HeartbeatIn))
async def heartbeat(signed: SignedDep, services: ServicesDep) -> Response:
    return await answer(
        services,
        signed,
        HeartbeatIn,
        lambda connection, device, body: record_heartbeat(
            connection,
            device,
            body,
            services.requirements,
            services.policies,
            services.settings.config.lost.interval_seconds,
        ),
    )
