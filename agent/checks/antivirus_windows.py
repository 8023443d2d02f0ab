"""Antivirus on Windows: a product Windows Security Center sees as on, with fresh signatures.

Security Center (root\\SecurityCenter2 AntiVirusProduct) lists every registered
antivirus, Microsoft Defender and third-party alike, so a district that uses
another product passes too. Its `productState` is undocumented by Microsoft;
the commonly documented decoding, checked against the values widely reported
from real machines, reads the low 16 bits as three nibbles:

    bits 12-15  product state   0 off, 1 on, 2 snoozed, 3 expired
    bits  8-11  owner           1 = Microsoft (Defender), 0 = third party
    bits  4-7   signatures      0 up to date, 1 out of date

e.g. 397568 = 0x061100 (Defender on, up to date), 393472 = 0x060100 (Defender
off), 266240 = 0x041000 (third-party on, up to date), 266256 = 0x041010
(third-party on, signatures out of date). Note that a middle byte of 0x11 is
"on, Microsoft-owned", not "expired": reading whole bytes mistakes a healthy
Defender for an expired one.

Security Center's "up to date" uses each product's own notion of fresh. For
Defender, `Get-MpComputerStatus` gives the real age, so the district's
`antivirus_max_signature_age_days` is applied to it. Windows Server has no
Security Center ("Invalid namespace"); there Defender alone is asked.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from agent.checks.context import CheckContext
from agent.checks.results import Advice, Finding, broken, failed, passed, unknown
from agent.probes import CommandOutput, cim_instances
from agent.probes.windows import is_absent_provider, is_refusal

SECURITY_CENTER = "root\\SecurityCenter2"
DEFENDER_SCRIPT = (
    "Get-MpComputerStatus -ErrorAction Stop"
    " | Select-Object AMServiceEnabled, AntivirusEnabled, RealTimeProtectionEnabled,"
    " AntivirusSignatureLastUpdated, AntivirusSignatureAge"
    " | ConvertTo-Json -Compress"
)
DEFENDER_COMMAND = ["powershell.exe", "-NoProfile", "-NonInteractive", "-Command", DEFENDER_SCRIPT]

PRODUCT_STATES = {0: "off", 1: "on", 2: "snoozed", 3: "expired"}
TURN_ON_PROTECTION = Advice(
    "Turn on virus protection: Settings → Privacy & security → Windows Security → Virus & threat "
    "protection → Manage settings → turn Real-time protection On.",
    "Ask your school's IT team to turn virus protection back on for this laptop.",
    "Set-MpPreference -DisableRealtimeMonitoring $false (and check Group Policy/Intune does not turn it off)",
)
UPDATE_DEFENDER = (
    "Update virus protection: Settings → Privacy & security → Windows Security → Virus & threat "
    "protection → Protection updates → Check for updates."
)


@dataclass(frozen=True)
class SecurityCenterProduct:
    name: str
    product_state: int
    state: str  # on / off / snoozed / expired / unknown
    microsoft: bool
    signatures_up_to_date: bool

    @property
    def active(self) -> bool:
        return self.state == "on"

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "productState": self.product_state,
            "state": self.state,
            "microsoft": self.microsoft,
            "signatures_up_to_date": self.signatures_up_to_date,
        }


@dataclass(frozen=True)
class DefenderStatus:
    """None where Get-MpComputerStatus left a field out or null: not reported, never "off"."""

    service_enabled: bool | None
    antivirus_enabled: bool | None
    real_time_enabled: bool | None
    signature_age_days: int | None
    signatures_last_updated: str | None

    def switches(self) -> dict[str, bool | None]:
        return {
            "AMServiceEnabled": self.service_enabled,
            "AntivirusEnabled": self.antivirus_enabled,
            "RealTimeProtectionEnabled": self.real_time_enabled,
        }

    def to_json(self) -> dict[str, object]:
        return {
            "AMServiceEnabled": self.service_enabled,
            "AntivirusEnabled": self.antivirus_enabled,
            "RealTimeProtectionEnabled": self.real_time_enabled,
            "signature_age_days": self.signature_age_days,
            "signatures_last_updated": self.signatures_last_updated,
        }


def decode_product(name: str, product_state: int) -> SecurityCenterProduct:
    state_nibble = (product_state >> 12) & 0xF
    return SecurityCenterProduct(
        name=name,
        product_state=product_state,
        state=PRODUCT_STATES.get(state_nibble, "unknown"),
        microsoft=((product_state >> 8) & 0xF) == 1,
        signatures_up_to_date=((product_state >> 4) & 0xF) == 0,
    )


def parse_security_center(instances: list[dict[str, Any]]) -> list[SecurityCenterProduct]:
    products = []
    for item in instances:
        state = item.get("productState")
        if isinstance(state, int) and not isinstance(state, bool):
            products.append(decode_product(str(item.get("displayName") or "unnamed product"), state))
    return products


_MS_DATE = re.compile(r"^/Date\((-?\d+)\)/$")


def parse_json_date(value: Any) -> datetime | None:
    """A DateTime as Windows PowerShell 5.1 writes it ("/Date(ms)/", sometimes wrapped in {"value": ...})."""
    if isinstance(value, dict):
        value = value.get("value")
    if not isinstance(value, str):
        return None
    match = _MS_DATE.match(value.strip())
    if match:
        return datetime.fromtimestamp(int(match.group(1)) / 1000, tz=timezone.utc)
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _reported_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def parse_defender(text: str, now: datetime) -> DefenderStatus:
    """`Get-MpComputerStatus` as JSON; the age is measured from the last update when it is given."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("Get-MpComputerStatus output is not one object")
    updated = parse_json_date(data.get("AntivirusSignatureLastUpdated"))
    age: int | None
    if updated is not None:
        age = max(0, (now - updated).days)
    else:
        raw_age = data.get("AntivirusSignatureAge")
        # 65535 and 4294967295 are what Defender reports when it has never had signatures.
        age = raw_age if isinstance(raw_age, int) and raw_age < 65535 else None
    return DefenderStatus(
        service_enabled=_reported_bool(data.get("AMServiceEnabled")),
        antivirus_enabled=_reported_bool(data.get("AntivirusEnabled")),
        real_time_enabled=_reported_bool(data.get("RealTimeProtectionEnabled")),
        signature_age_days=age,
        signatures_last_updated=updated.isoformat() if updated else None,
    )


