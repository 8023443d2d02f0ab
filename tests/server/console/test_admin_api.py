"""The admin API with per-user tokens, against a real server on SQLite and PostgreSQL with devices
enrolled and reporting in two schools: every endpoint read with each role's token over real HTTP,
what a technician's token cannot reach, revoked and disabled users' tokens, a viewer's token
changing nothing, bad parameters, the OpenAPI schema, and the audit trail of tokens and exports."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance, status_code_conformance
from sqlalchemy import select

from server.console.tables import API_TOKENS
from server.db.engine import make_engine
from tests.helpers.console import ConsoleUser, create_user, csrf_of, module_server, reporting_device
from tests.helpers.servers import ServerProcess
from tests.helpers.signed_device import Device, heartbeat

PASSWORD = "a long enough password"
LINCOLN, WASHINGTON = "Lincoln High", "Washington Elementary"
API = "/api/v1/admin"
READ_ENDPOINTS = ("/overview", "/devices", "/devices.csv", "/signoffs", "/audit")


@dataclass
class Fleet:
    server: ServerProcess
    lincoln: list[str]
    washington: list[str]
    lincoln_laptop: Device
    washington_laptop: Device
    tokens: dict[str, str]  # e-mail -> API token


def token_for(server: ServerProcess, email: str, name: str = "dashboard") -> str:
    done = server.cli("users", "token", "create", email, "--name", name)
    assert done.returncode == 0, done.stderr
    (token,) = [line for line in done.stdout.splitlines() if line.startswith("hrk_")]
    return token


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fleet(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    for server in module_server(request, tmp_path_factory):
        lincoln_token, washington_token = server.token(LINCOLN), server.token(WASHINGTON)
        first = reporting_device(server, lincoln_token, "lincoln-lt01", "LIN001", "pass")
        second = reporting_device(server, lincoln_token, '=HYPERLINK("http://x")', "LIN002", "fail")
        wash = reporting_device(server, washington_token, "wash-lt01", "WAS001", "fail")
        people = {
            "admin@district.example": ("district_admin", (), False),
            "tech@lincoln.example": ("technician", (LINCOLN,), False),
            "principal@washington.example": ("viewer", (WASHINGTON,), False),
            "auditor@district.example": ("viewer", (), True),
        }
        for email, (role, schools, district) in people.items():
            create_user(server, email, PASSWORD, role, schools, district)
        tokens = {email: token_for(server, email) for email in people}
        yield Fleet(server, [first.device_id, second.device_id], [wash.device_id], first, wash, tokens)


def call(
    fleet: Fleet, email_or_token: str, path: str, method: str = "GET", **kwargs: Any
) -> requests.Response:
    token = fleet.tokens.get(email_or_token, email_or_token)
    return requests.request(
        method,
        fleet.server.url + API + path,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        allow_redirects=False,
        **kwargs,
    )


def hostnames_in_csv(answer: requests.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    return sorted(row["hostname"] for row in csv.DictReader(io.StringIO(answer.text)))


ADMIN, TECH, PRINCIPAL, AUDITOR = (
    "admin@district.example",
    "tech@lincoln.example",
    "principal@washington.example",
    "auditor@district.example",
)


def test_the_schema_documents_every_endpoint_with_the_bearer_scheme(fleet: Fleet) -> None:
    schema = requests.get(fleet.server.url + "/openapi.json", timeout=30).json()
    assert schema["components"]["securitySchemes"]["api_token"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "hrk_…",
        "description": schema["components"]["securitySchemes"]["api_token"]["description"],
    }
    operations = {
        (path, method): operation
        for path, methods in schema["paths"].items()
        if path.startswith(API)
        for method, operation in methods.items()
    }
    assert set(operations) == {
        (API + "/overview", "get"),
        (API + "/devices", "get"),
        (API + "/devices.csv", "get"),
        (API + "/devices/{device_id}", "get"),
        (API + "/devices/{device_id}/check-now", "post"),
        (API + "/signoffs", "get"),
        (API + "/audit", "get"),
    }
    for (path, _method), operation in operations.items():
        assert operation["security"] == [{"api_token": []}], path
        assert "401" in operation["responses"], path
    listed = schema["paths"][API + "/devices"]["get"]
    assert {p["name"] for p in listed["parameters"]} == {"q", "school", "os", "audience", "page"}
    assert "DeviceListOut" in schema["components"]["schemas"]


def test_an_administrators_token_reads_every_endpoint(fleet: Fleet) -> None:
    overview = call(fleet, ADMIN, "/overview").json()
    assert (overview["total"], overview["compliant"], overview["failing"]["firewall"]) == (3, 1, 2)
    listed = call(fleet, ADMIN, "/devices").json()
    assert (listed["total"], listed["page"], listed["page_size"]) == (3, 0, 50)
    names = [d["hostname"] for d in listed["devices"]]
    assert names == sorted(names) and "wash-lt01" in names  # the Devices page's order
    one = listed["devices"][0]
    assert set(one) == {"id", "hostname", "serial", "school", "os", "last_seen", "overall", "checks"}
    assert one["checks"]["firewall"] in ("pass", "fail") and one["last_seen"] is not None
    assert [d["serial"] for d in call(fleet, ADMIN, "/devices", params={"q": "was0"}).json()["devices"]] == [
        "WAS001"
    ]
    assert call(fleet, ADMIN, "/devices", params={"school": LINCOLN}).json()["total"] == 2
    assert call(fleet, ADMIN, "/devices", params={"page": 1}).json()["devices"] == []
    detail = call(fleet, ADMIN, f"/devices/{fleet.washington[0]}").json()
    assert detail["hostname"] == "wash-lt01" and detail["school"] == WASHINGTON
    assert {r["id"] for r in detail["results"]} >= {"firewall", "antivirus"}
    assert hostnames_in_csv(call(fleet, ADMIN, "/devices.csv")) == sorted(
        ['\'=HYPERLINK("http://x")', "lincoln-lt01", "wash-lt01"]  # a formula is text in a spreadsheet
    )
    assert call(fleet, ADMIN, "/signoffs").json()["total"] >= 0
    entries = call(fleet, ADMIN, "/audit", params={"q": "token"}).json()["entries"]
    assert {e["action"] for e in entries} >= {"api_token.created"}
    assert call(fleet, AUDITOR, "/audit").status_code == 200  # a district-wide viewer reads it too


def test_a_technicians_token_sees_only_their_schools_by_every_endpoint(fleet: Fleet) -> None:
    other = fleet.washington[0]
    assert call(fleet, TECH, "/overview").json()["total"] == 2
    listed = call(fleet, TECH, "/devices").json()
    assert listed["total"] == 2 and {d["school"] for d in listed["devices"]} == {LINCOLN}
    for search in ("wash", "WAS001", "wash-lt01"):
        assert call(fleet, TECH, "/devices", params={"q": search}).json()["total"] == 0
        assert hostnames_in_csv(call(fleet, TECH, "/devices.csv", params={"q": search})) == []
    assert hostnames_in_csv(call(fleet, TECH, "/devices.csv")) == sorted(
        ['\'=HYPERLINK("http://x")', "lincoln-lt01"]
    )
    guessed, missing = call(fleet, TECH, f"/devices/{other}"), call(fleet, TECH, "/devices/0000000000000000")
    assert guessed.status_code == missing.status_code == 404
    assert guessed.json() == missing.json()  # the same answer: nothing says the device exists
    assert call(fleet, TECH, f"/devices/{other}/check-now", "POST").status_code == 404
    for path in ("/overview", "/devices", "/devices.csv", "/signoffs"):
        refused = call(fleet, TECH, path, params={"school": WASHINGTON})
        assert refused.status_code == 403 and other not in refused.text, path
    rows = call(fleet, TECH, "/signoffs").json()["rows"]
    assert all(row["group"] == LINCOLN for row in rows)
    assert call(fleet, TECH, "/audit").status_code == 403  # it names every school's devices
    assert call(fleet, TECH, f"/devices/{fleet.lincoln[0]}").json()["school"] == LINCOLN

    # Acting on their own school's laptop: the command reaches it at its next heartbeat.
    asked = call(fleet, TECH, f"/devices/{fleet.lincoln[0]}/check-now", "POST")
    assert asked.status_code == 200 and asked.json() == {
        "device": fleet.lincoln[0],
        "command": "check_now",
        "queued": True,
    }
    answer = fleet.lincoln_laptop.post("/heartbeat", heartbeat())
    assert [c["command"] for c in answer.json()["commands"]] == ["check_now"]
    audit = call(fleet, ADMIN, "/audit", params={"q": "device.command"}).json()["entries"]
    assert any(e["actor"] == f"user:{TECH}" and fleet.lincoln[0] in e["detail"] for e in audit)


def test_a_viewers_token_changes_nothing(fleet: Fleet) -> None:
    own = fleet.washington[0]
    assert call(fleet, PRINCIPAL, "/overview").json()["total"] == 1
    assert call(fleet, PRINCIPAL, f"/devices/{own}").status_code == 200
    for viewer in (PRINCIPAL, AUDITOR):
        refused = call(fleet, viewer, f"/devices/{own}/check-now", "POST")
        assert refused.status_code == 403, refused.text
    answer = fleet.washington_laptop.post("/heartbeat", heartbeat())
    assert answer.json()["commands"] == []  # nothing was queued
    for path in READ_ENDPOINTS:
        assert call(fleet, PRINCIPAL, path, "POST").status_code == 405
        assert call(fleet, PRINCIPAL, path, "DELETE").status_code == 405


def test_no_token_a_wrong_one_a_revoked_one_or_a_disabled_users_get_401(fleet: Fleet) -> None:
    server = fleet.server
    create_user(server, "leaving@lincoln.example", PASSWORD, "technician", (LINCOLN,))
    kept, revoked = token_for(server, "leaving@lincoln.example"), token_for(server, "leaving@lincoln.example")
    assert call(fleet, kept, "/overview").status_code == call(fleet, revoked, "/overview").status_code == 200
    listing = server.cli("users", "token", "list", "leaving@lincoln.example", "--json")
    ids = [t["id"] for t in json.loads(listing.stdout)["tokens"]]
    assert server.cli("users", "token", "revoke", "leaving@lincoln.example", str(ids[1])).returncode == 0
    assert call(fleet, revoked, "/overview").status_code == 401
    assert call(fleet, kept, "/overview").status_code == 200

    assert server.cli("users", "disable", "leaving@lincoln.example").returncode == 0
    for path in READ_ENDPOINTS:
        answer = call(fleet, kept, path)
        assert answer.status_code == 401 and answer.headers["www-authenticate"].startswith("Bearer"), path
    assert server.cli("users", "enable", "leaving@lincoln.example").returncode == 0
    assert call(fleet, kept, "/overview").status_code == 401  # disabling revoked it for good

    url = server.url + API + "/devices"
    assert requests.get(url, timeout=30).status_code == 401
    for header in ("Bearer hrk_not-a-token", "Bearer ", "Basic YWRtaW46eA==", "Bearer " + "x" * 5000, "hrk_"):
        assert requests.get(url, headers={"Authorization": header}, timeout=30).status_code == 401, header
    # A console session opens nothing here: the API takes bearer tokens only.
    person = ConsoleUser(server)
    assert person.sign_in(ADMIN, PASSWORD).status_code == 303
    assert person.get(API + "/devices").status_code == 401
    assert (
        person.http.post(url.replace("/devices", f"/devices/{fleet.lincoln[0]}/check-now")).status_code == 401
    )


def test_bad_parameters_get_a_clean_4xx(fleet: Fleet) -> None:
    for path, params in (
        ("/devices", {"page": "-1"}),
        ("/devices", {"page": "abc"}),
        ("/devices", {"page": str(10**12)}),
        ("/devices", {"q": "x" * 300}),
        ("/devices", {"audience": "teachers"}),
        ("/devices.csv", {"school": "s" * 200}),
        ("/overview", {"not_seen_days": "0"}),
        ("/overview", {"not_seen_days": "ten"}),
        ("/signoffs", {"status": "bogus"}),
        ("/audit", {"page": "1.5"}),
    ):
        answer = call(fleet, ADMIN, path, params=params)
        assert answer.status_code == 422 and "detail" in answer.json(), (path, params, answer.text)
    for path in ("/devices/" + "a" * 65, "/devices/%00", "/devices/..%2F..%2Fetc", "/devices/x y"):
        assert call(fleet, ADMIN, path).status_code in (404, 422), path
    # NUL and odd text in a search are searched for, not a 500 (PostgreSQL refuses NUL).
    for text in ("\x00", "%_\\", "'; DROP TABLE devices; --", "caf\u00e9\u202e"):
        answer = call(fleet, ADMIN, "/devices", params={"q": text})
        assert answer.status_code == 200, (text, answer.text)
    assert call(fleet, ADMIN, "/devices", params={"school": "Nowhere\x00"}).json()["total"] == 0


def test_tokens_made_and_revoked_on_the_console_page(fleet: Fleet) -> None:
    create_user(fleet.server, "dash@district.example", PASSWORD, "viewer", district_wide=True)
    person = ConsoleUser(fleet.server)
    assert person.sign_in("dash@district.example", PASSWORD).status_code == 303
    page = person.get("/account/api-tokens")
    assert page.status_code == 200 and "You have no API tokens" in page.text
    assert person.post("/account/api-tokens", {"name": "wall screen"}).status_code == 403  # no CSRF token
    made = person.post("/account/api-tokens", {"csrf_token": person.csrf, "name": "wall screen"})
    assert made.status_code == 200
    token = made.text.split('id="new-token">', 1)[1].split("<", 1)[0]
    assert token.startswith("hrk_") and token not in person.get("/account/api-tokens").text  # shown once
    assert call(fleet, token, "/overview").json()["total"] == 3
    assert "wall screen" in person.get("/account/api-tokens").text
    refused = person.post("/account/api-tokens", {"csrf_token": person.csrf, "name": "\x1b[31mred"})
    assert refused.status_code == 400 and "control" in refused.text

    # Only one's own: someone else's token id is answered as one that does not exist.
    others = fleet.server.cli("users", "token", "list", ADMIN, "--json")
    admins_id = json.loads(others.stdout)["tokens"][0]["id"]
    assert (
        person.post(
            "/account/api-tokens/revoke", {"csrf_token": person.csrf, "token_id": str(admins_id)}
        ).status_code
        == 404
    )
    assert call(fleet, ADMIN, "/overview").status_code == 200
    assert (
        person.post("/account/api-tokens/revoke", {"csrf_token": person.csrf, "token_id": "x"}).status_code
        == 422
    )

    engine = make_engine(fleet.server.database_url)
    try:
        with engine.connect() as connection:
            stored = connection.execute(select(API_TOKENS).where(API_TOKENS.c.name == "wall screen")).one()
    finally:
        engine.dispose()
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in repr(tuple(stored))  # only its hash is kept
    revoke_form = csrf_of(person.get("/account/api-tokens").text)
    done = person.post("/account/api-tokens/revoke", {"csrf_token": revoke_form, "token_id": str(stored.id)})
    assert done.status_code == 200 and "revoked" in done.text
    assert call(fleet, token, "/overview").status_code == 401

    entries = call(fleet, ADMIN, "/audit", params={"q": "token"}).json()["entries"]
    mine = [
        (e["action"], e["actor"], e["address"]) for e in entries if "dash@district.example" in e["detail"]
    ]
    assert mine == [
        ("api_token.revoked", "user:dash@district.example", "127.0.0.1"),
        ("api_token.created", "user:dash@district.example", "127.0.0.1"),
    ]


def test_exports_and_command_line_tokens_are_audited(fleet: Fleet) -> None:
    hostnames_in_csv(call(fleet, AUDITOR, "/devices.csv", params={"q": "lincoln"}))
    entries = call(fleet, ADMIN, "/audit", params={"q": "exported"}).json()["entries"]
    latest = entries[0]
    assert (latest["action"], latest["actor"], latest["address"]) == (
        "devices.exported",
        f"user:{AUDITOR}",
        "127.0.0.1",
    )
    assert '"via": "api"' in latest["detail"] and '"search": "lincoln"' in latest["detail"]
    made = call(fleet, ADMIN, "/audit", params={"q": "token.created"}).json()["entries"]
    by_cli = [e for e in made if TECH in e["detail"]]
    assert by_cli and by_cli[0]["actor"] == "cli" and by_cli[0]["address"].startswith("command line: ")


def test_fuzzed_requests_with_a_real_token_never_get_a_500(fleet: Fleet) -> None:
    """Schemathesis, from the schema the server publishes, against every admin endpoint with the
    technician's token (so scope refusals are reached too): a documented 4xx or a valid 2xx."""
    schema = schemathesis.openapi.from_url(f"{fleet.server.url}/openapi.json")
    operations = [
        operation
        for operation in (result.ok() for result in schema.get_all_operations())
        if operation.path.startswith(API)
    ]
    assert len(operations) == 7
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case: Any) -> None:
            kwargs = case.as_transport_kwargs(base_url=fleet.server.url)
            kwargs.pop("timeout", None)
            kwargs["headers"] = {
                **(kwargs.get("headers") or {}),
                "Authorization": f"Bearer {fleet.tokens[TECH]}",
            }
            response = requests.request(**kwargs, timeout=30)
            case.validate_response(
                response, checks=[not_a_server_error, response_schema_conformance, status_code_conformance]
            )

        fuzz()
