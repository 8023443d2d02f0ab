"""What lost mode collects to help find the laptop, and what it could not collect and why.

Called by the service only while in lost mode (agent.lost.mode): outside it nothing here runs.
The body is `POST /api/v1/lost-evidence` of contract/lost.py; the server adds the public
address it saw the request come from. Commands go through the probes (no shell, a timeout);
their answers are read by the pure parsers in agent.lost.parsers.

Per OS:
- Linux: `ip -j addr` and `ip -j route` (addresses, gateway); `nmcli -t -f
  BSSID,SSID,SIGNAL,CHAN dev wifi list` (NetworkManager's last scan: no new scan is forced).
- Windows: addresses from the network interfaces (psutil); `netsh wlan show networks mode=bssid`
  (labels in the display language: agent.lost.netsh_languages; Windows 11 asks for Location
  services first, which `unseen` then says).
- macOS: addresses from the network interfaces; no Wi-Fi list (said in `unseen`): the `airport`
  tool is gone (macOS 14.4), and CoreWLAN gives BSSIDs and names only to an app the user has
  allowed Location Services, which a background service cannot be.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from agent.lost.parsers import (
    WifiNetwork,
    addresses_from_interfaces,
    gateway_from_ip_route,
    local_addresses_from_ip,
    wifi_from_netsh,
    wifi_from_nmcli,
)
from agent.probes import Probes

MACOS_NO_WIFI = (
    "nearby Wi-Fi networks: macOS has no command that lists them any more (airport was removed in "
    "macOS 14.4), and it shows access points' BSSIDs and names only to an app the user has allowed "
    "Location Services, which a background service cannot ask for"
)
NO_GATEWAY_READER = "the gateway: read on Linux only (ip route); not on this OS yet"


@dataclass(frozen=True)
class HostFacts:
    """What psutil says about the machine, passed in so evidence can be built from any answers."""

    interfaces: dict[str, list[tuple[int, str]]]
    users: list[str]
    boot_time: float | None


def host_facts() -> HostFacts:
    import psutil

    try:
        interfaces = {
            name: [(int(entry.family), str(entry.address)) for entry in entries]
            for name, entries in psutil.net_if_addrs().items()
        }
    except (OSError, RuntimeError):
        interfaces = {}
    try:
        users = [user.name for user in psutil.users() if user.name]
    except (OSError, RuntimeError):
        users = []
    try:
        boot: float | None = float(psutil.boot_time())
    except (OSError, RuntimeError):
        boot = None
    return HostFacts(interfaces, users, boot)


def _wifi_linux(probes: Probes, unseen: list[str]) -> list[WifiNetwork]:
    found = probes.run(
        ["nmcli", "-t", "-f", "BSSID,SSID,SIGNAL,CHAN", "dev", "wifi", "list"],
        timeout=20,
        probe_id="lost.linux.nmcli_wifi",
    )
    if found.missing:
        unseen.append("nearby Wi-Fi networks: NetworkManager (nmcli) is not installed")
        return []
    if not found.ok:
        unseen.append(f"nearby Wi-Fi networks: {found.describe()}")
        return []
    networks = wifi_from_nmcli(found.stdout)
    if not networks:
        unseen.append("nearby Wi-Fi networks: NetworkManager saw none (no Wi-Fi adapter, or it is off)")
    return networks


def _wifi_windows(probes: Probes, unseen: list[str]) -> list[WifiNetwork]:
    found = probes.run(
        ["netsh", "wlan", "show", "networks", "mode=bssid"], timeout=20, probe_id="lost.windows.netsh_wlan"
    )
    parsed = wifi_from_netsh(found.stdout)
    if parsed.unseen:
        unseen.append(f"nearby Wi-Fi networks: {parsed.unseen}")
    elif not found.ok and not parsed.networks:
        unseen.append(f"nearby Wi-Fi networks: {found.describe()} (no Wi-Fi adapter, or WLAN AutoConfig off)")
    elif not parsed.networks:
        unseen.append("nearby Wi-Fi networks: Windows listed none (no Wi-Fi adapter, or it is off)")
    return parsed.networks


def collect(
    probes: Probes,
    os_name: str,
    case_id: str,
    facts: HostFacts,
    now: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """One evidence record, as contract/lost.py shapes it."""
    unseen: list[str] = []
    gateway: str | None = None
    addresses_read = True
    if os_name == "linux":
        listed = probes.run(["ip", "-j", "addr"], 10, "lost.linux.ip_addr")
        addresses_read = listed.ok
        addresses = local_addresses_from_ip(listed.stdout)
        routes = probes.run(["ip", "-j", "route"], 10, "lost.linux.ip_route")
        gateway = gateway_from_ip_route(routes.stdout)
        if not listed.ok or not routes.ok:
            unseen.append(f"addresses and gateway: {(routes if listed.ok else listed).describe()}")
        elif gateway is None:
            unseen.append("the gateway: no default route (the laptop is not connected to a network)")
        wifi = _wifi_linux(probes, unseen)
    else:
        addresses = addresses_from_interfaces(facts.interfaces)
        unseen.append(NO_GATEWAY_READER)
        if os_name == "windows":
            wifi = _wifi_windows(probes, unseen)
        else:
            unseen.append(MACOS_NO_WIFI)
            wifi = []
    if not addresses and addresses_read:
        unseen.append("local addresses: none but loopback (the laptop is not connected to a network)")
    uptime = None
    if facts.boot_time is not None:
        uptime = max(0, int(now() - facts.boot_time))
    else:
        unseen.append("uptime: the OS did not say when it started")
    user = facts.users[0] if facts.users else None
    if user is None:
        unseen.append("the logged-in user: nobody is signed in")
    return {
        "record_id": uuid.uuid4().hex,
        "case_id": case_id,
        "collected_at": datetime.now(timezone.utc).isoformat(),
        "local_addresses": addresses,
        "gateway": gateway,
        "wifi": [network.to_json() for network in wifi],
        "logged_in_user": user[:200] if user else None,
        "uptime_seconds": uptime,
        "unseen": [why[:500] for why in unseen],
    }
