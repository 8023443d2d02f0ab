"""The console's pages: sign-in, sign-out, overview, devices, one device, audit log, and their
CSV exports. Every POST carries the CSRF token; every page reads through the person's scope."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timezone
from functools import partial
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from server.console import (
    accounts,
    audit_log,
    device_list,
    device_scope,
    fleet_views,
    sessions,
    sign_in,
    trend,
)
from server.console.form_secret import FormSecret
from server.console.headers import is_https
from server.console.roles import ROLE_NAMES, ROLES, Person
from server.errors import CommandError
from server.fleet import device_record
from server.fleet.counts import fold_past_days
from server.lost import listing

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "homeroom_session"
SIGN_IN_COOKIE = "homeroom_sign_in"
CHECK_TITLES = {
    "disk_encryption": "Disk encryption",
    "firewall": "Firewall",
    "power_on_password": "Power-on password",
    "antivirus": "Antivirus",
    "screen_lock": "Screen lock",
    "software": "Authorised software",
}


def _environment() -> Environment:
    # Autoescape for every template: hostnames, user names and app names come from laptops.
    return Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True)
    )


templates = Jinja2Templates(env=_environment())


@dataclass(frozen=True)
class Console:
    engine: Engine
    form_secret: FormSecret


@dataclass(frozen=True)
class SignedIn:
    person: Person
    session_id: int
    csrf_token: str


class Refusal(Exception):
    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


def _console(request: Request) -> Console:
    found: Console = request.app.state.console
    return found


def _reading(engine: Engine) -> Connection:
    """A connection for pages that only read: on SQLite it begins deferred, so a page never takes
    the write lock that reports and heartbeats wait for (server.db.engine)."""
    return engine.connect().execution_options(homeroom_read_only=True)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def address_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _signed_in(request: Request) -> SignedIn | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 100:
        return None
    engine, now = _console(request).engine, _now()
    with _reading(engine) as connection:
        found = sessions.find(connection, token, now)
        if found is None:
            return None
        who = accounts.person(connection, found.admin_id)
    if who is None:
        return None
    if found.needs_touch:
        with engine.begin() as connection:
            sessions.touch(connection, found.id, now)
    return SignedIn(who, found.id, sessions.csrf_token(token))


class NeedsSignIn(Exception):
    pass


def signed_in(request: Request) -> SignedIn:
    found = _signed_in(request)
    if found is None:
        raise NeedsSignIn
    return found


SignedInDep = Annotated[SignedIn, Depends(signed_in)]


def _same_origin(request: Request) -> bool:
    """A browser names the page a form came from; one from another site is refused outright."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return origin == f"{request.url.scheme}://{request.url.netloc}"


def check_form(request: Request, expected: str, given: str) -> None:
    if not _same_origin(request) or not given or not hmac.compare_digest(expected, given):
        raise Refusal(
            403,
            "Form refused",
            "This form's security token is missing or out of date (CSRF protection). "
            "Reload the page and try again.",
        )


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    response = templates.TemplateResponse(request, name, context, status_code=status)
    # Pages show data for one signed-in person: never kept by a browser's or proxy's cache.
    response.headers["cache-control"] = "no-store"
    return response


def _person_context(signed: SignedIn, title: str) -> dict[str, Any]:
    return {"person": signed.person, "csrf_token": signed.csrf_token, "title": title}


router = APIRouter(include_in_schema=False)


# ---- signing in and out ----


