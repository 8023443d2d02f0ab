"""Firewall on Windows: Windows Defender Firewall must be on for the Domain, Private and Public profiles.

Windows picks a profile per network, so a laptop that is safe at school
(Domain) can be open on café Wi-Fi (Public): every profile must be on. The
ActiveStore is asked because it is what the firewall enforces, after Group
Policy and local settings are merged. `Enabled` is a GpoBoolean enum, which
Windows PowerShell 5.1's ConvertTo-Json would write as a number, so the
script turns it into its name ("True", "False", "NotConfigured").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from agent.checks.context import CheckContext
from agent.checks.results import Advice, Finding, broken, failed, passed, unknown
from agent.probes.windows import is_refusal

PROFILES = ("Domain", "Private", "Public")
PROFILE_SCRIPT = (
    "Get-NetFirewallProfile -PolicyStore ActiveStore -ErrorAction Stop"
    " | Select-Object Name, @{Name='Enabled'; Expression={[string]$_.Enabled}}"
    " | ConvertTo-Json -Compress"
)
PROFILE_COMMAND = ["powershell.exe", "-NoProfile", "-NonInteractive", "-Command", PROFILE_SCRIPT]

_ON = {"true", "1"}
_OFF = {"false", "0"}


@dataclass(frozen=True)
class FirewallProfiles:
    """Profile name -> on (True), off (False) or not stated (None)."""

    states: dict[str, bool | None]

    def off(self) -> list[str]:
        return [name for name in PROFILES if self.states.get(name) is False]

    def unclear(self) -> list[str]:
        return [name for name in PROFILES if self.states.get(name) is None]


def _enabled(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().casefold()
    if text in _ON:
        return True
    if text in _OFF:
        return False
    return None


def parse_profiles(text: str) -> FirewallProfiles:
    """The profiles in the script's JSON: one object when Windows has one profile, else a list."""
    data = json.loads(text)
    items = [data] if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ValueError("firewall profile output is neither an object nor a list")
    states: dict[str, bool | None] = {}
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("Name"), str):
            states[item["Name"].capitalize()] = _enabled(item.get("Enabled"))
    return FirewallProfiles(states)


def remedy(off: list[str]) -> Advice:
    names = " and ".join(off)
    return Advice(
        f"Turn on the firewall for {names} networks: Settings → Privacy & security → Windows Security → "
        f"Firewall & network protection → choose {off[0]} network → turn Microsoft Defender Firewall On.",
        f"Ask your school's IT team to turn on the firewall on this laptop (it is off for {names} networks).",
        f"Set-NetFirewallProfile -Profile {','.join(off)} -Enabled True (and check Group Policy/Intune)",
    )


def decide(profiles: FirewallProfiles) -> Finding:
    evidence = {"profiles": {name: profiles.states.get(name) for name in PROFILES}}
    off = profiles.off()
    if off:
        return failed(f"the firewall is off for the {', '.join(off)} profile(s)", remedy(off), **evidence)
    unclear = profiles.unclear()
    if unclear:
        return unknown(
            f"Windows did not say whether the firewall is on for the {', '.join(unclear)} profile(s)",
            "Ask your school's IT team to check the Windows Firewall settings on this laptop.",
            **evidence,
        )
    return passed("the firewall is on for the Domain, Private and Public profiles", **evidence)


def check(ctx: CheckContext) -> Finding:
    output = ctx.probes.run(PROFILE_COMMAND, timeout=30.0, probe_id="windows.firewall.profiles")
    if is_refusal(output):
        return unknown(
            "reading the firewall profiles was refused: run as SYSTEM (the Homeroom service)",
            probe=output.describe(),
        )
    if not output.ok:
        return broken(f"could not read the firewall profiles: {output.describe()}")
    try:
        profiles = parse_profiles(output.stdout)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        return broken(f"unreadable firewall profile output: {exc}", output=output.stdout[:200])
    return decide(profiles)
