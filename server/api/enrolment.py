"""POST /api/v1/enrol: a new device key, with an enrolment token; the only unsigned agent endpoint.

200: enrolled (a new record, or a known laptop's record re-keyed under the rule in
`server.fleet.rekey`). 202: the identity names a record the claim may not take over now; the
claim waits (for the old key to fall silent, or for IT) and the answer says which and why.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from contract.wire import API_PREFIX
from server.api.bodies import documented, parse
from server.api.schemas import ClaimWaitingOut, EnrolIn, EnrolOut
from server.api.signed import REFUSALS
from server.auth import token_hash
from server.deps import Services, ServicesDep
from server.fleet.claims import ClaimWaiting, enrol, now_utc
from server.fleet.rekey import RekeyRule
from server.settings import Settings

router = APIRouter(prefix=API_PREFIX, tags=["agent"], responses=REFUSALS)


def rekey_rule(settings: Settings) -> RekeyRule:
    return RekeyRule(
        quiet=timedelta(minutes=settings.rekey_quiet_minutes),
        keep=timedelta(days=settings.previous_key_keep_days),
    )


@router.post(
    "/enrol",
    response_model=EnrolOut,
    responses={202: {"model": ClaimWaitingOut}},
    openapi_extra=documented(EnrolIn),
)
async def enrol_device(request: Request, services: ServicesDep) -> EnrolOut | JSONResponse:
    raw = await request.body()
    return await services.in_database_thread(_enrol, services, raw)


def _enrol(services: Services, raw: bytes) -> EnrolOut | JSONResponse:
    """Blocking (the database): run in the thread pool, never on the event loop."""
    body = parse(EnrolIn, raw)
    with services.engine.begin() as connection:
        enrolled = enrol(connection, body, token_hash(body.token), rekey_rule(services.settings))
    services.authenticator.forget(enrolled.device_id)
    if isinstance(enrolled, ClaimWaiting):
        waiting = ClaimWaitingOut(
            claim_id=enrolled.claim_id,
            device_id=enrolled.device_id,
            group=enrolled.group,
            waits_for=enrolled.waits_for,
            detail=(
                f"this laptop's record is already enrolled with another key; claim {enrolled.claim_id} waits "
                + (
                    "and is accepted automatically"
                    if enrolled.waits_for == "quiet"
                    else f"for IT (`homeroom-server devices approve-claim {enrolled.claim_id}`)"
                )
                + f": {enrolled.reason}"
            ),
            server_time=now_utc(),
            server_public_key=services.answer_signer.public_key(),
        )
        return JSONResponse(waiting.model_dump(mode="json"), status_code=202)
    return EnrolOut(
        device_id=enrolled.device_id,
        group=enrolled.group,
        replaced_key=enrolled.replaced_key,
        server_time=now_utc(),
        server_public_key=services.answer_signer.public_key(),
    )
