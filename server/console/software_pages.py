"""The console's Software page: the district's apps with how many laptops have each (the list behind
`homeroom-server software`), and users' requests to approve an app, approved or declined here by the
same code as `homeroom-server approvals approve | decline` (server.fleet.approvals), audited with the
person and their address.

Scoped like every fleet page: a technician or school viewer reads one of their own schools at a time
(the app list is counted over that school's laptops and judged by its requirements) and only the
requests from their schools' laptops; deciding one outside them answers as if it did not exist.
Viewers read; technicians (for their schools) and district administrators decide.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse

from server.console import audit_log, fleet_views
from server.console.pages import (
    Refusal,
    SignedIn,
    SignedInDep,
    _clean,
    _console,
    _page,
    _person_context,
    _reading,
    address_of,
    check_form,
)
from server.errors import CommandError
from server.fleet.approvals import approval_rows, approve_request, decline_request
from server.fleet.software_list import AppList, app_list

router = APIRouter(include_in_schema=False)


def _school_for(signed: SignedIn, school: str, schools: list[str]) -> str | None:
    """The school whose apps are listed: None is the whole district (district-wide readers only)."""
    scope = signed.person.scope
    school = _clean(school)
    if school:
        if not scope.allows(school):
            raise Refusal(403, "Not one of your schools", f"You are not assigned to {school!r}.")
        return school
    if scope.district_wide:
        return None
    return schools[0] if schools else ""


def _software_page(
    request: Request, signed: SignedIn, school: str, unapproved: bool, status: int = 200, **shown: Any
) -> HTMLResponse:
    scope = signed.person.scope
    with _reading(_console(request).engine) as connection:
        schools = fleet_views.schools(connection, scope)
        chosen = _school_for(signed, school, schools)
        problem = ""
        listed = AppList([], "")
        if chosen == "":
            problem = "You are not assigned to any school yet: a district administrator assigns them."
        else:
            try:
                listed = app_list(connection, chosen, unapproved)
            except CommandError:
                problem = f"No laptop in {chosen} has reported its software yet."
        requests = [row for row in approval_rows(connection, chosen or None) if scope.allows(row.group)]
    context = _person_context(signed, "Software") | {
        "apps": listed,
        "problem": problem,
        "schools": schools,
        "school": chosen or "",
        "unapproved": unapproved,
        "requests": sorted(requests, key=lambda row: (row.state != "waiting", -row.id)),
        "message": "",
        "failed": False,
    }
    return _page(request, "software.html", context | shown, status)


@router.get("/software", response_class=HTMLResponse)
def software(
    request: Request,
    signed: SignedInDep,
    school: Annotated[str, Query(max_length=100)] = "",
    unapproved: Annotated[str, Query(max_length=5)] = "",
) -> HTMLResponse:
    return _software_page(request, signed, school, bool(unapproved))


def _lines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _decider(request: Request, signed: SignedIn, csrf_token: str) -> None:
    check_form(request, signed.csrf_token, csrf_token)
    if not signed.person.acts_on_devices:
        raise Refusal(403, "Read-only", "A viewer reads the console; a technician or administrator acts.")


def _decided(request: Request, signed: SignedIn, school: str, decide: Any) -> HTMLResponse:
    school = school if signed.person.scope.allows(_clean(school)) else ""
    try:
        said = decide(
            actor=audit_log.actor_for(signed.person.email),
            address=address_of(request),
            allowed_group=signed.person.scope.allows,
        )
    except CommandError as exc:
        missing = str(exc).startswith("no approval request")
        return _software_page(
            request, signed, school, False, 404 if missing else 400, message=f"Not done: {exc}.", failed=True
        )
    return _software_page(request, signed, school, False, message=said)


@router.post("/software/approvals/{request_id}/approve", response_class=HTMLResponse)
def approve(
    request: Request,
    signed: SignedInDep,
    request_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    school: Annotated[str, Form(max_length=100)] = "",
) -> HTMLResponse:
    _decider(request, signed, csrf_token)
    engine = _console(request).engine
    return _decided(
        request,
        signed,
        school,
        lambda **who: approve_request(engine, request_id, **who),
    )


@router.post("/software/approvals/{request_id}/decline", response_class=HTMLResponse)
def decline(
    request: Request,
    signed: SignedInDep,
    request_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    message: Annotated[str, Form(max_length=10_000)] = "",
    school: Annotated[str, Form(max_length=100)] = "",
) -> HTMLResponse:
    _decider(request, signed, csrf_token)
    engine = _console(request).engine
    return _decided(
        request,
        signed,
        school,
        # A browser sends a textarea's line breaks as CR LF; the message keeps them as LF.
        lambda **who: decline_request(engine, request_id, _lines(_clean(message)), **who),
    )
