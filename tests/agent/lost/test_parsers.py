"""Lost mode's parsers against real recorded outputs (tests/fixtures/lost/, sources in
tests/fixtures/corpus/SOURCES.md, "Lost mode"): addresses, gateway, nearby Wi-Fi in nmcli's terse
mode (escaped colons) and in netsh's display languages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.lost.parsers import (
    WifiNetwork,
    addresses_from_interfaces,
    gateway_from_ip_route,
    local_addresses_from_ip,
    split_terse,
    strongest_first,
    wifi_from_netsh,
    wifi_from_nmcli,
)
from contract.lost import WIFI_MAX
from tests.helpers.paths import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "lost"
# `nmcli -t dev wifi list` with no -f: nmcli's default fields for the wifi list, in order.
NMCLI_DEFAULT = ("IN-USE", "BSSID", "SSID", "MODE", "CHAN", "RATE", "SIGNAL", "BARS", "SECURITY")


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def test_addresses_and_gateway_from_this_machines_ip_json() -> None:
    """Recorded on this build machine (Debian 12, iproute2 6.1): loopback and link-local left out."""
    assert local_addresses_from_ip(fixture("linux-ip-addr-debian12.json")) == ["192.0.2.2", "fd00::2"]
    assert gateway_from_ip_route(fixture("linux-ip-route-debian12.json")) == "192.0.2.1"


def test_no_default_route_and_damaged_json_give_nothing() -> None:
    routes = json.loads(fixture("linux-ip-route-debian12.json"))
    without_default = json.dumps([r for r in routes if r["dst"] != "default"])
    assert gateway_from_ip_route(without_default) is None
    assert gateway_from_ip_route("not json") is None
    assert local_addresses_from_ip("[{]") == []
    assert local_addresses_from_ip('[{"addr_info": [{"local": "999.1.1.1"}]}]') == []


def test_terse_mode_escapes_colons_inside_a_value() -> None:
    assert split_terse(r"FE\:DC\:BA\:09\:87\:01:Cafe\:Bar:100:6") == [
        "FE:DC:BA:09:87:01",
        "Cafe:Bar",
        "100",
        "6",
    ]
    assert split_terse(r"AA\:BB\:CC\:DD\:EE\:FF:back\\slash::11") == [
        "AA:BB:CC:DD:EE:FF",
        "back\\slash",
        "",
        "11",
    ]


def test_nmcli_real_list_with_escaped_bssids_and_an_ssid_holding_both_escapes() -> None:
    networks = wifi_from_nmcli(fixture("linux-nmcli-dev-wifi-list.txt"), NMCLI_DEFAULT)
    assert len(networks) == 11
    by_bssid = {n.bssid: n for n in networks}
    assert by_bssid["fe:dc:ba:09:87:01"] == WifiNetwork("fe:dc:ba:09:87:01", "SSID-1", 100, 6)
    # "SSID-2-\\foo\:bar" on the wire is the name SSID-2-\foo:bar (the capture's own note says so).
    assert by_bssid["fe:dc:ba:09:87:02"].ssid == "SSID-2-\\foo:bar"
    assert by_bssid["fe:dc:ba:09:87:03"] == WifiNetwork("fe:dc:ba:09:87:03", "SSID-3", 87, 1)  # in use
    assert [n.signal for n in networks] == sorted((n.signal or 0 for n in networks), reverse=True)


def test_nmcli_with_the_agents_own_fields() -> None:
    """What the agent asks for (-f BSSID,SSID,SIGNAL,CHAN), as nmcli writes it: the recorded lines'
    values in that order; a hidden network ("--" in nmcli's words) has no name."""
    lines = [
        split_terse(line)
        for line in fixture("linux-nmcli-dev-wifi-list.txt").splitlines()
        if line.count(":") > 8
    ]
    escaped = "\n".join(
        ":".join(v.replace("\\", "\\\\").replace(":", "\\:") for v in (f[1], f[2], f[6], f[4])) for f in lines
    )
    networks = wifi_from_nmcli(escaped + "\n" + r"11\:22\:33\:44\:55\:66:--:40:36")
    assert len(networks) == 12
    assert WifiNetwork("11:22:33:44:55:66", "", 40, 36) in networks
    assert networks[0].signal == 100


@pytest.mark.parametrize(
    ("language", "count", "first"),
    [
        ("en", 8, WifiNetwork("fe:dc:ba:09:87:03", "SSID-1", 88, 6)),
        ("de", 9, WifiNetwork("fe:dc:ba:09:87:06", "SSID-4", 88, 6)),
        ("fr", 8, WifiNetwork("fe:dc:ba:09:87:07", "SSID-3", 81, 1)),
        ("es", 7, WifiNetwork("fe:dc:ba:09:87:06", "SSID-3", 90, 6)),
    ],
)
def test_netsh_in_each_recorded_language(language: str, count: int, first: WifiNetwork) -> None:
    """The German capture says Kanal and 2,4 GHz; the Spanish Señal and Canal; labels follow the
    display language, the SSID and BSSID headers never do."""
    parsed = wifi_from_netsh(fixture(f"win-netsh-networks-{language}.txt"))
    assert parsed.unseen is None
    assert len(parsed.networks) == count
    assert parsed.networks[0] == first
    assert all(n.channel is not None and n.signal is not None for n in parsed.networks)


def test_netsh_italian_and_a_hidden_network() -> None:
    parsed = wifi_from_netsh(fixture("win-netsh-networks-it.txt"))
    assert parsed.networks and all(n.channel for n in parsed.networks)
    assert any(n.ssid == "" for n in parsed.networks)  # "SSID 2 :" with nothing after it
    blank = wifi_from_netsh(fixture("win-netsh-networks-blank-ssid-en.txt"))
    assert WifiNetwork("fe:dc:ba:09:87:01", "", 14, 11) in blank.networks


def test_netsh_japanese_labels_from_a_piped_capture() -> None:
    parsed = wifi_from_netsh("SSID 1 : x\n" + fixture("win-netsh-networks-ja-excerpt.txt"))
    assert parsed.networks == [WifiNetwork("1a:e4:ce:72:7c:77", "x", 100, 11)]


def test_netsh_in_a_language_not_in_the_table_still_gives_bssids_and_signal() -> None:
    """Every label renamed (as a language we have no capture of would): the headers and the value
    ending in % are still read; the channel is not guessed."""
    text = fixture("win-netsh-networks-de.txt").replace("Signal", "Sygnał").replace("Kanal", "Kanał")
    parsed = wifi_from_netsh(text)
    assert len(parsed.networks) == 9
    assert parsed.networks[0] == WifiNetwork("fe:dc:ba:09:87:06", "SSID-4", 88, None)


def test_netsh_without_location_services_says_why() -> None:
    parsed = wifi_from_netsh(fixture("win-netsh-networks-location-denied-en.txt"))
    assert parsed.networks == []
    assert parsed.unseen is not None and "Location services" in parsed.unseen


def test_an_ssid_cannot_carry_control_characters_and_the_list_is_bounded() -> None:
    parsed = wifi_from_netsh(
        "SSID 1 : evil\x1b[31mred\u202e\n    BSSID 1 : 00:11:22:33:44:55\n   Signal : 5%\n"
    )
    assert parsed.networks[0].ssid == "evil[31mred"
    many = [WifiNetwork(f"00:00:00:00:{i // 256:02x}:{i % 256:02x}", "x", i % 101, 1) for i in range(300)]
    assert len(strongest_first(many)) == WIFI_MAX


def test_windows_and_macos_addresses_from_the_interfaces() -> None:
    interfaces = {
        "Wi-Fi": [(-1, "3c-52-82-11-22-33"), (2, "10.20.30.40"), (23, "fe80::1c2d%12"), (23, "2001:db8::5")],
        "Loopback Pseudo-Interface 1": [(2, "127.0.0.1"), (23, "::1")],
        "en0": [(30, "fe80::aa%en0"), (2, "169.254.1.1")],
    }
    assert addresses_from_interfaces(interfaces) == ["10.20.30.40", "2001:db8::5"]


def test_the_fixtures_are_the_recorded_bytes() -> None:
    """A fixture edited by hand would stop being a recording: their sizes as recorded."""
    sizes = {p.name: p.stat().st_size for p in Path(FIXTURES).iterdir()}
    assert sizes["win-netsh-networks-location-denied-en.txt"] == 522
    assert sizes["linux-nmcli-dev-wifi-list.txt"] == 899
