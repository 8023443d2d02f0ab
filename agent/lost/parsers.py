"""Pure parsers for what lost mode reads: text in, facts out. Nothing here runs a command.

Each is tested against real recorded outputs (tests/fixtures/lost/, sources in
tests/fixtures/corpus/SOURCES.md). Whatever cannot be read gives an empty answer, never an
exception: evidence with a gap still helps, and the gap is said in `unseen`.
"""

from __future__ import annotations

import ipaddress
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent.lost.netsh_languages import CHANNEL_LABELS, LOCATION_DENIED_MARK, SIGNAL_LABELS
from contract.lost import ADDRESSES_MAX, WIFI_MAX

SSID_MAX = 64  # 32 bytes on the air; escapes and odd encodings may show more characters
_MAC = re.compile(r"^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$")


@dataclass(frozen=True)
class WifiNetwork:
    bssid: str  # lower case, colon-separated
    ssid: str  # "" for a hidden network
    signal: int | None  # percent, 0-100
    channel: int | None

    def to_json(self) -> dict[str, Any]:
        return {"bssid": self.bssid, "ssid": self.ssid, "signal": self.signal, "channel": self.channel}


def normal_bssid(text: str) -> str | None:
    text = text.strip()
    if not _MAC.match(text):
        return None
    return text.replace("-", ":").lower()


def _percent(text: str) -> int | None:
    match = re.match(r"^\s*(\d{1,3})\s*%?\s*$", text)
    if not match:
        return None
    value = int(match.group(1))
    return value if 0 <= value <= 100 else None


def _small_int(text: str) -> int | None:
    match = re.match(r"^\s*(\d{1,4})\s*$", text)
    return int(match.group(1)) if match else None


def _printable(text: str) -> str:
    """An SSID as it may be sent: no control characters (anyone can name a network), bounded."""
    return "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")[:SSID_MAX]


def strongest_first(networks: Sequence[WifiNetwork]) -> list[WifiNetwork]:
    """Each BSSID once (its strongest sighting), strongest first, at most WIFI_MAX."""
    best: dict[str, WifiNetwork] = {}
    for network in networks:
        kept = best.get(network.bssid)
        if kept is None or (network.signal or -1) > (kept.signal or -1):
            best[network.bssid] = network
    ordered = sorted(best.values(), key=lambda n: (-(n.signal if n.signal is not None else -1), n.bssid))
    return ordered[:WIFI_MAX]


# --- Linux: ip -j addr / ip -j route ---------------------------------------------------------


def _json_list(text: str) -> list[Any]:
    try:
        data = json.loads(text)
    except ValueError:
        return []
    return data if isinstance(data, list) else []


def local_addresses_from_ip(text: str) -> list[str]:
    """`ip -j addr`: the addresses other machines could see this one by (not loopback, not link-local)."""
    found: list[str] = []
    for link in _json_list(text):
        if not isinstance(link, dict) or not isinstance(link.get("addr_info"), list):
            continue
        for info in link["addr_info"]:
            if not isinstance(info, dict) or info.get("scope") in ("host", "link"):
                continue
            address = _address(info.get("local"))
            if address and address not in found:
                found.append(address)
    return found[:ADDRESSES_MAX]


