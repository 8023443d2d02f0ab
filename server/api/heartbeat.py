"""POST /api/v1/heartbeat: "still here", answered with new requirements, policies and commands."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Response

from contract.wire import API_PREFIX
from server.api.bodies import documented, parse
from server.api.schemas import HeartbeatIn, HeartbeatOut
from server.api.signed import REFUSALS, SignedAnswer, signed_answer
from server.auth import SignedRequest
from server.deps import Services, ServicesDep, SignedDep
from server.fleet.ingest import record_heartbeat

PATH = f"{API_PREFIX}/heartbeat"
router = APIRouter(prefix=API_PREFIX, tags=["agent"], responses=REFUSALS)


async def respond(services: Services, signed: SignedRequest) -> SignedAnswer:
    """The heartbeat's answer; served by `server.api.signed_posts` ahead of FastAPI's router."""
    return await signed_answer(
        services,
        signed,
        partial(parse, HeartbeatIn),
        lambda connection, device, body: record_heartbeat(
            connection,
            device,
            body,
            services.requirements,
            services.policies,
            services.settings.config.lost.interval_seconds,
        ),
    )


@router.post("/heartbeat", response_model=HeartbeatOut, openapi_extra=documented(HeartbeatIn))
async def heartbeat(signed: SignedDep, services: ServicesDep) -> Response:
    """What the schema describes; requests are answered by `respond` through `signed_posts`."""
    return (await respond(services, signed)).response()
