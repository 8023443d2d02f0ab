"""Who this laptop is, so the server keeps one record per device across re-installs and can spot a stolen one.

The server matches on the serial number and the SMBIOS system UUID. Both come
from the firmware, which sometimes holds a vendor's placeholder instead
("To be filled by O.E.M.", an all-zero UUID): such a value would merge
every unconfigured machine into one record, so it is dropped and the reason
kept in `unreadable`. A value that cannot be read (no rights, no DMI table)
is never guessed at; the reason says what would let it be read.

The OS is chosen once, from `PlatformFacts.os`, like the check registry:
`agent.identity.windows`, `agent.identity.macos` and `agent.identity.linux`
each have `read_hardware(probes) -> HardwareReading`, built only from probe
answers. Only `local_macs` looks at this machine directly.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from agent.probes import Probes
from agent.probes.facts import PlatformFacts

# What vendors leave in SMBIOS strings they never filled in (compared case-insensitively).
PLACEHOLDERS = frozenset(
    {
        "to be filled by o.e.m.",
        "to be filled by oem",
        "default string",
        "system serial number",
        "chassis serial number",
        "base board serial number",
        "system manufacturer",
        "system product name",
        "not specified",
        "not applicable",
        "not available",
        "n/a",
        "none",
        "null",
        "unknown",
        "invalid",
        "oem",
        "o.e.m.",
        "0",
        "123456789",
        "0123456789",
        "1234567890",
    }
)
# Only zeros, or only punctuation and blanks: "00000000", "--------", "........".
_FILLER = re.compile(r"^[0\W_]*$")
# Shipped in many AMI firmware images and never replaced, so thousands of boards share it.
AMI_DEFAULT_UUID = "03000200-0400-0500-0006-000700080009"
_HEX32 = re.compile(r"^[0-9A-Fa-f]{32}$")
ZERO_MAC = "00:00:00:00:00:00"
# Hypervisors' own prefixes: their adapters come and go with a host's virtual networks,
# and inside a VM they are reassigned when the VM is cloned. VMware, VirtualBox,
# Hyper-V, Parallels, QEMU/KVM, Xen.
VIRTUAL_OUIS = frozenset(
    {
        "00:50:56",
        "00:0c:29",
        "00:05:69",
        "00:1c:14",
        "08:00:27",
        "00:15:5d",
        "00:1c:42",
        "52:54:00",
        "00:16:3e",
    }
)


@dataclass(frozen=True)
class DeviceIdentity:
    serial: str | None  # None when unknown; see `unreadable`
    hardware_uuid: str | None  # SMBIOS system UUID, upper-case canonical 8-4-4-4-12
    hostname: str
    manufacturer: str | None
    model: str | None
    os: str  # "windows" | "macos" | "linux"
    os_version: str
    machine_id: str | None  # Linux /etc/machine-id, Windows MachineGuid, macOS None
    macs: tuple[str, ...]  # lower-case aa:bb:cc:dd:ee:ff, sorted, physical-looking only
    unreadable: dict[str, str] = field(default_factory=dict)  # field -> why it could not be read

    def to_json(self) -> dict[str, object]:
        return {
            "serial": self.serial,
            "hardware_uuid": self.hardware_uuid,
            "hostname": self.hostname,
            "manufacturer": self.manufacturer,
            "model": self.model,
            "os": self.os,
            "os_version": self.os_version,
            "machine_id": self.machine_id,
            "macs": list(self.macs),
            "unreadable": dict(self.unreadable),
        }


@dataclass(frozen=True)
class HardwareReading:
    """What one OS's reader found: the firmware's facts, and why any of them is missing."""

    serial: str | None
    hardware_uuid: str | None
    manufacturer: str | None
    model: str | None
    machine_id: str | None
    unreadable: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Source:
    """One place a value may come from: `raw` as the OS gave it, or None and the `problem` why not."""

    where: str
    raw: str | None
    problem: str | None = None


@dataclass(frozen=True)
class Cleaned:
    value: str | None
    why: str = ""  # why `value` is None: "holds the placeholder 'Default string'"


Cleaner = Callable[[str], Cleaned]


def clean_text(raw: str) -> Cleaned:
    """The firmware string, or None when it is empty or a placeholder no two machines can be told apart by."""
    text = raw.replace("\x00", "").strip()
    if not text:
        return Cleaned(None, "is empty")
    if text.casefold() in PLACEHOLDERS or _FILLER.match(text):
        return Cleaned(None, f"holds the placeholder {text!r}, not this laptop's own value")
    return Cleaned(text)


def clean_uuid(raw: str) -> Cleaned:
    """Upper-case canonical 8-4-4-4-12, or None for a UUID that is absent, malformed or shared."""
    text = raw.replace("\x00", "").strip()
    if not text:
        return Cleaned(None, "is empty")
    digits = text.strip("{}").replace("-", "")
    if not _HEX32.match(digits):
        return Cleaned(None, f"is not a UUID ({text!r})")
    digits = digits.upper()
    canonical = f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"
    if set(digits) == {"0"}:
        return Cleaned(None, "is all zeros: the firmware has no system UUID")
    if set(digits) == {"F"}:
        return Cleaned(None, "is all FF: the firmware has no system UUID")
    if canonical == AMI_DEFAULT_UUID:
        return Cleaned(None, f"is {AMI_DEFAULT_UUID}, the default UUID many AMI firmware images ship with")
    return Cleaned(canonical)


def choose(sources: Sequence[Source], clean: Cleaner) -> tuple[str | None, str | None]:
    """The first source with a real value, else None and every source's reason (first is the primary)."""
    reasons: list[str] = []
    for source in sources:
        if source.raw is None:
            reason = source.problem or f"{source.where} could not be read"
        else:
            cleaned = clean(source.raw)
            if cleaned.value is not None:
                return cleaned.value, None
            reason = f"{source.where} {cleaned.why}"
        if reason not in reasons:
            reasons.append(reason)
    return None, "; ".join(reasons) or "no source for it on this OS"


