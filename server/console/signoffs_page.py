"""The Sign-offs page: coverage per school and audience, who signed which version, who declined,
who must sign and why; filters; the CSV export (audited). Read by every role, through its scope.
Counted, filtered and paged by the database (`signoff_report`); the CSV is streamed in batches."""

from __future__ import annotations

from functools import partial
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from server.console import audit_log, fleet_views, signoff_report, signoff_views
from server.console.pages import (
    AUDIENCES,
    Refusal,
    SignedIn,
    SignedInDep,
    _clean,
    _console,
    _csv,
    _now,
    _page,
    _person_context,
    _reading,
    address_of,
)
from server.db.tables import DEVICES
from server.fleet.signoff_state import judgement_at

router = APIRouter(include_in_schema=False)


def _filters(
    signed: SignedIn, school: str, audience: str, state: str, q: str
) -> signoff_views.SignOffFilters:
    school = _clean(school)
    if school and not signed.person.scope.allows(school):
        raise Refusal(403, "Not one of your schools", f"You are not assigned to {school!r}.")
    return signoff_views.SignOffFilters(
        school=school,
        audience=audience if audience in AUDIENCES else "",
        state=state if state in signoff_views.STATES else "",
        search=_clean(q).strip(),
    )


Text = Annotated[str, Query(max_length=100)]


@router.get("/signoffs", response_class=HTMLResponse)
def signoffs(
    request: Request,
    signed: SignedInDep,
    school: Text = "",
    audience: Text = "",
    state: Text = "",
    q: Annotated[str, Query(max_length=200)] = "",
    page: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> HTMLResponse:
    filters = _filters(signed, school, audience, state, q)
    scope = signed.person.scope
    size = signoff_views.PAGE_SIZE
    with _reading(_console(request).engine) as connection:
        judgement = judgement_at(connection, _now())
        people = signoff_report.people_of(judgement)
        # Coverage follows school and audience only: the state and search narrow the list below it.
        covered = signoff_views.SignOffFilters(school=filters.school, audience=filters.audience)
        lines = signoff_report.coverage(connection, people, covered.where(people, scope))
        total = (
            signoff_report.count(connection, people, filters.where(people, scope))
            if filters.search
            else signoff_views.shown(lines, filters.state)
        )
        listed = signoff_report.people_of(judgement, in_order=True)
        rows = signoff_report.page(connection, judgement, listed, filters.where(listed, scope), page, size)
        schools = fleet_views.schools(connection, scope)
    query = urlencode(
        {"school": filters.school, "audience": filters.audience, "state": filters.state, "q": filters.search}
    )
    context = _person_context(signed, "Sign-offs") | {
        "filters": filters,
        "schools": schools,
        "audiences": AUDIENCES,
        "states": signoff_views.STATES,
        "coverage": lines,
        "whole": signoff_views.total(lines),
        "rows": [(row, signoff_views.state_of(row)) for row in rows],
        "total": total,
        "page": page,
        "page_size": size,
        "query": query,
    }
    return _page(request, "signoffs.html", context)


@router.get("/signoffs.csv")
def signoffs_csv(
    request: Request,
    signed: SignedInDep,
    school: Text = "",
    audience: Text = "",
    state: Text = "",
    q: Annotated[str, Query(max_length=200)] = "",
) -> StreamingResponse:
    filters = _filters(signed, school, audience, state, q)
    scope = signed.person.scope
    with _console(request).engine.begin() as connection:
        audit_log.record(
            connection,
            audit_log.actor_for(signed.person.email),
            "signoffs.exported",
            {
                "school": filters.school,
                "audience": filters.audience,
                "state": filters.state,
                "search": filters.search,
            },
            address_of(request),
        )
    engine = _console(request).engine
    with _reading(engine) as connection:
        judgement = judgement_at(connection, _now())
    on_postgresql = engine.dialect.name == "postgresql"
    people = signoff_report.people_of(judgement, in_order=True)
    batches = signoff_report.batches(
        partial(_reading, engine),
        judgement,
        people,
        filters.where(people, scope),
        filters.devices_where(DEVICES.c, scope),
        streamed=on_postgresql,
    )
    return _csv(signoff_views.as_csv(row for batch in batches for row in batch), "homeroom-signoffs.csv")
