"""The admin API (`/api/v1/admin/…`): the console's data as JSON for districts that feed their own
dashboards, read through the very queries behind the pages (`fleet_views`, `audit_log`, the
sign-off report) and narrowed by the same `Scope`.

A request carries a console user's API token (`Authorization: Bearer hrk_…`, `api_tokens`) and acts
with that user's role and schools as they are now. A session cookie opens nothing here: the API
takes no form and no CSRF token, so a browser's cookies must not be able to drive it. Another
school's device answers 404, exactly as one that does not exist.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timezone
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlalchemy import Connection, Engine, and_, true
from sqlalchemy.orm import Session

from server.console import accounts, api_tokens, audit_log, fleet_views, signoff_report
from server.console.roles import Person
from server.fleet.counts import fold_past_days
from server.fleet.signoff_state import judgement_at, standings
from server.fleet.signoffs import states_with_status

PREFIX = "/api/v1/admin"
SIGNOFF_PAGE_SIZE = 500

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="api_token",
    bearerFormat="hrk_…",
    description=(
        "A console user's API token: made on the console's 'API tokens' page or by "
        "`homeroom-server users token create EMAIL`. It reads what its user reads."
    ),
)
router = APIRouter(prefix=PREFIX, tags=["admin"])


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.console.engine
    return engine


def _reading(engine: Engine) -> Connection:
    return engine.connect().execution_options(homeroom_read_only=True)


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _refused(status: int, detail: str) -> HTTPException:
    headers = {"www-authenticate": 'Bearer realm="homeroom"'} if status == 401 else None
    return HTTPException(status_code=status, detail=detail, headers=headers)


def caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Person:
    """The person the bearer token speaks for, or 401 (missing, unknown, revoked, user disabled)."""
    if credentials is None:
        raise _refused(401, "this API needs 'Authorization: Bearer <API token>'")
    now, engine = datetime.now(timezone.utc), _engine(request)
    with _reading(engine) as connection:
        found = api_tokens.find(connection, credentials.credentials, now)
        who = accounts.person(connection, found.admin_id) if found is not None else None
    if found is None or who is None:
        raise _refused(401, "this API token is not valid (unknown, revoked, or its user is disabled)")
    if found.needs_touch:
        with engine.begin() as connection:
            api_tokens.touch(connection, found.id, now)
    return who


Caller = Annotated[Person, Depends(caller)]


def _clean(text: str) -> str:
    """PostgreSQL refuses NUL in any string: a query parameter holding one must not become a 500."""
    return text.replace("\x00", "")


Search = Annotated[str, Query(max_length=200, description="hostname, serial or user contains")]
School = Annotated[str, Query(max_length=100, description="one school (device group)")]
OperatingSystem = Annotated[str, Query(max_length=20, description="linux, windows or macos")]
Audience = Annotated[str, Query(pattern="^(staff|student)?$", description="staff or student")]
PageNumber = Annotated[int, Query(ge=0, le=100_000, description="from 0")]


def _filters(
    person: Person, school: str, os: str, search: str = "", audience: str = ""
) -> fleet_views.Filters:
    school = _clean(school)
    if school and not person.scope.allows(school):
        raise _refused(403, f"you are not assigned to {school!r}")
    return fleet_views.Filters(school=school, os=_clean(os), search=_clean(search), audience=audience)


# ---- answers ----


class OverviewOut(BaseModel):
    total: int
    compliant: int
    compliant_share: float
    failing: dict[str, int] = Field(description="devices failing each requirement")
    not_seen: int = Field(description="devices not seen for more than not_seen_days (or never)")
    not_seen_days: int
    never_reported: int
    lost: int = Field(description="devices with an open lost or stolen case (drills not counted)")
    signoff_people: int = Field(description="people seen on these devices")
    signoff_signed: int = Field(description="of them, with an agreement to the policy in force")
    signoff_share: float


class DeviceOut(BaseModel):
    id: str
    hostname: str
    serial: str
    school: str
    os: str
    last_seen: str | None = Field(description="ISO 8601; null: never seen")
    overall: str
    checks: dict[str, str] = Field(description="each requirement's status: pass, fail, unknown, error")


class DeviceListOut(BaseModel):
    total: int
    page: int
    page_size: int
    devices: list[DeviceOut]


class DeviceDetailOut(DeviceOut):
    manufacturer: str
    model: str
    os_version: str
    enrolled_at: str
    results: list[dict[str, Any]] = Field(description="each requirement's latest result as reported")


class SignOffOut(BaseModel):
    group: str
    hostname: str
    serial: str | None
    device_id: str
    user: str
    status: str = Field(description="signed, must sign again, declined or not signed")
    full_name: str | None
    policy_id: str | None
    policy_version: str | None
    decided_at: str | None
    note: str
    audience: str = Field(description="the laptop's: staff or student")
    must_sign: str = Field(
        description="why they must sign: never signed, the version changed, past renewal, "
        "no policy published; empty when they need not"
    )


class SignOffListOut(BaseModel):
    total: int
    page: int
    page_size: int
    rows: list[SignOffOut]


class AuditEntryOut(BaseModel):
    id: int
    at: str
    actor: str
    action: str
    address: str
    detail: str = Field(description="the entry's details as JSON text")


class AuditListOut(BaseModel):
    total: int
    page: int
    page_size: int
    entries: list[AuditEntryOut]


class CommandOut(BaseModel):
    device: str
    command: str
    queued: bool


def _device(row: fleet_views.DeviceRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "hostname": row.hostname,
        "serial": row.serial,
        "school": row.school,
        "os": row.os,
        "last_seen": None if row.last_seen == "never" else row.last_seen,
        "overall": row.overall,
        "checks": row.checks,
    }


# ---- endpoints ----

Responses = dict[int | str, dict[str, Any]]
UNAUTHORISED: Responses = {
    401: {"description": "no token, or one that is unknown, revoked or of a disabled user"}
}
NOT_YOURS: Responses = {
    403: {"description": "a school you are not assigned to, or an action your role may not take"}
}
NOT_FOUND: Responses = {404: {"description": "no such device among your schools"}}


@router.get("/overview", response_model=OverviewOut, responses=UNAUTHORISED | NOT_YOURS)
def overview(
    request: Request,
    person: Caller,
    school: School = "",
    os: OperatingSystem = "",
    audience: Audience = "",
    not_seen_days: Annotated[int, Query(ge=1, le=365)] = 7,
) -> dict[str, Any]:
    """The Overview page's counts, exact (kept in the same transaction as every report), for the
    schools the token's user reads."""
    filters = _filters(person, school, os, audience=audience)
    now = datetime.now(timezone.utc)
    fold_past_days(_engine(request), now.date())
    with _reading(_engine(request)) as connection, Session(bind=connection) as session:
        counts = fleet_views.overview(session, person.scope, filters, not_seen_days, now)
    return {
        "total": counts.total,
        "compliant": counts.compliant,
        "compliant_share": counts.compliant_share,
        "failing": counts.failing,
        "not_seen": counts.not_seen,
        "not_seen_days": not_seen_days,
        "never_reported": counts.never_reported,
        "lost": counts.lost,
        "signoff_people": counts.signoff_people,
        "signoff_signed": counts.signoff_signed,
        "signoff_share": counts.signoff_share,
    }


