"""The console's "API tokens" page: each user makes and revokes their own admin API tokens.

A new token is shown once, on the page that made it; the list shows names and dates only.
Every form carries the CSRF token; making and revoking are audited (`api_token.created`,
`api_token.revoked`, with the address).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from server.console import api_tokens, audit_log
from server.console.pages import (
    SignedIn,
    SignedInDep,
    _console,
    _page,
    _person_context,
    _reading,
    address_of,
    check_form,
)
from server.errors import CommandError

router = APIRouter(include_in_schema=False)
PATH = "/account/api-tokens"


def _tokens_page(request: Request, signed: SignedIn, status: int = 200, **shown: Any) -> HTMLResponse:
    with _reading(_console(request).engine) as connection:
        tokens = api_tokens.list_tokens(connection, signed.person.id)
    context = _person_context(signed, "API tokens") | {
        "tokens": tokens,
        "message": "",
        "failed": False,
        "new_token": "",
        "new_name": "",
        "name_length": api_tokens.NAME_LENGTH,
    }
    return _page(request, "api_tokens.html", context | shown, status)


@router.get(PATH, response_class=HTMLResponse)
def tokens(request: Request, signed: SignedInDep) -> HTMLResponse:
    return _tokens_page(request, signed)


@router.post(PATH, response_class=HTMLResponse)
def make_token(
    request: Request,
    signed: SignedInDep,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    name: Annotated[str, Form(max_length=1000)] = "",
) -> HTMLResponse:
    check_form(request, signed.csrf_token, csrf_token)
    person = signed.person
    try:
        with _console(request).engine.begin() as connection:
            _id, token = api_tokens.create(
                connection,
                person.id,
                person.email,
                name,
                audit_log.actor_for(person.email),
                address_of(request),
            )
    except CommandError as exc:
        return _tokens_page(request, signed, 400, message=f"Not made: {exc}.", failed=True)
    return _tokens_page(request, signed, new_token=token, new_name=name.strip())


@router.post(PATH + "/revoke", response_class=HTMLResponse)
def revoke_token(
    request: Request,
    signed: SignedInDep,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    token_id: Annotated[int, Form(ge=1, le=2**31 - 1)] = 0,
) -> HTMLResponse:
    check_form(request, signed.csrf_token, csrf_token)
    person = signed.person
    try:
        with _console(request).engine.begin() as connection:
            api_tokens.revoke(
                connection,
                person.id,
                person.email,
                token_id,
                audit_log.actor_for(person.email),
                address_of(request),
            )
    except CommandError:
        return _tokens_page(
            request, signed, 404, message="Not revoked: you have no such token in use.", failed=True
        )
    return _tokens_page(request, signed, message=f"Token {token_id} is revoked: it no longer opens the API.")
