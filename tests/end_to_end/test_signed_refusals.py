"""A laptop sets a record aside only on its own server's word.

A real server process signs its refusals of requests whose signature verified, with their status;
the agent's real transport (`make_transport`, over HTTP) moves a record aside on such a refusal and
keeps it queued when something else on the network refused it: a web filter's unsigned 403, a
refusal signed by another key. A 413 for a record over the protocol's limit counts unsigned (the
agent can see the size for itself).
"""

from __future__ import annotations

import http.server
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.server_link.client import ServerClient, make_transport
from agent.server_link.outbox import OutboxItem
from agent.server_link.sender import Delivered, Outcome, Rejected, RetryLater
from contract.wire import (
    API_PREFIX,
    HEADER_ANSWER_SIGNATURE,
    MAX_BODY_BYTES,
    answer_signature_valid,
    load_public_key,
    sign_answer,
)
from server.answer_signing import load_or_create_signing_key
from server.db.engine import make_engine
from tests.helpers.servers import ServerProcess, serving_http
from tests.helpers.signed_device import Device

SIGNOFF = {
    "user": "jsmith",
    "full_name": "Jo Smith",
    "policy_id": "aup-student",
    "policy_version": "a" * 64,
    "decision": "agree",
    "decided_at": "2026-12-01T08:00:00+00:00",
}


# The real server (`server`, tests/conftest.py) on SQLite: signing a refusal does not depend on the
# database, and both databases' hot paths answer through the same handlers.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def enrolled(server: ServerProcess, serial: str) -> Device:
    device = Device(server)
    device.identity = {**device.identity, "serial": serial, "hardware_uuid": str(uuid.uuid4())}
    device.identity["machine_id"] = uuid.uuid4().hex
    device.identity["macs"] = []
    answer = device.enrol(server.token())
    assert answer.status_code == 200, answer.text
    return device


def server_key(server: ServerProcess) -> str:
    engine = make_engine(server.database_url)
    try:
        return load_or_create_signing_key(engine).public_key
    finally:
        engine.dispose()


def signed_for(answer: requests.Response, key: str) -> bool:
    sent = dict(answer.request.headers)
    signature = answer.headers.get(HEADER_ANSWER_SIGNATURE, "")
    path = str(answer.request.path_url)
    return answer_signature_valid(
        load_public_key(key), signature, "POST", path, sent, answer.content, answer.status_code
    )


def test_the_server_signs_its_refusals_of_verified_requests_and_only_those(server: ServerProcess) -> None:
    key = server_key(server)
    device = enrolled(server, "REFUSE-1")

    # Refused by the body's checks, before the work: on a FastAPI route and on the hot path.
    for path, body in (("/signoffs", {"record_id": str(uuid.uuid4())}), ("/reports", {"report_id": 5})):
        refused = device.post(path, body)
        assert refused.status_code == 422, refused.text
        assert signed_for(refused, key), path
        as_accepted = answer_signature_valid(
            load_public_key(key),
            refused.headers[HEADER_ANSWER_SIGNATURE],
            "POST",
            f"{API_PREFIX}{path}",
            dict(refused.request.headers),
            refused.content,
        )
        assert not as_accepted, f"{path}: a signed refusal must not pass for a 200"

    # Refused by the work itself: another laptop sending a lost report under this one's record id.
    other = enrolled(server, "REFUSE-2")
    lost = {
        "record_id": str(uuid.uuid4()),
        "reporter": "jsmith",
        "reporter_name": "Jo Smith",
        "contact": "room 12",
        "device": {"by": "this", "value": ""},
        "kind": "stolen",
        "made_at": "2026-12-01T08:00:00+00:00",
    }
    first = device.post("/lost-reports", lost)
    assert first.status_code == 200, first.text
    taken = other.post("/lost-reports", lost)
    assert taken.status_code == 409 and "another report" in taken.text, taken.text
    assert signed_for(taken, key)

    # Not verified: a stranger's signature, an unknown device, a body over the limit. No signature.
    stranger = device.post(
        "/signoffs", {"record_id": str(uuid.uuid4()), **SIGNOFF}, key=Ed25519PrivateKey.generate()
    )
    assert stranger.status_code == 401
    device.device_id = "no-such-device"
    unknown = device.post("/heartbeat", {})
    assert unknown.status_code == 401
    device.device_id = other.device_id
    too_large = device.post("/reports", b"{" + b" " * (MAX_BODY_BYTES + 10) + b"}")
    assert too_large.status_code == 413
    for answer in (stranger, unknown, too_large):
        assert HEADER_ANSWER_SIGNATURE not in answer.headers, answer.status_code