@router.get("/devices", response_model=DeviceListOut, responses=UNAUTHORISED | NOT_YOURS)
def devices(
    request: Request,
    person: Caller,
    q: Search = "",
    school: School = "",
    os: OperatingSystem = "",
    audience: Audience = "",
    page: PageNumber = 0,
) -> dict[str, Any]:
    """The Devices page: the same search, filters, order (hostname) and pages of 50."""
    filters = _filters(person, school, os, q, audience)
    with _reading(_engine(request)) as connection:
        rows, total = fleet_views.device_page(connection, person.scope, filters, page)
    return {
        "total": total,
        "page": page,
        "page_size": fleet_views.PAGE_SIZE,
        "devices": [_device(row) for row in rows],
    }


@router.get(
    "/devices.csv",
    response_class=StreamingResponse,
    responses=UNAUTHORISED | NOT_YOURS | {200: {"content": {"text/csv": {}}, "description": "CSV, streamed"}},
)
def devices_csv(
    request: Request,
    person: Caller,
    q: Search = "",
    school: School = "",
    os: OperatingSystem = "",
    audience: Audience = "",
) -> StreamingResponse:
    """The device list as CSV: every matching device, streamed, cells neutralised for spreadsheets.
    Audited (`devices.exported`)."""
    filters = _filters(person, school, os, q, audience)
    engine = _engine(request)
    with engine.begin() as connection:
        audit_log.record(
            connection,
            audit_log.actor_for(person.email),
            "devices.exported",
            {"search": filters.search, "school": school, "os": filters.os, "via": "api"},
            _address(request),
        )
    return StreamingResponse(
        fleet_views.devices_csv(partial(_reading, engine), person.scope, filters),
        media_type="text/csv; charset=utf-8",
        headers={
            "content-disposition": 'attachment; filename="homeroom-devices.csv"',
            "cache-control": "no-store",
        },
    )


