"""The console's lost-laptop pages: the lost devices, one case (timeline, reports, evidence, "mark
recovered"), and the printable report for the police and the insurer, as HTML and as PDF.

Every page reads through the person's scope (another school's case answers 404 like one that does
not exist); marking recovered is for administrators and the school's technicians, CSRF-checked
and audited like the console's other actions. Registered by server/app.py.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from server.console import audit_log
from server.console.lost_report_pdf import case_pdf
from server.console.pages import (
    Refusal,
    SignedIn,
    SignedInDep,
    _console,
    _page,
    _person_context,
    _reading,
    address_of,
    check_form,
)
from server.db.tables import DEVICES
from server.errors import CommandError
from server.lost import cases, listing

router = APIRouter(include_in_schema=False)


def _case(request: Request, signed: SignedIn, case_id: int) -> listing.CaseRow:
    with _reading(_console(request).engine) as connection:
        try:
            (row,) = listing.case_rows(
                connection, case_id=case_id, schools=signed.person.scope.where(DEVICES.c.group_name)
            )
        except CommandError:
            raise Refusal(
                404, "No such case", "There is no lost case with that number among your schools."
            ) from None
    return row


@router.get("/lost", response_class=HTMLResponse)
def lost_devices(
    request: Request, signed: SignedInDep, everything: Annotated[int, Query(alias="all", ge=0, le=1)] = 0
) -> HTMLResponse:
    with _reading(_console(request).engine) as connection:
        rows = listing.case_rows(
            connection, everything=bool(everything), schools=signed.person.scope.where(DEVICES.c.group_name)
        )
    context = _person_context(signed, "Lost devices") | {"rows": rows, "everything": bool(everything)}
    return _page(request, "lost.html", context)


@router.get("/lost/{case_id}", response_class=HTMLResponse)
def lost_case(request: Request, signed: SignedInDep, case_id: int, done: int = 0) -> HTMLResponse:
    row = _case(request, signed, case_id)
    context = _person_context(signed, f"Lost case {case_id}") | {"case": row, "done": done}
    return _page(request, "lost_case.html", context)


@router.get("/lost/{case_id}/report", response_class=HTMLResponse)
def lost_report(request: Request, signed: SignedInDep, case_id: int) -> HTMLResponse:
    row = _case(request, signed, case_id)
    context = _person_context(signed, f"Report: lost case {case_id}") | {"case": row}
    return _page(request, "lost_report.html", context)


@router.get("/lost/{case_id}/report.pdf")
def lost_report_pdf(request: Request, signed: SignedInDep, case_id: int) -> Response:
    row = _case(request, signed, case_id)
    return Response(
        case_pdf(row),
        media_type="application/pdf",
        headers={
            "content-disposition": f'attachment; filename="homeroom-lost-case-{case_id}.pdf"',
            "cache-control": "no-store",
        },
    )


@router.post("/lost/{case_id}/recovered")
def mark_recovered(
    request: Request,
    signed: SignedInDep,
    case_id: int,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    note: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    check_form(request, signed.csrf_token, csrf_token)
    if not signed.person.acts_on_devices:
        raise Refusal(403, "Read-only", "A viewer reads the console; a technician or administrator acts.")
    _case(request, signed, case_id)  # 404 for another school's case
    config = request.app.state.services.settings.config
    email = signed.person.email
    try:
        cases.change_status(
            _console(request).engine,
            case_id,
            "recovered",
            config,
            note=note,
            by=(email, audit_log.actor_for(email), address_of(request)),
        )
    except CommandError as exc:
        raise Refusal(409, "Not changed", str(exc)) from None
    return RedirectResponse(f"/lost/{case_id}?done=1", status_code=303)