def reading(
    fields: dict[str, tuple[str | None, str | None]], unreadable: dict[str, str] | None = None
) -> HardwareReading:
    """Assemble a `HardwareReading` from `choose` results, collecting every reason by field name."""
    reasons = dict(unreadable or {})
    for name, (value, reason) in fields.items():
        if value is None and reason:
            reasons[name] = reason
    return HardwareReading(
        serial=fields.get("serial", (None, None))[0],
        hardware_uuid=fields.get("hardware_uuid", (None, None))[0],
        manufacturer=fields.get("manufacturer", (None, None))[0],
        model=fields.get("model", (None, None))[0],
        machine_id=fields.get("machine_id", (None, None))[0],
        unreadable=reasons,
    )


# --- network addresses -----------------------------------------------------------------------

_MAC_SEPARATORS = re.compile(r"[:\-.\s]")
_HEX12 = re.compile(r"^[0-9a-f]{12}$")


def normalise_mac(text: str) -> str | None:
    """`aa:bb:cc:dd:ee:ff` from the forms OSes print (`AA-BB-…` on Windows); None for anything not 48-bit."""
    digits = _MAC_SEPARATORS.sub("", text.strip().lower())
    if not _HEX12.match(digits):
        return None
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def is_stable_mac(mac: str) -> bool:
    """Whether a normalised MAC looks burnt into real hardware, so it names this laptop over time.

    Dropped: all-zero (loopback), group addresses (low bit of the first octet),
    locally administered ones (second bit: Wi-Fi privacy addresses, Docker and
    bridge interfaces, VPN adapters) and hypervisors' prefixes.
    """
    first = int(mac[:2], 16)
    return mac != ZERO_MAC and not first & 0x01 and not first & 0x02 and mac[:8] not in VIRTUAL_OUIS


def usable_macs(macs: Sequence[str]) -> tuple[str, ...]:
    normalised = (normalise_mac(mac) for mac in macs)
    return tuple(sorted({mac for mac in normalised if mac is not None and is_stable_mac(mac)}))


def local_macs() -> list[str]:
    """Every link-layer address on this machine, normalised, without the all-zero loopback one."""
    import psutil

    found: set[str] = set()
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family != psutil.AF_LINK or not address.address:
                continue
            mac = normalise_mac(address.address)
            if mac is not None and mac != ZERO_MAC:
                found.add(mac)
    return sorted(found)


# --- the one entry point ---------------------------------------------------------------------


def hardware_reader(os_name: str) -> Callable[[Probes], HardwareReading]:
    module = importlib.import_module(f"agent.identity.{os_name}")
    reader: Callable[[Probes], HardwareReading] = module.read_hardware
    return reader


def read_identity(probes: Probes, platform: PlatformFacts, macs: Sequence[str]) -> DeviceIdentity:
    hardware = hardware_reader(platform.os)(probes)
    return DeviceIdentity(
        serial=hardware.serial,
        hardware_uuid=hardware.hardware_uuid,
        hostname=platform.hostname,
        manufacturer=hardware.manufacturer,
        model=hardware.model,
        os=platform.os,
        os_version=platform.os_version,
        machine_id=hardware.machine_id,
        macs=usable_macs(macs),
        unreadable=dict(hardware.unreadable),
    )