DeviceId = Annotated[str, Path(max_length=64, pattern=r"^[\w-]+$")]


@router.get("/devices/{device_id}", response_model=DeviceDetailOut, responses=UNAUTHORISED | NOT_FOUND)
def device(request: Request, person: Caller, device_id: DeviceId) -> dict[str, Any]:
    """One device: identity, each requirement's latest result."""
    with _reading(_engine(request)) as connection:
        found = fleet_views.device_detail(connection, person.scope, device_id)
    if found is None:
        raise _refused(404, "no device with that id among your schools")
    return _device(found.row) | {
        "manufacturer": found.manufacturer,
        "model": found.model,
        "os_version": found.os_version,
        "enrolled_at": found.enrolled_at,
        "results": found.results,
    }


@router.post(
    "/devices/{device_id}/check-now",
    response_model=CommandOut,
    responses=UNAUTHORISED | NOT_YOURS | NOT_FOUND,
)
def check_now(request: Request, person: Caller, device_id: DeviceId) -> dict[str, Any]:
    """Ask the laptop to run its checks and report at its next heartbeat (as the device page's
    "Check now"). Administrators and the school's technicians; a viewer's token gets 403. Audited."""
    if not person.acts_on_devices:
        raise _refused(403, "a viewer reads; a technician or administrator acts")
    with _engine(request).begin() as connection:
        found = fleet_views.device_detail(connection, person.scope, device_id)
        if found is None:
            raise _refused(404, "no device with that id among your schools")
        fleet_views.ask_check_now(connection, found.row.id)
        audit_log.record(
            connection,
            audit_log.actor_for(person.email),
            "device.command",
            {"device": found.row.id, "command": "check_now", "via": "api"},
            _address(request),
        )
    return {"device": found.row.id, "command": "check_now", "queued": True}


SIGNOFF_STATUSES = "^(signed|must sign again|declined|not signed)?$"


@router.get("/signoffs", response_model=SignOffListOut, responses=UNAUTHORISED | NOT_YOURS)
def signoffs(
    request: Request,
    person: Caller,
    school: School = "",
    status: Annotated[str, Query(pattern=SIGNOFF_STATUSES, description="only rows in this state")] = "",
    page: PageNumber = 0,
) -> dict[str, Any]:
    """The sign-off report: per device and person seen on it, signed / must sign again / declined /
    not signed against the policy version in force, and why they must sign; 500 rows a page, in the
    report's order (school, hostname, user), with the total."""
    school = _clean(school)
    if school and not person.scope.allows(school):
        raise _refused(403, f"you are not assigned to {school!r}")
    with _reading(_engine(request)) as connection:
        judgement = judgement_at(connection, datetime.now(timezone.utc))

        def where(people: Any) -> Any:
            return and_(
                person.scope.where(people.c.group_name),
                people.c.group_name == school if school else true(),
                people.c.standing.in_(standings(states_with_status(status))) if status else true(),
            )

        people = signoff_report.people_of(judgement)
        total = signoff_report.count(connection, people, where(people))
        listed = signoff_report.people_of(judgement, in_order=True)
        shown = signoff_report.page(connection, judgement, listed, where(listed), page, SIGNOFF_PAGE_SIZE)
    return {
        "total": total,
        "page": page,
        "page_size": SIGNOFF_PAGE_SIZE,
        "rows": [asdict(row) for row in shown],
    }


@router.get("/audit", response_model=AuditListOut, responses=UNAUTHORISED | NOT_YOURS)
def audit(request: Request, person: Caller, q: Search = "", page: PageNumber = 0) -> dict[str, Any]:
    """The audit log, newest first, 100 a page: district administrators and district-wide viewers
    (it names every school's devices and people)."""
    if not person.reads_audit:
        raise _refused(403, "the audit log is read by district administrators and district-wide viewers")
    with _reading(_engine(request)) as connection:
        rows, total = audit_log.audit_page(connection, _clean(q), page)
    return {
        "total": total,
        "page": page,
        "page_size": audit_log.PAGE_SIZE,
        "entries": [asdict(r) for r in rows],
    }
