"""The console's Enrolment tokens page (district administrators only): make a token, list them, revoke.

The same code as `homeroom-server token create | revoke` (server.fleet.enrolment_tokens). A new
token is shown once, on the page that answers the form, with its school, its expiry and the exact
command and agent.toml line that use it; only its hash is stored, so no later page can show it.
The answer is never cached (`_page` sets no-store).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse

from server.console import audit_log
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
from server.fleet import enrolment_tokens
from server.fleet.software_list import known_groups

router = APIRouter(include_in_schema=False)
EXPIRY_CHOICES = (7, 30, 90, 365)


def _administrator(signed: SignedIn) -> None:
    if not signed.person.manages_users:
        raise Refusal(
            403, "Tokens not available", "District administrators make and revoke enrolment tokens."
        )


def _server_address(request: Request) -> str:
    """The address this console was reached at: the one laptops are told to enrol with."""
    return f"{request.url.scheme}://{request.url.netloc}"


def _tokens_page(request: Request, signed: SignedIn, status: int = 200, **shown: Any) -> HTMLResponse:
    with _reading(_console(request).engine) as connection:
        tokens = enrolment_tokens.list_tokens(connection)
        groups = known_groups(connection)
    context = _person_context(signed, "Enrolment tokens") | {
        "tokens": tokens,
        "groups": groups,
        "now": datetime.now(timezone.utc),
        "expiry_choices": EXPIRY_CHOICES,
        "server_address": _server_address(request),
        "created": None,
        "message": "",
        "failed": False,
    }
    return _page(request, "tokens.html", context | shown, status)


@router.get("/tokens", response_class=HTMLResponse)
def tokens(request: Request, signed: SignedInDep) -> HTMLResponse:
    _administrator(signed)
    return _tokens_page(request, signed)


@router.post("/tokens", response_class=HTMLResponse)
def create(
    request: Request,
    signed: SignedInDep,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    school: Annotated[str, Form(max_length=1000)] = "",
    expires: Annotated[str, Form(max_length=10)] = "",
) -> HTMLResponse:
    check_form(request, signed.csrf_token, csrf_token)
    _administrator(signed)
    days = int(expires) if expires.isdigit() and len(expires) <= 5 else None
    if expires and days is None:
        return _tokens_page(
            request, signed, 400, message="Not made: the expiry is a number of days.", failed=True
        )
    try:
        with _console(request).engine.begin() as connection:
            made = enrolment_tokens.create_token(
                connection,
                _clean(school),
                days,
                audit_log.actor_for(signed.person.email),
                address_of(request),
            )
    except CommandError as exc:
        return _tokens_page(request, signed, 400, message=f"Not made: {exc}.", failed=True)
    return _tokens_page(request, signed, created=made)


@router.post("/tokens/{token_id}/revoke", response_class=HTMLResponse)
def revoke(
    request: Request,
    signed: SignedInDep,
    token_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> HTMLResponse:
    check_form(request, signed.csrf_token, csrf_token)
    _administrator(signed)
    try:
        with _console(request).engine.begin() as connection:
            revoked = enrolment_tokens.revoke_by_id(
                connection, token_id, audit_log.actor_for(signed.person.email), address_of(request)
            )
    except CommandError as exc:
        return _tokens_page(request, signed, 404, message=f"Not revoked: {exc}.", failed=True)
    return _tokens_page(
        request,
        signed,
        message=f"Token {revoked.id} for {revoked.group} is revoked: it enrols no more laptops.",
    )