class Filter:
    """What stands between a laptop and its server on a school network and answers in its place
    (a web filter, a captive portal): one status, body and headers for every POST."""

    def __init__(self) -> None:
        self.answer: tuple[int, bytes, dict[str, str]] = (403, b"<html>Blocked by the web filter</html>", {})
        self.sign_with: Ed25519PrivateKey | None = None
        self.seen: list[str] = []
        self.url = ""

    def handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.seen.append(self.path)
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, answer, headers = outer.answer
                if outer.sign_with is not None:
                    sent = dict(self.headers.items())
                    headers = {
                        HEADER_ANSWER_SIGNATURE: sign_answer(
                            outer.sign_with, "POST", self.path, sent, answer, status
                        )
                    }
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        return Handler


@pytest.fixture
def web_filter() -> Iterator[Filter]:
    running = Filter()
    with serving_http(running.handler()) as url:
        running.url = url
        yield running


def item(kind: str, body: dict[str, Any]) -> OutboxItem:
    return OutboxItem(1, str(body.get("record_id", "r")), kind, body, 0.0, 0, 0.0)


def send(url: str, device: Device, key: str, record: OutboxItem) -> tuple[Outcome, list[str]]:
    refused: list[str] = []
    transport = make_transport(
        ServerClient(url),
        device.key,
        device.device_id,
        lambda _item, _data: None,
        pinned_server_key=key,
        on_refused=lambda _item, reason: refused.append(reason),
    )
    return transport(record), refused


def test_a_record_is_set_aside_on_its_servers_signed_refusal_and_kept_on_anyone_elses(
    server: ServerProcess, web_filter: Filter
) -> None:
    key = server_key(server)
    device = enrolled(server, "REFUSE-3")
    bad_signoff = item("signoff", {"record_id": str(uuid.uuid4()), **SIGNOFF, "decision": "maybe"})
    good_signoff = item("signoff", {"record_id": str(uuid.uuid4()), **SIGNOFF})

    # The district's server refuses the record, and signs it: set aside for good.
    outcome, refused = send(server.url, device, key, bad_signoff)
    assert isinstance(outcome, Rejected) and outcome.reason.startswith("422"), outcome
    assert refused == []
    outcome, _ = send(server.url, device, key, good_signoff)
    assert isinstance(outcome, Delivered), outcome

    # A web filter's 403, unsigned: the record stays queued, nothing more is sent this round, and
    # the refusal is kept for IT. The same for a 400 and a 422 signed by a key that is not the pin.
    outcome, refused = send(web_filter.url, device, key, good_signoff)
    assert isinstance(outcome, RetryLater) and outcome.not_our_server, outcome
    assert "403" in outcome.reason and "stays queued" in outcome.reason
    assert refused and "not signed" in refused[0]
    web_filter.sign_with = Ed25519PrivateKey.generate()
    for status in (400, 422):
        web_filter.answer = (status, json.dumps({"detail": "no"}).encode(), {})
        outcome, refused = send(web_filter.url, device, key, good_signoff)
        assert isinstance(outcome, RetryLater) and outcome.not_our_server, (status, outcome)
        assert refused and "pinned at enrolment" in refused[0]

    # A 413, unsigned: it counts for a record over the protocol's limit (the agent sees the size),
    # not for one within it.
    web_filter.sign_with = None
    web_filter.answer = (413, b"<html>Request Entity Too Large</html>", {})
    outcome, _ = send(web_filter.url, device, key, good_signoff)
    assert isinstance(outcome, RetryLater) and outcome.not_our_server, outcome
    huge = item("signoff", {**good_signoff.body, "full_name": "x" * (MAX_BODY_BYTES + 1)})
    outcome, _ = send(web_filter.url, device, key, huge)
    assert isinstance(outcome, Rejected) and outcome.reason.startswith("413"), outcome
    assert len(web_filter.seen) == 5