def decide_defender(status: DefenderStatus, max_age_days: int, **context: object) -> Finding:
    evidence = {"defender": status.to_json(), "max_signature_age_days": max_age_days, **context}
    switches = status.switches()
    off = [name for name, value in switches.items() if value is False]
    if off:
        return failed(
            f"Microsoft Defender protection is off ({', '.join(name + ' = False' for name in off)})",
            TURN_ON_PROTECTION,
            **evidence,
        )
    unreported = [name for name, value in switches.items() if value is None]
    if unreported:
        return unknown(
            f"Microsoft Defender did not report {', '.join(unreported)}, so whether it protects this "
            "laptop is not known",
            "Ask your school's IT team to check the virus protection on this laptop.",
            **evidence,
        )
    if status.signature_age_days is None:
        return failed("Microsoft Defender has no signature update on record", UPDATE_DEFENDER, **evidence)
    if status.signature_age_days > max_age_days:
        return failed(
            f"Microsoft Defender signatures are {status.signature_age_days} days old "
            f"(the district allows {max_age_days})",
            UPDATE_DEFENDER,
            **evidence,
        )
    return passed(f"Microsoft Defender is on, signatures {status.signature_age_days} day(s) old", **evidence)


def decide_security_center(
    products: list[SecurityCenterProduct], defender: DefenderStatus | None, max_age_days: int
) -> Finding:
    """An active third-party product with current signatures passes; Defender must meet the district's age."""
    evidence: dict[str, object] = {"security_center": [p.to_json() for p in products]}
    active = [p for p in products if p.active]
    current_third_party = [p for p in active if not p.microsoft and p.signatures_up_to_date]
    if current_third_party:
        names = ", ".join(p.name for p in current_third_party)
        return passed(f"{names} is on with up-to-date signatures", **evidence)
    active_defender = [p for p in active if p.microsoft]
    if active_defender and defender is not None:
        return decide_defender(defender, max_age_days, **evidence)
    if active_defender and active_defender[0].signatures_up_to_date:
        return passed(
            f"{active_defender[0].name} is on and Security Center says its signatures are up to date "
            "(their exact age could not be read)",
            **evidence,
        )
    if active:
        stale = active[0]
        remedy = UPDATE_DEFENDER if stale.microsoft else f"Open {stale.name} and choose Update."
        return failed(f"{stale.name} is on but its signatures are out of date", remedy, **evidence)
    states = ", ".join(f"{p.name} is {p.state}" for p in products)
    return failed(f"no antivirus is protecting this laptop: {states}", TURN_ON_PROTECTION, **evidence)


def _defender(ctx: CheckContext) -> tuple[DefenderStatus | None, CommandOutput]:
    output = ctx.probes.run(DEFENDER_COMMAND, timeout=30.0, probe_id="windows.defender.status")
    if not output.ok:
        return None, output
    try:
        return parse_defender(output.stdout, ctx.now), output
    except ValueError:
        return None, output


def check(ctx: CheckContext) -> Finding:
    max_age = ctx.requirements.antivirus_max_signature_age_days
    center = ctx.probes.cim(SECURITY_CENTER, "AntiVirusProduct")
    products: list[SecurityCenterProduct] = []
    if center.ok:
        try:
            products = parse_security_center(cim_instances(center))
        except ValueError as exc:
            return broken(f"unreadable Security Center output: {exc}", output=center.stdout[:200])
    defender, defender_output = _defender(ctx)
    if products:
        return decide_security_center(products, defender, max_age)
    center_note = (
        "Security Center lists no antivirus"
        if center.ok
        else "Security Center is not on this Windows (Windows Server)"
        if is_absent_provider(center)
        else f"Security Center could not be read ({center.describe()})"
    )
    if defender is not None:
        return decide_defender(defender, max_age, security_center=center_note)
    if is_refusal(center) or is_refusal(defender_output):
        return unknown(
            "antivirus status needs administrator rights: run as SYSTEM (the Homeroom service)",
            security_center=center_note,
            defender=defender_output.describe(),
        )
    if center.ok or is_absent_provider(center):
        return unknown(
            f"{center_note}, and Microsoft Defender did not answer ({defender_output.describe()})",
            "Ask your school's IT team which antivirus protects this laptop.",
            security_center=center_note,
            defender=defender_output.describe(),
        )
    return broken(f"{center_note}; Defender: {defender_output.describe()}")
