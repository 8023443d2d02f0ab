"""Signing in to the console, against a real server process on SQLite and PostgreSQL: the form,
a bad password, lockout and its back-off, sign-out and revoked sessions, CSRF, cookies, headers."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, select, text, update

from server.console.sessions import token_hash
from server.console.tables import FAILURES, SESSIONS
from server.db.engine import make_engine
from tests.helpers.console import ConsoleUser, create_user, csrf_of, module_server, set_password
from tests.helpers.servers import ServerProcess

PASSWORD = "correct horse battery staple"
ADMIN = ""


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def console_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    yield from module_server(request, tmp_path_factory)


@pytest.fixture
def admin(console_server: ServerProcess) -> ServerProcess:
    """The server, with a district administrator of this test's own (lockouts stay per test)."""
    global ADMIN
    ADMIN = f"admin-{uuid.uuid4().hex[:8]}@district.example"
    create_user(console_server, ADMIN, PASSWORD, "district_admin")
    return console_server


def audit(server: ServerProcess) -> list[dict[str, object]]:
    done = server.cli("audit", "--json")
    assert done.returncode == 0, done.stderr
    entries: list[dict[str, object]] = json.loads(done.stdout)["audit"]
    return entries


def test_sign_in_sets_a_revocable_session_and_sign_out_ends_it(admin: ServerProcess) -> None:
    person = ConsoleUser(admin)
    assert person.get("/").headers["location"] == "/sign-in?next=%2F"  # signed out: to the form

    signed = person.sign_in(ADMIN.upper(), PASSWORD)  # the e-mail is not case-sensitive
    assert signed.status_code == 303 and signed.headers["location"] == "/"
    cookie = signed.headers["set-cookie"].lower()
    assert "homeroom_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    assert "secure" not in cookie  # plain http on loopback: a Secure cookie would never come back
    overview = person.get("/")
    assert overview.status_code == 200 and ADMIN in overview.text and "Sign out" in overview.text

    stolen = dict(person.http.cookies)  # a copy of the cookie, as a thief would keep it
    assert person.sign_out().status_code == 303
    assert person.get("/").status_code == 303
    thief = ConsoleUser(admin)
    thief.http.cookies.update(stolen)
    assert thief.get("/").status_code == 303, "a signed-out session must be refused everywhere"
    assert thief.get("/audit.csv").status_code == 303

    actions = [(e["action"], e["address"]) for e in audit(admin) if e["actor"] == f"user:{ADMIN}"]
    assert ("console.signed_in", "127.0.0.1") in actions
    assert ("console.signed_out", "127.0.0.1") in actions


def test_the_database_holds_only_a_hash_of_the_session_token(admin: ServerProcess) -> None:
    person = ConsoleUser(admin)
    person.sign_in(ADMIN, PASSWORD)
    token = person.http.cookies["homeroom_session"]
    engine = make_engine(admin.database_url)
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT token_hash FROM console_sessions")).scalars().all()
    engine.dispose()
    assert stored and token not in stored and all(len(h) == 64 for h in stored)


def test_a_bad_password_is_refused_and_audited(admin: ServerProcess) -> None:
    person = ConsoleUser(admin)
    refused = person.sign_in(ADMIN, "not the password")
    assert refused.status_code == 401
    assert "not accepted" in refused.text and "homeroom_session" not in refused.headers.get("set-cookie", "")
    unknown_email = f"nobody-{uuid.uuid4().hex[:6]}@school.example"
    unknown = person.sign_in(unknown_email, "not the password")
    assert unknown.status_code == 401 and unknown.text.count("not accepted") == refused.text.count(
        "not accepted"
    )
    failed = [
        e
        for e in audit(admin)
        if e["action"] == "console.sign_in_failed" and e["detail"]["email"] in (ADMIN, unknown_email)  # type: ignore[index]
    ]
    assert [e["detail"]["reason"] for e in failed] == ["wrong password", "no such account"]  # type: ignore[index]
    assert all(e["address"] == "127.0.0.1" for e in failed)


def test_lockout_backs_off_per_account(admin: ServerProcess) -> None:
    person = ConsoleUser(admin)
    for _ in range(5):
        assert person.sign_in(ADMIN, "guess").status_code == 401
    locked = person.sign_in(ADMIN, PASSWORD)  # even the right password, while locked
    assert locked.status_code == 429 and "Try again in 1 minute" in locked.text
    assert 0 < int(locked.headers["retry-after"]) <= 61
    # The lock passes: the next failure is checked, and locks for twice as long (back-off).
    _expire_locks(admin)
    assert person.sign_in(ADMIN, "guess").status_code == 401
    assert person.sign_in(ADMIN, PASSWORD).status_code == 429
    engine = make_engine(admin.database_url)
    with engine.connect() as connection:
        row = connection.execute(select(FAILURES).where(FAILURES.c.key == "account:" + ADMIN)).one()
    engine.dispose()
    until = row.locked_until if row.locked_until.tzinfo else row.locked_until.replace(tzinfo=timezone.utc)
    assert row.failures == 6 and timedelta(seconds=100) < until - datetime.now(timezone.utc) <= timedelta(
        minutes=2
    )

    # A district administrator's new password lifts the account's lock at once.
    set_password(admin, ADMIN, "a brand new password")
    assert person.sign_in(ADMIN, "a brand new password").status_code == 303
    assert any(e["action"] == "console.sign_in_locked" for e in audit(admin))


