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

from contract.lost import KINDS
from server.console import audit_log, fleet_views
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


def _acting_on_device(request: Request, signed: SignedIn, device_id: str, csrf_token: str) -> str:
    """The device's id if the person may act on it: CSRF first, then read-only roles (403), then
    another school's device answers 404 like one that does not exist."""
    check_form(request, signed.csrf_token, csrf_token)
    if not signed.person.acts_on_devices:
        raise Refusal(403, "Read-only", "A viewer reads the console; a technician or administrator acts.")
    with _reading(_console(request).engine) as connection:
        found = fleet_views.device_detail(connection, signed.person.scope, device_id[:64])
    if found is None:
        raise Refusal(404, "No such device", "There is no device with that id among your schools.")
    return str(found.row.id)


def _by(request: Request, signed: SignedIn) -> tuple[str, str, str | None]:
    email = signed.person.email
    return email, audit_log.actor_for(email), address_of(request)


@router.post("/devices/{device_id}/mark-lost")
def mark_lost(
    request: Request,
    signed: SignedInDep,
    device_id: str,
    kind: Annotated[str, Form(max_length=20)] = "",
    notice: Annotated[str, Form(max_length=2000)] = "",
    quiet: Annotated[str, Form(max_length=5)] = "",
    lock: Annotated[str, Form(max_length=5)] = "",
    drill: Annotated[str, Form(max_length=5)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """IT marks a laptop lost or stolen from its page, as `devices mark-lost` does (the same code)."""
    found = _acting_on_device(request, signed, device_id, csrf_token)
    if kind not in KINDS:
        raise Refusal(400, "Not marked", "Say whether the laptop is lost or stolen.")
    try:
        cases.mark_lost(
            _console(request).engine,
            found,
            kind,
            request.app.state.services.settings.config,
            notice=None if quiet else (notice.strip() or None),
            quiet=bool(quiet),
            lock=bool(lock),
            drill=bool(drill),
            by=_by(request, signed),
        )
    except CommandError as exc:
        raise Refusal(409, "Not marked", str(exc)) from None
    return RedirectResponse(f"/devices/{found}?marked=1", status_code=303)


@router.post("/devices/{device_id}/asset-tag")
def set_asset_tag(
    request: Request,
    signed: SignedInDep,
    device_id: str,
    asset_tag: Annotated[str, Form(max_length=200)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """The district's own label for the laptop, as `devices set-asset-tag` sets it (the same code)."""
    found = _acting_on_device(request, signed, device_id, csrf_token)
    try:
        cases.set_asset_tag(_console(request).engine, found, asset_tag, by=_by(request, signed))
    except CommandError as exc:
        raise Refusal(400, "Asset tag not set", str(exc)) from None
    return RedirectResponse(f"/devices/{found}?tagged=1", status_code=303)


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