def _address(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = ipaddress.ip_address(value)
    except ValueError:
        return None
    if parsed.is_loopback or parsed.is_link_local:
        return None
    return str(parsed)


def gateway_from_ip_route(text: str) -> str | None:
    """`ip -j route`: the default route's gateway (the first one: the kernel's own order)."""
    for route in _json_list(text):
        if isinstance(route, dict) and route.get("dst") == "default":
            gateway = route.get("gateway")
            if isinstance(gateway, str):
                try:
                    return str(ipaddress.ip_address(gateway))
                except ValueError:
                    continue
    return None


def addresses_from_interfaces(interfaces: Mapping[str, Sequence[tuple[int, str]]]) -> list[str]:
    """psutil.net_if_addrs() reduced to (family number, address) per interface (Windows and macOS):
    IPv4 (2) and IPv6 (23 on Windows, 30 on macOS, 10 on Linux) addresses, as above."""
    found: list[str] = []
    for entries in interfaces.values():
        for family, value in entries:
            if family not in (2, 10, 23, 30):
                continue
            address = _address(value.split("%", 1)[0])  # IPv6 zone ids ("fe80::1%en0")
            if address and address not in found:
                found.append(address)
    return found[:ADDRESSES_MAX]


# --- Linux: nmcli -t ---------------------------------------------------------------------------

NMCLI_FIELDS = ("BSSID", "SSID", "SIGNAL", "CHAN")


def split_terse(line: str) -> list[str]:
    """One `nmcli -t` line into its fields: ':' separates, and inside a value nmcli writes ':' as
    '\\:' and '\\' as '\\\\' (nmcli(1), "--escape"), so a BSSID's colons do not split it."""
    fields: list[str] = []
    current: list[str] = []
    escaped = False
    for char in line:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ":":
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped:
        current.append("\\")
    fields.append("".join(current))
    return fields


def wifi_from_nmcli(text: str, fields: Sequence[str] = NMCLI_FIELDS) -> list[WifiNetwork]:
    """`nmcli -t -f <fields> dev wifi list`; a line with another number of fields is skipped."""
    index = {name: position for position, name in enumerate(fields)}
    networks: list[WifiNetwork] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        values = split_terse(line)
        if len(values) != len(fields):
            continue
        bssid = normal_bssid(values[index["BSSID"]])
        if bssid is None:
            continue
        ssid = values[index["SSID"]] if "SSID" in index else ""
        networks.append(
            WifiNetwork(
                bssid,
                _printable("" if ssid == "--" else ssid),
                _percent(values[index["SIGNAL"]]) if "SIGNAL" in index else None,
                _small_int(values[index["CHAN"]]) if "CHAN" in index else None,
            )
        )
    return strongest_first(networks)


# --- Windows: netsh wlan show networks mode=bssid ---------------------------------------------


def skeleton(label: str) -> str:
    """A label as the language tables hold it: case folded, accents dropped, spaces squeezed."""
    decomposed = unicodedata.normalize("NFKD", label.strip().casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.sub(r"\s+", " ", plain)


_HEADER = re.compile(r"^\s*(B?SSID)\s+\d+\s*:\s?(.*?)\s*$")
_LABELLED = re.compile(r"^\s*([^:]+?)\s*:\s*(.*?)\s*$")


@dataclass(frozen=True)
class NetshNetworks:
    networks: list[WifiNetwork]
    unseen: str | None = None  # why none could be listed, when that is known


def wifi_from_netsh(text: str) -> NetshNetworks:
    """Networks and their BSSIDs, in any display language: the `SSID n` and `BSSID n` headers are
    never translated; signal and channel come from the labels in netsh_languages (the signal also
    from the one value that ends in '%', for a language not in the table)."""
    if LOCATION_DENIED_MARK in text:
        return NetshNetworks(
            [],
            "Windows lists nearby Wi-Fi networks only while Location services are on "
            "(Settings > Privacy & security > Location), and they are off",
        )
    networks: list[WifiNetwork] = []
    ssid = ""
    current: dict[str, Any] | None = None

    def flush() -> None:
        if current is not None:
            networks.append(WifiNetwork(current["bssid"], ssid, current["signal"], current["channel"]))

    for line in text.splitlines():
        header = _HEADER.match(line)
        if header:
            if header.group(1) == "SSID":
                flush()
                current = None
                ssid = _printable(header.group(2))
            else:
                flush()
                bssid = normal_bssid(header.group(2))
                current = {"bssid": bssid, "signal": None, "channel": None} if bssid else None
            continue
        if current is None:
            continue
        labelled = _LABELLED.match(line)
        if not labelled:
            continue
        label, value = skeleton(labelled.group(1)), labelled.group(2)
        if label in SIGNAL_LABELS or (current["signal"] is None and value.endswith("%")):
            current["signal"] = _percent(value) if current["signal"] is None else current["signal"]
        elif label in CHANNEL_LABELS and current["channel"] is None:
            current["channel"] = _small_int(value)
    flush()
    return NetshNetworks(strongest_first(networks))
