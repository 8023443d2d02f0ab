"""The Requirements page: the requirements document in force per school (or district-wide), its
settings in a form, a diff against the document in force before anything is saved, and every
version kept. Saving is the path `homeroom-server requirements publish` takes
(server.fleet.published.publish_requirements: the agents' own validation, versioned, audited);
laptops get the new document through the heartbeat's ETag."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from contract.errors import ConfigError
from contract.requirements import CHECK_IDS, Requirements, requirements_from_text
from server.console import audit_log, published_versions, requirements_form
from server.console.pages import (
    CHECK_TITLES,
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
from server.console.policies_page import known_schools, posted_text, publisher
from server.console.roles import DISTRICT_ADMIN
from server.fleet.published import load_requirements, publish_requirements

router = APIRouter(include_in_schema=False)
CONTENT_MAX = 200_000
Short = Annotated[str, Form(max_length=50)]
Lines = Annotated[str, Form(max_length=100_000)]


def _school(request: Request, signed: SignedIn, school: str) -> str:
    """ "" is the district-wide document; otherwise one of the reader's known schools."""
    school = _clean(school).strip()
    if not school:
        return ""
    if not signed.person.scope.allows(school):
        raise Refusal(403, "Not one of your schools", f"You are not assigned to {school!r}.")
    with _reading(_console(request).engine) as connection:
        if school not in known_schools(connection, signed.person.scope):
            raise Refusal(404, "Unknown school", f"There is no school {school!r}.")
    return school


def _in_force(request: Request, school: str) -> tuple[str, str, bool]:
    """(content, ETag, whether it is the school's own copy) of what applies to `school` now."""
    with _reading(_console(request).engine) as connection:
        found = load_requirements(connection, school)
        own = bool(school) and published_versions.has_own_requirements(connection, school)
    if found is None:
        return "", "", False
    return found.content, found.etag, own


def _requirements_page(
    request: Request, signed: SignedIn, school: str, status: int = 200, **shown: Any
) -> HTMLResponse:
    content, etag, own = _in_force(request, school)
    try:
        values = requirements_form.form_values(content, Requirements()) if content else {}
    except ConfigError:
        values = {}
    with _reading(_console(request).engine) as connection:
        versions = published_versions.requirements_versions(connection, signed.person.scope, school)
        schools = known_schools(connection, signed.person.scope)
    context = _person_context(signed, "Requirements") | {
        "school": school,
        "schools": schools,
        "content": content,
        "etag": etag,
        "own": own,
        "values": values,
        "fields": requirements_form.FIELDS,
        "check_ids": CHECK_IDS,
        "check_titles": CHECK_TITLES,
        "versions": versions,
        "publishes": signed.person.role == DISTRICT_ADMIN,
        "message": "",
        "failed": False,
        "published": "",
    }
    return _page(request, "requirements.html", context | shown, status)


@router.get("/requirements", response_class=HTMLResponse)
def requirements(
    request: Request,
    signed: SignedInDep,
    school: Annotated[str, Query(max_length=100)] = "",
    published: Annotated[str, Query(max_length=64)] = "",
) -> HTMLResponse:
    return _requirements_page(request, signed, _school(request, signed, school), published=_clean(published))


@router.post("/requirements/review", response_class=HTMLResponse)
def review(
    request: Request,
    signed: SignedInDep,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    school: Annotated[str, Form(max_length=100)] = "",
    enabled: Annotated[list[str] | None, Form()] = None,
    timeout_seconds: Short = "",
    max_idle_minutes: Short = "",
    max_signature_age_days: Short = "",
    max_xprotect_age_days: Short = "",
    mode: Short = "",
    baseline: Short = "",
    approved: Lines = "",
    blocked: Lines = "",
    renew_on: Short = "",
    renew_after_days: Short = "",
    ask_again_after_hours: Short = "",
) -> HTMLResponse:
    """Builds the document the form describes, validates it and shows the diff: nothing is saved."""
    check_form(request, signed.csrf_token, csrf_token)
    publisher(signed)
    school = _school(request, signed, school)
    posted: dict[str, Any] = {
        "enabled": [_clean(item)[:50] for item in (enabled or [])][:20],
        "timeout_seconds": timeout_seconds,
        "max_idle_minutes": max_idle_minutes,
        "max_signature_age_days": max_signature_age_days,
        "max_xprotect_age_days": max_xprotect_age_days,
        "mode": mode,
        "baseline": baseline,
        "approved": posted_text(_clean(approved)),
        "blocked": posted_text(_clean(blocked)),
        "renew_on": renew_on,
        "renew_after_days": renew_after_days,
        "ask_again_after_hours": ask_again_after_hours,
    }
    current, etag, _own = _in_force(request, school)
    try:
        proposed = requirements_form.edited_text(current, posted)
        requirements_from_text("the requirements form", proposed)
    except ConfigError as exc:
        return _requirements_page(
            request, signed, school, 400, message=f"Not saved: {_plain(exc)}", failed=True, values=posted
        )
    if proposed == current:
        return _requirements_page(request, signed, school, message="Nothing changed: nothing to save.")
    context = _person_context(signed, "Requirements: review the change") | {
        "school": school,
        "diff": requirements_form.diff(current, proposed),
        "proposed": proposed,
        "base_etag": etag,
    }
    return _page(request, "requirements_review.html", context)


def _plain(error: ConfigError) -> str:
    """The validation's own words, without the line number of a document the reader did not type."""
    return f"{error.message}. Fix: {error.fix}"


@router.post("/requirements/publish")
def publish(
    request: Request,
    signed: SignedInDep,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    school: Annotated[str, Form(max_length=100)] = "",
    content: Annotated[str, Form(max_length=CONTENT_MAX)] = "",
    base_etag: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    check_form(request, signed.csrf_token, csrf_token)
    publisher(signed)
    school = _school(request, signed, school)
    content = posted_text(content)
    engine = _console(request).engine
    actor, etag = audit_log.actor_for(signed.person.email), ""
    try:
        with engine.begin() as connection:
            now = load_requirements(connection, school)
            stale = (now.etag if now else "") != base_etag
            if not stale:
                etag = publish_requirements(
                    connection, "the requirements form", content, school, actor, address_of(request)
                )
    except ConfigError as exc:
        return _requirements_page(
            request, signed, school, 400, message=f"Not saved: {_plain(exc)}", failed=True
        )
    if stale:
        return _requirements_page(
            request,
            signed,
            school,
            409,
            message="Not saved: the requirements changed since you reviewed them. Review the change again.",
            failed=True,
        )
    return RedirectResponse(
        "/requirements?" + urlencode({"school": school, "published": etag}), status_code=303
    )
