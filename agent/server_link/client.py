"""Talking to the server: enrolment, and the transport that delivers outbox items signed.

Every failure is sorted into one of three kinds the sender understands:
delivered, try again later (the network, a 5xx, 429, a clock the server
refuses, an unknown device that may be re-enrolled, a refusal the server did
not sign), or rejected for good (a 4xx, signed by the district's server, that
says the record itself is wrong: retrying cannot help).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.errors import EnrolmentError
from agent.messages import unreachable
from agent.server_link.address import check_server_address, transport_of
from agent.server_link.answers import Accepted, judge_answer
from agent.server_link.outbox import OutboxItem
from agent.server_link.sender import Delivered, Outcome, Rejected, RetryLater, parse_retry_after
from contract.wire import API_PREFIX, MAX_BODY_BYTES, load_public_key, public_key_text, signed_headers

KIND_PATHS = {
    "report": "/reports",
    "heartbeat": "/heartbeat",
    "signoff": "/signoffs",
    "approval_request": "/approvals",
    "lost_report": "/lost-reports",
    "lost_evidence": "/lost-evidence",
}
RETRYABLE_4XX = {401, 404, 408, 409, 425, 429}
USER_AGENT = "homeroom-agent"


@dataclass(frozen=True)
class Enrolment:
    device_id: str
    group: str
    replaced_key: bool
    server_public_key: str  # pinned by the caller: later answers must be signed by it
    # The server's words when the laptop's record is enrolled with another key and this claim waits
    # (202): for the old key to fall silent, or for IT. The key is kept: it works once accepted.
    waiting: str | None = None


def _message(response: requests.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list):  # pydantic's list of field errors
        detail = "; ".join(f"{'.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}" for d in detail[:5])
    return str(detail or response.text[:200] or response.reason)


class ServerClient:
    """Refuses, before connecting, an address that is plain http to another host (agent.server_link.address).

    Redirects are not followed: a redirect would take the laptop to an address nobody checked.
    """

    def __init__(
        self,
        base_url: str,
        timeout: float = 30.0,
        session: requests.Session | None = None,
        allow_insecure_http: bool = False,
    ) -> None:
        check_server_address(base_url, allow_insecure_http)
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT

    def enrol(
        self, token: str, key: Ed25519PrivateKey, identity: dict[str, Any], agent_version: str
    ) -> Enrolment:
        body = {
            "token": token,
            "public_key": public_key_text(key),
            "identity": identity,
            "agent_version": agent_version,
        }
        try:
            response = self.session.post(
                f"{self.base_url}{API_PREFIX}/enrol", json=body, timeout=self.timeout, allow_redirects=False
            )
        except requests.RequestException as exc:
            raise EnrolmentError(unreachable(self.base_url, exc)) from None
        if response.status_code not in (200, 202):
            raise EnrolmentError(
                f"the server refused enrolment ({response.status_code}): {_message(response)}"
            )
        try:
            data = response.json()
            server_key = str(data.get("server_public_key") or "")
            # 202: the laptop's record is enrolled with another key and this claim waits.
            waiting = _message(response) if response.status_code == 202 else None
            enrolment = Enrolment(
                str(data["device_id"]),
                str(data["group"]),
                bool(data.get("replaced_key", False)),
                server_key,
                waiting=waiting,
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            raise EnrolmentError(
                f"{self.base_url} answered enrolment with something else than Homeroom's answer"
            ) from None
        try:
            load_public_key(server_key)
        except ValueError:
            raise EnrolmentError(
                f"{self.base_url} sent no usable signing key, so its answers could not be trusted: "
                "upgrade the Homeroom server, then enrol again"
            ) from None
        return enrolment

    def post_signed(
        self, path: str, body: dict[str, Any], key: Ed25519PrivateKey, device_id: str, now: float
    ) -> requests.Response:
        payload = json.dumps(body, separators=(",", ":")).encode()
        full_path = f"{API_PREFIX}{path}"
        headers = signed_headers(key, device_id, "POST", full_path, payload, now)
        headers["Content-Type"] = "application/json"
        return self.session.post(
            f"{self.base_url}{full_path}",
            data=payload,
            headers=headers,
            timeout=self.timeout,
            allow_redirects=False,
        )


def judge_refusal(response: requests.Response, pinned_key: str, path: str, may_pin: bool) -> str | None:
    """Why a refusal does not count (None when it does): the agent sets a record aside only when its
    own server signed the refusal with its status (server.api.signed_refusals), not when a web
    filter, a captive portal or someone on the network answered 403 in its place. A 413 for a body
    over the protocol's limit counts unsigned (the server refuses it before it can tell who sent
    it, and nginx may answer first): the agent can see for itself that the record is too large."""
    sent = response.request.body
    if response.status_code == 413 and isinstance(sent, bytes) and len(sent) > MAX_BODY_BYTES:
        return None
    verdict = judge_answer(
        pinned_key,
        "POST",
        f"{API_PREFIX}{path}",
        response.request.headers,
        response.content,
        response.headers,
        may_pin=may_pin,
        status=response.status_code,
    )
    # A key offered with a refusal is not pinned: only a 2xx pins (a refusal is trusted once, no more).
    return None if isinstance(verdict, Accepted) else verdict.reason


def make_transport(
    client: ServerClient,
    key: Ed25519PrivateKey,
    device_id: str,
    on_response: Callable[[OutboxItem, dict[str, Any]], None],
    clock: Callable[[], float] = time.time,
    pinned_server_key: str = "",
    on_refused: Callable[[OutboxItem, str], None] = lambda _item, _reason: None,
    on_pin: Callable[[str], None] = lambda _key: None,
) -> Callable[[OutboxItem], Outcome]:
    """A sender transport: one outbox item, one signed POST, one outcome.

    A 2xx counts only when signed by the pinned server key (agent.server_link.answers): otherwise
    nothing in it is applied and the record stays queued (it may never have reached the real server),
    and the sender sends nothing more this round (RetryLater.not_our_server).
    """
    pinned = [pinned_server_key]
    may_pin = transport_of(client.base_url) != "insecure http"

    def send(item: OutboxItem) -> Outcome:
        path = KIND_PATHS.get(item.kind)
        if path is None:
            return Rejected(f"no endpoint for {item.kind!r} records")
        try:
            response = client.post_signed(path, item.body, key, device_id, clock())
        except requests.RequestException as exc:
            return RetryLater(None, f"cannot reach the server: {type(exc).__name__}")
        status = response.status_code
        if 200 <= status < 300:
            verdict = judge_answer(
                pinned[0],
                "POST",
                f"{API_PREFIX}{path}",
                response.request.headers,
                response.content,
                response.headers,
                may_pin=may_pin,
            )
            if not isinstance(verdict, Accepted):
                on_refused(item, verdict.reason)
                return RetryLater(
                    None, f"answer refused, nothing in it applied: {verdict.reason}", not_our_server=True
                )
            if verdict.pin:
                on_pin(verdict.pin)
                pinned[0] = verdict.pin
            try:
                data = response.json()
            except ValueError:
                data = {}
            on_response(item, data if isinstance(data, dict) else {})
            return Delivered()
        if status >= 500 or status in RETRYABLE_4XX or 300 <= status < 400:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), clock())
            return RetryLater(retry_after, f"{status}: {_message(response)}")
        refusal = judge_refusal(response, pinned[0], path, may_pin)
        if refusal is not None:
            on_refused(item, refusal)
            return RetryLater(
                None,
                f"a {status} not from this district's server, so the record stays queued: {refusal}",
                not_our_server=True,
            )
        return Rejected(f"{status}: {_message(response)}")

    return send