def test_lockout_per_address_covers_every_account(admin: ServerProcess) -> None:
    """Twenty failures from one address (spread over made-up accounts, so no account locks) lock
    the address; another address is not affected. The address comes from X-Forwarded-For, which
    uvicorn trusts from a proxy on loopback (nginx in front of the server)."""
    guesser = ConsoleUser(admin, {"X-Forwarded-For": "203.0.113.7"})
    for n in range(20):
        assert guesser.sign_in(f"user{n}@school.example", "guess").status_code == 401
    assert guesser.sign_in(ADMIN, PASSWORD).status_code == 429
    assert (
        guesser.sign_in(ADMIN, PASSWORD).status_code == 429
    )  # a success would have cleared only the account
    elsewhere = ConsoleUser(admin, {"X-Forwarded-For": "198.51.100.9"})
    assert elsewhere.sign_in(ADMIN, PASSWORD).status_code == 303
    assert any(
        e["address"] == "203.0.113.7" and e["action"] == "console.sign_in_locked" for e in audit(admin)
    )


def _expire_locks(server: ServerProcess) -> None:
    engine = create_engine(make_engine(server.database_url).url)
    with engine.begin() as connection:
        connection.execute(
            update(FAILURES)
            .where(FAILURES.c.key == "account:" + ADMIN)
            .values(locked_until=datetime.now(timezone.utc) - timedelta(seconds=1))
        )
    engine.dispose()


def test_a_disabled_user_is_signed_out_at_once(admin: ServerProcess) -> None:
    person = ConsoleUser(admin)
    person.sign_in(ADMIN, PASSWORD)
    assert person.get("/").status_code == 200
    done = admin.cli("users", "disable", ADMIN)
    assert done.returncode == 0 and "ended 1 session" in done.stdout
    assert person.get("/").status_code == 303
    assert ConsoleUser(admin).sign_in(ADMIN, PASSWORD).status_code == 401


def test_every_form_needs_its_csrf_token(admin: ServerProcess) -> None:
    person = ConsoleUser(admin)
    form = person.get("/sign-in")
    no_token = person.post("/sign-in", {"email": ADMIN, "password": PASSWORD})
    assert no_token.status_code == 403 and "CSRF" in no_token.text
    forged = person.post("/sign-in", {"email": ADMIN, "password": PASSWORD, "csrf_token": "0" * 64})
    assert forged.status_code == 403
    other_site = person.post(
        "/sign-in",
        {"email": ADMIN, "password": PASSWORD, "csrf_token": csrf_of(form.text)},
        headers={"Origin": "https://evil.example"},
    )
    assert other_site.status_code == 403

    assert person.sign_in(ADMIN, PASSWORD).status_code == 303
    assert person.post("/sign-out", {}).status_code == 403  # no token: still signed in
    assert person.post("/sign-out", {"csrf_token": "f" * 64}).status_code == 403
    assert person.get("/").status_code == 200
    # Another session's token does not fit this one.
    other = ConsoleUser(admin)
    other.sign_in(ADMIN, PASSWORD)
    assert person.post("/sign-out", {"csrf_token": other.csrf}).status_code == 403
    assert person.sign_out().status_code == 303


def test_security_headers_on_pages_api_and_docs(admin: ServerProcess) -> None:
    person = ConsoleUser(admin)
    for path in ("/sign-in", "/", "/healthz", "/openapi.json", "/docs", "/devices/nothing"):
        headers = person.get(path).headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
        assert "frame-ancestors 'none'" in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
        assert headers["x-frame-options"] == "DENY"


def test_https_behind_a_proxy_makes_cookies_secure(admin: ServerProcess) -> None:
    person = ConsoleUser(admin, {"X-Forwarded-Proto": "https"})
    form = person.get("/sign-in")
    assert "secure" in form.headers["set-cookie"].lower()
    assert form.headers["strict-transport-security"].startswith("max-age=")
    # requests keeps a Secure cookie from plain http; hand it over as a browser on https would.
    nonce = form.headers["set-cookie"].split(";")[0]
    signed = person.post(
        "/sign-in",
        {"email": ADMIN, "password": PASSWORD, "csrf_token": csrf_of(form.text), "next": "/"},
        headers={"Origin": f"https://127.0.0.1:{admin.port}", "Cookie": nonce},
    )
    assert signed.status_code == 303 and "secure" in signed.headers["set-cookie"].lower()


def test_next_never_leaves_the_server(admin: ServerProcess) -> None:
    person = ConsoleUser(admin)
    form = person.get("/sign-in?next=//evil.example/x")
    assert 'value="/"' in form.text
    answer = person.post(
        "/sign-in",
        {
            "email": ADMIN,
            "password": PASSWORD,
            "csrf_token": csrf_of(form.text),
            "next": "https://evil.example",
        },
    )
    assert answer.headers["location"] == "/"


def test_an_idle_or_expired_session_is_refused(admin: ServerProcess) -> None:
    idle, expired = ConsoleUser(admin), ConsoleUser(admin)
    idle.sign_in(ADMIN, PASSWORD)
    expired.sign_in(ADMIN, PASSWORD)
    long_ago = datetime.now(timezone.utc) - timedelta(minutes=61)
    engine = make_engine(admin.database_url)
    with engine.begin() as connection:
        for person, values in ((idle, {"last_used_at": long_ago}), (expired, {"expires_at": long_ago})):
            token = person.http.cookies["homeroom_session"]
            connection.execute(
                update(SESSIONS).where(SESSIONS.c.token_hash == token_hash(token)).values(**values)
            )
    engine.dispose()
    assert idle.get("/").status_code == 303
    assert expired.get("/").status_code == 303