def _safe_next(target: str) -> str:
    """Only a path on this server: never `//evil.example` or `https://…` (an open redirect)."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _sign_in_form(
    request: Request, message: str = "", email: str = "", next_page: str = "/", status: int = 200
) -> HTMLResponse:
    nonce = secrets.token_urlsafe(24)
    response = _page(
        request,
        "sign_in.html",
        {
            "person": None,
            "title": "Sign in",
            "csrf_token": _console(request).form_secret.token_for(nonce),
            "message": message,
            "email": email,
            "next": _safe_next(next_page),
        },
        status,
    )
    response.set_cookie(
        SIGN_IN_COOKIE,
        nonce,
        httponly=True,
        samesite="strict",
        secure=is_https(request.scope),
        path="/sign-in",
    )
    return response


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request, next: str = "/") -> Response:
    if _signed_in(request) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _sign_in_form(request, next_page=next)


@router.post("/sign-in")
def sign_in_submit(
    request: Request,
    email: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    console = _console(request)
    nonce = request.cookies.get(SIGN_IN_COOKIE, "")
    check_form(request, console.form_secret.token_for(nonce) if nonce else "", csrf_token)
    with console.engine.begin() as connection:
        outcome = sign_in.attempt(connection, email, password, address_of(request), _now())
    if outcome.token is None:
        status = 429 if outcome.locked_for is not None else 401
        refused = _sign_in_form(request, outcome.message, email, next, status)
        if outcome.locked_for is not None:
            refused.headers["retry-after"] = str(int(outcome.locked_for.total_seconds()) + 1)
        return refused
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        outcome.token,
        max_age=int(sessions.ABSOLUTE_TIMEOUT.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=is_https(request.scope),
        path="/",
    )
    response.delete_cookie(SIGN_IN_COOKIE, path="/sign-in")
    return response


@router.post("/sign-out")
def sign_out(request: Request, csrf_token: Annotated[str, Form(max_length=200)] = "") -> Response:
    signed = _signed_in(request)
    if signed is None:
        # Nothing to end; still no 500 and no open door.
        return RedirectResponse("/sign-in", status_code=303)
    check_form(request, signed.csrf_token, csrf_token)
    with _console(request).engine.begin() as connection:
        sessions.revoke(connection, signed.session_id, _now())
        audit_log.record(
            connection,
            audit_log.actor_for(signed.person.email),
            "console.signed_out",
            {},
            address_of(request),
        )
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# ---- fleet pages ----


def _clean(text: str) -> str:
    """PostgreSQL refuses NUL in any string: a query parameter holding one must not become a 500."""
    return text.replace("\x00", "")


AUDIENCES = ("staff", "student")


def _filters(
    signed: SignedIn, school: str, os: str, search: str = "", audience: str = ""
) -> fleet_views.Filters:
    school, os, search = _clean(school), _clean(os), _clean(search)
    audience = audience if audience in AUDIENCES else ""
    if school and not signed.person.scope.allows(school):
        raise Refusal(403, "Not one of your schools", f"You are not assigned to {school!r}.")
    return fleet_views.Filters(school=school, os=os, search=search, audience=audience)


@router.get("/", response_class=HTMLResponse)
def overview(
    request: Request,
    signed: SignedInDep,
    school: Annotated[str, Query(max_length=100)] = "",
    os: Annotated[str, Query(max_length=20)] = "",
    days: Annotated[int, Query(ge=1, le=365)] = 7,
    period: Annotated[int, Query(alias="trend")] = 30,
    audience: Annotated[str, Query(max_length=20)] = "",
) -> HTMLResponse:
    filters = _filters(signed, school, os, audience=audience)
    trend_days = 90 if period == 90 else 30
    now = _now()
    fold_past_days(_console(request).engine, now.date())
    with _reading(_console(request).engine) as connection, Session(bind=connection) as session:
        counts = fleet_views.overview(session, signed.person.scope, filters, days, now)
        shares = trend.read_shares(session.connection(), signed.person.scope, filters, trend_days, now)
        schools = fleet_views.schools(session.connection(), signed.person.scope)
        systems = fleet_views.operating_systems(session.connection(), signed.person.scope)
    context = _person_context(signed, "Overview") | {
        "counts": counts,
        "filters": filters,
        "days": days,
        "schools": schools,
        "systems": systems,
        "check_titles": CHECK_TITLES,
        "trend_days": trend_days,
        "filter_query": urlencode(
            {"school": filters.school, "os": filters.os, "audience": filters.audience, "days": days}
        ),
        "audiences": AUDIENCES,
        "chart": trend.chart(shares, f"Fully compliant devices, last {trend_days} days"),
    }
    return _page(request, "overview.html", context)


def _since(text: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Refusal(400, "Not a date", '"Not seen since" takes a date such as 2026-09-01.') from None


def _list_query(
    signed: SignedIn,
    q: str,
    school: str,
    os: str,
    failing: str = "",
    signoff: str = "",
    not_seen_since: str = "",
    lost: str = "",
    sort: str = "",
    direction: str = "",
) -> device_list.ListQuery:
    return device_list.ListQuery(
        filters=_filters(signed, school, os, q),
        failing=failing if failing in CHECK_TITLES else "",
        signoff_missing=signoff == "missing",
        not_seen_since=_since(not_seen_since),
        lost=bool(lost) and device_list.lost_filter_available(),
        sort=sort if sort in device_list.SORTS else "hostname",
        descending=direction == "desc",
    )


@router.get("/devices", response_class=HTMLResponse)
def devices(
    request: Request,
    signed: SignedInDep,
    q: Annotated[str, Query(max_length=200)] = "",
    school: Annotated[str, Query(max_length=100)] = "",
    os: Annotated[str, Query(max_length=20)] = "",
    failing: Annotated[str, Query(max_length=40)] = "",
    signoff: Annotated[str, Query(max_length=20)] = "",
    not_seen_since: Annotated[str, Query(max_length=20)] = "",
    lost: Annotated[str, Query(max_length=5)] = "",
    sort: Annotated[str, Query(max_length=20)] = "",
    direction: Annotated[str, Query(alias="dir", max_length=5)] = "",
    page: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> HTMLResponse:
    listed = _list_query(signed, q, school, os, failing, signoff, not_seen_since, lost, sort, direction)
    scope = signed.person.scope
    with _reading(_console(request).engine) as connection:
        rows, total = device_list.device_page(connection, scope, listed, page)
        schools = fleet_views.schools(connection, scope)
        systems = fleet_views.operating_systems(connection, scope)
    context = _person_context(signed, "Devices") | {
        "rows": rows,
        "total": total,
        "page": page,
        "page_size": device_list.PAGE_SIZE,
        "listed": listed,
        "filters": listed.filters,
        "schools": schools,
        "systems": systems,
        "check_titles": CHECK_TITLES,
        "query": urlencode(listed.as_params()),
        "sort_query": lambda column: urlencode(listed.sorted_by(column).as_params()),
        "lost_available": device_list.lost_filter_available(),
        "asset_tag_available": device_list.asset_tag_available(),
    }
    return _page(request, "devices.html", context)


@router.get("/devices.csv")
def devices_csv(
    request: Request,
    signed: SignedInDep,
    q: Annotated[str, Query(max_length=200)] = "",
    school: Annotated[str, Query(max_length=100)] = "",
    os: Annotated[str, Query(max_length=20)] = "",
    failing: Annotated[str, Query(max_length=40)] = "",
    signoff: Annotated[str, Query(max_length=20)] = "",
    not_seen_since: Annotated[str, Query(max_length=20)] = "",
    lost: Annotated[str, Query(max_length=5)] = "",
    sort: Annotated[str, Query(max_length=20)] = "",
    direction: Annotated[str, Query(alias="dir", max_length=5)] = "",
) -> StreamingResponse:
    listed = _list_query(signed, q, school, os, failing, signoff, not_seen_since, lost, sort, direction)
    engine = _console(request).engine
    with engine.begin() as connection:
        audit_log.record(
            connection,
            audit_log.actor_for(signed.person.email),
            "devices.exported",
            # The cleaned values: a NUL would stop the audit entry (PostgreSQL refuses it in text).
            {"search": listed.filters.search, "school": listed.filters.school, "os": listed.filters.os}
            | listed.as_params(),
            address_of(request),
        )

    rows = device_list.devices_csv(partial(_reading, engine), signed.person.scope, listed)
    return _csv(rows, "homeroom-devices.csv")


@router.get("/devices/{device_id}", response_class=HTMLResponse)
def device(
    request: Request, signed: SignedInDep, device_id: str, asked: int = 0, marked: int = 0, tagged: int = 0
) -> HTMLResponse:
    with _reading(_console(request).engine) as connection:
        found = fleet_views.device_detail(connection, signed.person.scope, _clean(device_id)[:64])
        record = device_record.device_record(connection, found.row.id) if found is not None else None
        if record is not None:
            record = device_scope.narrowed(connection, signed.person.scope, record)
            lost_cases = listing.device_cases(connection, record.id)
    if found is None or record is None:
        raise Refusal(404, "No such device", "There is no device with that id among your schools.")
    context = _person_context(signed, found.row.hostname) | {
        "device": found,
        "record": record,
        "lost_cases": lost_cases,
        "asked": asked,
        "marked": marked,
        "tagged": tagged,
        "hidden_device": device_scope.HIDDEN,
    }
    return _page(request, "device.html", context)


@router.post("/devices/{device_id}/check-now")
def check_now(
    request: Request,
    signed: SignedInDep,
    device_id: str,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Asks the laptop to check and report at its next heartbeat (as `homeroom-server command`)."""
    check_form(request, signed.csrf_token, csrf_token)
    if not signed.person.acts_on_devices:
        raise Refusal(403, "Read-only", "A viewer reads the console; a technician or administrator acts.")
    with _console(request).engine.begin() as connection:
        found = fleet_views.device_detail(connection, signed.person.scope, _clean(device_id)[:64])
        if found is None:
            raise Refusal(404, "No such device", "There is no device with that id among your schools.")
        fleet_views.ask_check_now(connection, found.row.id)
        audit_log.record(
            connection,
            audit_log.actor_for(signed.person.email),
            "device.command",
            {"device": found.row.id, "command": "check_now"},
            address_of(request),
        )
    return RedirectResponse(f"/devices/{found.row.id}?asked=1", status_code=303)


