"""The Policies page: the Acceptable Use Policies in force per school and audience, every version
kept, each previewed as the laptop's sign-off dialog shows it with its reading grade; district
administrators publish (preview first, then publish) through the path `homeroom-server policy
publish` takes (server.fleet.published.publish_policy: validated, versioned, audited)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Connection, select

from contract.policy import PolicyError
from server.console import audit_log, fleet_views, policy_preview, published_versions
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
from server.console.roles import DISTRICT_ADMIN, Scope
from server.db.tables import ENROLMENT_TOKENS
from server.fleet.published import check_policy, publish_policy

router = APIRouter(include_in_schema=False)
CONTENT_MAX = 200_000
SOURCE = "the policy text"  # what errors name instead of a file


def publisher(signed: SignedIn) -> None:
    """Policies and requirements apply to whole schools: district administrators publish them."""
    if signed.person.role != DISTRICT_ADMIN:
        raise Refusal(
            403, "Read-only", "District administrators publish policies and requirements; you can read them."
        )


def known_schools(connection: Connection, scope: Scope) -> list[str]:
    """Schools with devices, enrolment tokens or documents of their own: where publishing means something."""
    tokens = connection.execute(
        select(ENROLMENT_TOKENS.c.group_name).where(scope.where(ENROLMENT_TOKENS.c.group_name)).distinct()
    ).scalars()
    found = set(fleet_views.schools(connection, scope)) | set(tokens)
    found |= set(published_versions.schools_with_policies(connection, scope))
    found |= set(published_versions.schools_with_own_requirements(connection, scope))
    return sorted(found)


def posted_text(content: str) -> str:
    """A browser sends a textarea's lines with CRLF: the version is the hash of the text as written."""
    return content.replace("\r\n", "\n")


def _policies_page(request: Request, signed: SignedIn, status: int = 200, **shown: Any) -> HTMLResponse:
    scope = signed.person.scope
    with _reading(_console(request).engine) as connection:
        context = _person_context(signed, "Policies") | {
            "current": published_versions.current_policies(connection, scope),
            "versions": published_versions.policy_versions(connection, scope),
            "schools": known_schools(connection, scope),
            "publishes": signed.person.role == DISTRICT_ADMIN,
            "content": "",
            "school": "",
            "message": "",
            "published": "",
        }
    return _page(request, "policies.html", context | shown, status)


@router.get("/policies", response_class=HTMLResponse)
def policies(request: Request, signed: SignedInDep, published: str = "") -> HTMLResponse:
    return _policies_page(request, signed, published=_clean(published)[:64])


def _school(request: Request, signed: SignedIn, school: str) -> str:
    school = _clean(school).strip()
    if school:
        with _reading(_console(request).engine) as connection:
            if school not in known_schools(connection, signed.person.scope):
                raise Refusal(400, "Unknown school", f"There is no school {school!r} to publish to.")
    return school


@router.get("/policies/versions/{version_id}", response_class=HTMLResponse)
def policy_version(
    request: Request, signed: SignedInDep, version_id: Annotated[int, Path(ge=1, le=2**31 - 1)]
) -> HTMLResponse:
    with _reading(_console(request).engine) as connection:
        found = published_versions.policy_content(connection, signed.person.scope, version_id)
    if found is None:
        raise Refusal(404, "No such policy version", "There is no such version among your schools' policies.")
    school, content = found
    try:
        document = check_policy(f"version {version_id}", content)
    except PolicyError as exc:
        raise Refusal(409, "Policy cannot be shown", str(exc)) from None
    context = _person_context(signed, f"{document.title}: preview") | {
        "view": policy_preview.preview(document),
        "school": school,
        "content": "",
        "confirm": False,
    }
    return _page(request, "policy_preview.html", context)


@router.post("/policies/preview", response_class=HTMLResponse)
def preview_policy(
    request: Request,
    signed: SignedInDep,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    school: Annotated[str, Form(max_length=100)] = "",
    content: Annotated[str, Form(max_length=CONTENT_MAX)] = "",
) -> HTMLResponse:
    check_form(request, signed.csrf_token, csrf_token)
    publisher(signed)
    school, content = _school(request, signed, school), posted_text(content)
    try:
        document = check_policy(SOURCE, content)
    except PolicyError as exc:
        return _policies_page(
            request, signed, 400, content=content, school=school, message=f"Not published: {exc}"
        )
    context = _person_context(signed, f"{document.title}: preview") | {
        "view": policy_preview.preview(document),
        "school": school,
        "content": content,
        "confirm": True,
    }
    return _page(request, "policy_preview.html", context)


@router.post("/policies/publish")
def publish(
    request: Request,
    signed: SignedInDep,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    school: Annotated[str, Form(max_length=100)] = "",
    content: Annotated[str, Form(max_length=CONTENT_MAX)] = "",
) -> Response:
    check_form(request, signed.csrf_token, csrf_token)
    publisher(signed)
    school, content = _school(request, signed, school), posted_text(content)
    try:
        with _console(request).engine.begin() as connection:
            document = publish_policy(
                connection,
                SOURCE,
                content,
                school,
                audit_log.actor_for(signed.person.email),
                address_of(request),
            )
    except PolicyError as exc:
        return _policies_page(
            request, signed, 400, content=content, school=school, message=f"Not published: {exc}"
        )
    return RedirectResponse(f"/policies?published={document.version}", status_code=303)


@router.post("/policies/edit", response_class=HTMLResponse)
def edit_again(
    request: Request,
    signed: SignedInDep,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    school: Annotated[str, Form(max_length=100)] = "",
    content: Annotated[str, Form(max_length=CONTENT_MAX)] = "",
) -> HTMLResponse:
    """Back from the preview to the form, the text as it was."""
    check_form(request, signed.csrf_token, csrf_token)
    publisher(signed)
    return _policies_page(
        request, signed, content=posted_text(content), school=_school(request, signed, school)
    )
