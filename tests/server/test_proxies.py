"""Which peers' X-Forwarded-For the server believes: the list `serve` hands uvicorn."""

from __future__ import annotations

import pytest

from server.errors import CommandError
from server.proxies import DEFAULT_TRUSTED_PROXIES, trusted_proxies


def test_flags_win_then_the_environment_then_loopback() -> None:
    assert trusted_proxies(["10.0.0.5", "10.0.1.0/24"], "192.0.2.1") == ["10.0.0.5", "10.0.1.0/24"]
    assert trusted_proxies(None, " 192.0.2.1 , fd00::/64 ") == ["192.0.2.1", "fd00::/64"]
    assert trusted_proxies(None, None) == list(DEFAULT_TRUSTED_PROXIES) == ["127.0.0.1", "::1"]
    assert trusted_proxies(None, "  ") == ["127.0.0.1", "::1"]


def test_none_trusts_nobody_and_networks_are_normalised() -> None:
    assert trusted_proxies(["none"], None) == []
    assert trusted_proxies(None, "NONE") == []
    assert trusted_proxies(["10.0.0.77/24"], None) == ["10.0.0.0/24"]


@pytest.mark.parametrize("entry", ["*", "nginx.example.org", "10.0.0.300", "10.0.0.0/33"])
def test_what_would_trust_the_wrong_peers_is_refused_with_what_to_give(entry: str) -> None:
    with pytest.raises(CommandError) as refused:
        trusted_proxies([entry], None)
    assert repr(entry) in str(refused.value) and "10.0.0.5" in str(refused.value)


def test_none_mixed_with_addresses_is_refused() -> None:
    with pytest.raises(CommandError, match="`none` alone"):
        trusted_proxies(["none", "10.0.0.5"], None)


def test_serve_refuses_a_bad_trusted_proxy_before_starting(capsys: pytest.CaptureFixture[str]) -> None:
    from server.cli import main

    assert main(["serve", "--trusted-proxy", "*", "--database", "sqlite:////nonexistent/homeroom.db"]) == 2
    said = capsys.readouterr().err
    assert "trusted proxy '*'" in said and "Traceback" not in said