def _csv(rows: Iterator[str], name: str) -> StreamingResponse:
    return StreamingResponse(
        rows,
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}"', "cache-control": "no-store"},
    )


# ---- audit ----


def _audit_reader(signed: SignedIn) -> None:
    if not signed.person.reads_audit:
        raise Refusal(
            403,
            "Audit log not available",
            "The audit log names every school's devices and people: district administrators and "
            "district-wide viewers read it.",
        )


@router.get("/audit", response_class=HTMLResponse)
def audit(
    request: Request,
    signed: SignedInDep,
    q: Annotated[str, Query(max_length=200)] = "",
    page: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> HTMLResponse:
    _audit_reader(signed)
    with _reading(_console(request).engine) as connection:
        rows, total = audit_log.audit_page(connection, _clean(q), page)
    context = _person_context(signed, "Audit log") | {
        "rows": rows,
        "total": total,
        "page": page,
        "page_size": audit_log.PAGE_SIZE,
        "search": q,
    }
    return _page(request, "audit.html", context)


@router.get("/audit.csv")
def audit_csv(
    request: Request, signed: SignedInDep, q: Annotated[str, Query(max_length=200)] = ""
) -> StreamingResponse:
    _audit_reader(signed)
    engine = _console(request).engine
    with engine.begin() as connection:
        audit_log.record(
            connection,
            audit_log.actor_for(signed.person.email),
            "audit.exported",
            {"search": _clean(q)},
            address_of(request),
        )

    return _csv(audit_log.audit_csv(partial(_reading, engine), _clean(q)), "homeroom-audit.csv")


# ---- users (district administrators) ----


def _user_manager(signed: SignedIn) -> None:
    if not signed.person.manages_users:
        raise Refusal(403, "Users not available", "District administrators manage users.")


def _users_page(request: Request, signed: SignedIn, status: int = 200, **shown: Any) -> HTMLResponse:
    with _reading(_console(request).engine) as connection:
        users = accounts.list_users(connection)
    context = _person_context(signed, "Users") | {
        "users": users,
        "roles": ROLES,
        "role_names": ROLE_NAMES,
        "message": "",
        "failed": False,
        "new_password": "",
        "new_email": "",
    }
    return _page(request, "users.html", context | shown, status)


@router.get("/users", response_class=HTMLResponse)
def users(request: Request, signed: SignedInDep) -> HTMLResponse:
    _user_manager(signed)
    return _users_page(request, signed)


@router.post("/users", response_class=HTMLResponse)
def save_user(
    request: Request,
    signed: SignedInDep,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    email: Annotated[str, Form(max_length=200)] = "",
    role: Annotated[str, Form(max_length=30)] = "",
    schools: Annotated[str, Form(max_length=10_000)] = "",
    district: Annotated[str, Form(max_length=5)] = "",
) -> HTMLResponse:
    """A new e-mail is a new user (a one-time password, shown once); a known one changes role."""
    check_form(request, signed.csrf_token, csrf_token)
    _user_manager(signed)
    school_list = [_clean(line).strip()[:100] for line in schools.splitlines() if line.strip()]
    actor, address = audit_log.actor_for(signed.person.email), address_of(request)
    password = secrets.token_urlsafe(12)
    try:
        with _console(request).engine.begin() as connection:
            known = email.strip().lower() in {u.email for u in accounts.list_users(connection)}
            if known:
                if email.strip().lower() == signed.person.email:
                    raise CommandError("you cannot change your own role: ask another district administrator")
                accounts.set_role(
                    connection, email.strip(), role, school_list, bool(district), actor, address
                )
            else:
                accounts.add_user(
                    connection, _clean(email), password, role, school_list, bool(district), actor, address
                )
    except CommandError as exc:
        return _users_page(request, signed, 400, message=f"Not saved: {exc}.", failed=True)
    if known:
        return _users_page(request, signed, message=f"{email.strip().lower()} is now a {ROLE_NAMES[role]}.")
    return _users_page(request, signed, new_password=password, new_email=email.strip().lower())


def _disable(request: Request, signed: SignedIn, email: str, csrf_token: str, disabled: bool) -> HTMLResponse:
    check_form(request, signed.csrf_token, csrf_token)
    _user_manager(signed)
    if email.strip().lower() == signed.person.email:
        return _users_page(
            request, signed, 400, message="Not saved: you cannot disable yourself.", failed=True
        )
    try:
        with _console(request).engine.begin() as connection:
            accounts.set_disabled(
                connection,
                _clean(email),
                disabled,
                audit_log.actor_for(signed.person.email),
                address_of(request),
            )
    except CommandError as exc:
        return _users_page(request, signed, 400, message=f"Not saved: {exc}.", failed=True)
    done = "disabled and signed out" if disabled else "enabled"
    return _users_page(request, signed, message=f"{email.strip().lower()} is {done}.")


@router.post("/users/disable", response_class=HTMLResponse)
def disable_user(
    request: Request,
    signed: SignedInDep,
    email: Annotated[str, Form(max_length=200)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> HTMLResponse:
    return _disable(request, signed, email, csrf_token, True)


@router.post("/users/enable", response_class=HTMLResponse)
def enable_user(
    request: Request,
    signed: SignedInDep,
    email: Annotated[str, Form(max_length=200)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> HTMLResponse:
    return _disable(request, signed, email, csrf_token, False)


def add_console(app: FastAPI, engine: Engine) -> None:
    app.state.console = Console(engine=engine, form_secret=FormSecret(engine))
    app.include_router(router)
    from server.console import policies_page, requirements_page, signoffs_page  # they import this module

    for module in (signoffs_page, policies_page, requirements_page):
        app.include_router(module.router)
    app.mount("/console-static", StaticFiles(directory=HERE / "static"), name="console-static")
    from server.console import software_pages, token_pages  # they build on this module's helpers

    for fleet_module in (software_pages, token_pages):
        app.include_router(fleet_module.router)

    @app.exception_handler(NeedsSignIn)
    async def needs_sign_in(request: Request, _exc: NeedsSignIn) -> Response:
        if request.method != "GET":
            return await run_in_threadpool(_refused, request, Refusal(403, "Signed out", "Sign in first."))
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/sign-in?" + urlencode({"next": target}), status_code=303)

    @app.exception_handler(Refusal)
    async def refused(request: Request, exc: Refusal) -> Response:
        return await run_in_threadpool(_refused, request, exc)


def _refused(request: Request, refusal: Refusal) -> HTMLResponse:
    signed = _signed_in(request)
    context: dict[str, Any] = {"person": None, "title": refusal.title, "message": refusal.message}
    if signed is not None:
        context |= _person_context(signed, refusal.title)
    return _page(request, "refused.html", context, refusal.status)
