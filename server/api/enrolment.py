"""POST /api/v1/enrol: a new device key, with an enrolment token; the only unsigned agent endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from contract.wire import API_PREFIX
from server.api.bodies import documented, parse
from server.api.schemas import EnrolIn, EnrolOut
from server.api.signed import REFUSALS
from server.deps import Services, ServicesDep
from server.fleet.ingest import enrol, now_utc

router = APIRouter(prefix=API_PREFIX, tags=["agent"], responses=REFUSALS)


@router.post("/enrol", response_model=EnrolOut, openapi_extra=documented(EnrolIn))
async def enrol_device(request: Request, services: ServicesDep) -> EnrolOut:
    raw = await request.body()
    return await run_in_threadpool(_enrol, services, raw)


def _enrol(services: Services, raw: bytes) -> EnrolOut:
    """Blocking (the database): run in the thread pool, never on the event loop."""
    body = parse(EnrolIn, raw)
    with services.sessions() as session, session.begin():
        enrolled = enrol(session, body)
    services.authenticator.forget(enrolled.device_id)
    return EnrolOut(
        device_id=enrolled.device_id,
        group=enrolled.group,
        replaced_key=enrolled.replaced_key,
        server_time=now_utc(),
        server_public_key=services.answer_signer.public_key(),
    )
