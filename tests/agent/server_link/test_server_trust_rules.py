"""The agent's two trust rules as pure decisions: which addresses it talks to, and which answers count.

The real processes performing the attacks are in tests/end_to_end/test_server_trust.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.config import load_agent_config
from agent.errors import InsecureServerAddress
from agent.server_link.address import check_server_address, transport_of
from agent.server_link.answers import Accepted, Refused, RefusedAnswers, judge_answer
from contract.errors import ConfigError
from contract.wire import (
    HEADER_ANSWER_SIGNATURE,
    HEADER_REQUEST_ID,
    HEADER_SERVER_KEY,
    public_key_text,
    sign_answer,
    signed_headers,
)

PATH = "/api/v1/heartbeat"


@pytest.mark.parametrize(
    "url",
    [
        "https://homeroom.district.example",
        "https://10.1.2.3:8443/homeroom",
        "http://127.0.0.1:8000",
        "http://127.9.9.9",
        "http://[::1]:8000",
        "http://localhost:8000",
        "http://LOCALHOST.",
    ],
)
def test_https_anywhere_and_http_to_this_machine_are_accepted(url: str) -> None:
    check_server_address(url, allow_insecure_http=False)


@pytest.mark.parametrize(
    "url",
    [
        "http://homeroom.district.example",
        "http://10.0.0.5:8000",
        "http://[fe80::1]",
        "http://127.0.0.1.evil.example",
    ],
)
def test_http_to_another_host_is_refused_saying_why_and_what_to_do(url: str) -> None:
    with pytest.raises(InsecureServerAddress) as refused:
        check_server_address(url, allow_insecure_http=False)
    message = str(refused.value)
    assert f"refusing {url}" in message and "anyone on the network" in message
    assert "https://" in message and "allow_insecure_http = true" in message
    check_server_address(url, allow_insecure_http=True)  # the district said its network is trusted
    assert transport_of(url) == "insecure http"


@pytest.mark.parametrize("url", ["ftp://homeroom.example", "homeroom.example", "https://", "http://[::1"])
def test_what_is_not_a_server_address_is_refused_even_when_http_is_allowed(url: str) -> None:
    with pytest.raises(InsecureServerAddress, match="not a server address"):
        check_server_address(url, allow_insecure_http=True)


def test_allow_insecure_http_is_read_from_agent_toml_and_checked(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    assert load_agent_config(Path("config/agent.toml")).allow_insecure_http is False
    config.write_text("[server]\nallow_insecure_http = true\n", encoding="utf-8")
    assert load_agent_config(config).allow_insecure_http is True
    config.write_text('[server]\nurl = "http://x"\nallow_insecure_http = "yes"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as wrong:
        load_agent_config(config)
    assert ":3" in str(wrong.value) and "true or false" in str(wrong.value)


SERVER = Ed25519PrivateKey.generate()
DEVICE = Ed25519PrivateKey.generate()
BODY = b'{"requirements":{"etag":"e","content":"[checks]\\nenabled = []\\n"}}'


def request_headers() -> dict[str, str]:
    return signed_headers(DEVICE, "dev1", "POST", PATH, b"{}", 1_800_000_000.0)


def signed_by(key: Ed25519PrivateKey, sent: dict[str, str], body: bytes = BODY) -> dict[str, str]:
    return {
        HEADER_ANSWER_SIGNATURE: sign_answer(key, "POST", PATH, sent, body),
        HEADER_SERVER_KEY: public_key_text(key),
    }


def test_only_an_answer_signed_by_the_pinned_key_for_this_request_counts() -> None:
    pinned = public_key_text(SERVER)
    sent = request_headers()
    assert judge_answer(pinned, "POST", PATH, sent, BODY, signed_by(SERVER, sent)) == Accepted()
    unsigned = judge_answer(pinned, "POST", PATH, sent, BODY, {})
    assert isinstance(unsigned, Refused) and "not signed" in unsigned.reason
    stranger = judge_answer(pinned, "POST", PATH, sent, BODY, signed_by(Ed25519PrivateKey.generate(), sent))
    assert isinstance(stranger, Refused) and "pinned at enrolment" in stranger.reason
    changed = judge_answer(pinned, "POST", PATH, sent, BODY + b" ", signed_by(SERVER, sent))
    assert isinstance(changed, Refused)
    earlier = request_headers()  # a genuine answer to an earlier request, replayed
    replayed = judge_answer(pinned, "POST", PATH, sent, BODY, signed_by(SERVER, earlier))
    assert earlier[HEADER_REQUEST_ID] != sent[HEADER_REQUEST_ID] and isinstance(replayed, Refused)
    elsewhere = judge_answer(pinned, "POST", "/api/v1/reports", sent, BODY, signed_by(SERVER, sent))
    assert isinstance(elsewhere, Refused)
    damaged = judge_answer("not a key", "POST", PATH, sent, BODY, signed_by(SERVER, sent))
    assert isinstance(damaged, Refused) and "enrol this laptop again" in damaged.reason


def test_a_refusal_counts_only_for_the_status_it_was_signed_with() -> None:
    """A signed 200 cannot be relabelled a 403 (the record would be set aside), nor a signed 403
    a 200 or a 422: the status is signed under a scheme of its own for every answer outside 2xx."""
    pinned = public_key_text(SERVER)
    sent = request_headers()
    refusal = b'{"detail":"refused"}'
    signed_403 = {HEADER_ANSWER_SIGNATURE: sign_answer(SERVER, "POST", PATH, sent, refusal, 403)}
    assert judge_answer(pinned, "POST", PATH, sent, refusal, signed_403, status=403) == Accepted()
    for status in (200, 422, 400):
        relabelled = judge_answer(pinned, "POST", PATH, sent, refusal, signed_403, status=status)
        assert isinstance(relabelled, Refused), status
    signed_200 = signed_by(SERVER, sent)
    assert judge_answer(pinned, "POST", PATH, sent, BODY, signed_200, status=201) == Accepted()
    assert isinstance(judge_answer(pinned, "POST", PATH, sent, BODY, signed_200, status=403), Refused)
    assert isinstance(judge_answer(pinned, "POST", PATH, sent, refusal, {}, status=403), Refused)


def test_an_agent_without_a_pin_pins_the_first_signed_answer_but_not_over_plain_http() -> None:
    sent = request_headers()
    first = judge_answer("", "POST", PATH, sent, BODY, signed_by(SERVER, sent))
    assert first == Accepted(pin=public_key_text(SERVER))
    over_http = judge_answer("", "POST", PATH, sent, BODY, signed_by(SERVER, sent), may_pin=False)
    assert isinstance(over_http, Refused) and "enrol this laptop again" in over_http.reason
    forged = signed_by(SERVER, sent)
    forged[HEADER_SERVER_KEY] = public_key_text(Ed25519PrivateKey.generate())
    assert isinstance(judge_answer("", "POST", PATH, sent, BODY, forged), Refused)
    assert isinstance(judge_answer("", "POST", PATH, sent, BODY, {HEADER_ANSWER_SIGNATURE: "AAAA"}), Refused)


def test_refusals_are_kept_for_status_and_carried_to_it_once(tmp_path: Path) -> None:
    refused = RefusedAnswers(tmp_path)
    assert refused.pending() is None
    refused.record("not signed", "http://127.0.0.1:1", "2026-12-01T10:00:00+00:00")
    refused.record("x" * 2000, "http://127.0.0.1:1", "2026-12-01T10:05:00+00:00")
    told = refused.pending()
    assert told is not None and told["count"] == 2 and told["first_at"].startswith("2026-12-01T10:00")
    assert len(told["last_reason"]) == 500  # the server's field limit
    refused.record("again", "http://127.0.0.1:1", "2026-12-01T10:06:00+00:00")  # before it is queued
    refused.carried(told)
    left = refused.pending()
    assert left is not None and left["count"] == 1 and left["last_reason"] == "again"
    refused.carried(left)
    assert refused.pending() is None
    assert json.loads((tmp_path / "refused-answers.json").read_text())["total"] == 3


def test_the_service_keeps_checking_but_sends_nothing_to_a_refused_address(
    state_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from agent.server_link.keys import open_key_store
    from agent.service import EnrolmentRecord, write_enrolment
    from tests.helpers.agent_service import Clock, service

    open_key_store(state_dir).save(Ed25519PrivateKey.generate())
    write_enrolment(
        state_dir, EnrolmentRecord("http://192.0.2.2:9", "dev1", "g", "2026-12-01T00:00:00+00:00")
    )
    loop = service(state_dir, Clock())
    first = loop.cycle()
    second = loop.cycle(force_report=True)
    assert first.checked and first.reported and first.drained is None and second.drained is None
    assert second.queued_after == 2, "the records wait for a trusted address"
    refusals = [r for r in caplog.records if "not sending: refusing http://192.0.2.2:9" in r.getMessage()]
    assert len(refusals) == 1, "said once, not every cycle"
