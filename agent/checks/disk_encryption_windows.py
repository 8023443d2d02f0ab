"""Disk encryption on Windows: BitLocker on the system drive, as `manage-bde -status` reports it live.

`manage-bde -status X:` asks the BitLocker driver at the moment of the call,
so it sees a suspension or a finished encryption that Explorer's cached
ProtectionStatus shell property may not show yet. It needs administrator
rights, which the Homeroom service (SYSTEM) has. The output is English on an
English display language; other languages are reported as unknown, never
guessed.

The refusal helpers at the bottom are shared with the other Windows checks:
every PowerShell and CIM probe on Windows says "no" in the same few ways.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.checks.context import CheckContext
from agent.checks.results import Finding, broken, failed, passed, unknown
from agent.probes import RegistryKey
from agent.probes.windows import is_refusal

WINDOWS_NT_KEY = "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion"
DEFAULT_SYSTEM_DRIVE = "C:"

# manage-bde's Conversion Status values (English) that mean every used sector is encrypted.
# "Used Space Only Encrypted" is Windows' default on new devices: all written data is encrypted.
ENCRYPTED_CONVERSIONS = frozenset({"fully encrypted", "used space only encrypted"})

TURN_ON_BITLOCKER = (
    "Turn on BitLocker: Control Panel → System and Security → BitLocker Drive Encryption → Turn on "
    "BitLocker (on Windows Home: Settings → Privacy & security → Device encryption)."
)
RESUME_BITLOCKER = (
    "Resume BitLocker protection: Control Panel → System and Security → BitLocker Drive Encryption → "
    "Resume protection."
)
LET_ENCRYPTION_FINISH = (
    "Keep the laptop plugged in and switched on until BitLocker finishes encrypting: Control Panel → "
    "System and Security → BitLocker Drive Encryption shows the progress."
)
ASK_IT = "Ask your school's IT team to check this laptop's disk encryption."


@dataclass(frozen=True)
class BitLockerVolume:
    """One volume's block of `manage-bde -status` output, values as printed."""

    drive: str
    conversion_status: str
    percentage_encrypted: str
    protection_status: str
    lock_status: str
    key_protectors: tuple[str, ...]

    @property
    def protection_on(self) -> bool:
        return self.protection_status.casefold().startswith("protection on")

    @property
    def fully_encrypted(self) -> bool:
        return self.conversion_status.casefold() in ENCRYPTED_CONVERSIONS

    def evidence(self) -> dict[str, object]:
        return {
            "drive": self.drive,
            "conversion_status": self.conversion_status,
            "percentage_encrypted": self.percentage_encrypted,
            "protection_status": self.protection_status,
            "lock_status": self.lock_status,
            "key_protectors": list(self.key_protectors),
        }


def system_drive(windows_nt: RegistryKey) -> str:
    """The drive Windows runs from, from SystemRoot (e.g. "C:\\WINDOWS"); C: when it cannot be read."""
    root = windows_nt.values.get("SystemRoot")
    if isinstance(root, str) and re.match(r"^[A-Za-z]:", root):
        return root[:2].upper()
    return DEFAULT_SYSTEM_DRIVE


_VOLUME_HEADER = re.compile(r"^Volume ([A-Za-z]:)")
_FIELD = re.compile(r"^\s+([A-Za-z][A-Za-z ]*?):\s*(.*?)\s*$")


def parse_manage_bde_status(text: str, drive: str) -> BitLockerVolume | None:
    """The block for `drive` in `manage-bde -status` output, or None when it is not there (or not English)."""
    fields: dict[str, str] = {}
    protectors: list[str] = []
    in_volume = False
    in_protectors = False
    for line in text.splitlines():
        header = _VOLUME_HEADER.match(line)
        if header:
            if in_volume:
                break
            in_volume = header.group(1).upper() == drive.upper()
            continue
        if not in_volume or not line.strip():
            continue
        field = _FIELD.match(line)
        if field and (field.group(2) or field.group(1) == "Key Protectors"):
            in_protectors = field.group(1) == "Key Protectors"
            if not in_protectors:
                fields[field.group(1)] = field.group(2)
            continue
        if in_protectors:
            protectors.append(line.strip())
    if not in_volume or "Conversion Status" not in fields or "Protection Status" not in fields:
        return None
    return BitLockerVolume(
        drive=drive.upper(),
        conversion_status=fields["Conversion Status"],
        percentage_encrypted=fields.get("Percentage Encrypted", ""),
        protection_status=fields["Protection Status"],
        lock_status=fields.get("Lock Status", ""),
        key_protectors=tuple(p for p in protectors if p.casefold() != "none found"),
    )


def decide(volume: BitLockerVolume) -> Finding:
    """Pass only when every used sector is encrypted and the key is actually protected."""
    evidence = volume.evidence()
    conversion = volume.conversion_status.casefold()
    if volume.fully_encrypted and volume.protection_on:
        return passed(f"BitLocker protects {volume.drive} ({volume.conversion_status})", **evidence)
    if volume.fully_encrypted and volume.protection_status.casefold().startswith("protection off"):
        return failed(
            f"BitLocker protection on {volume.drive} is suspended: the disk is encrypted but its key "
            "is stored in the clear",
            RESUME_BITLOCKER,
            **evidence,
        )
    if conversion in ("encryption in progress", "encryption paused"):
        return failed(
            f"BitLocker is still encrypting {volume.drive} ({volume.percentage_encrypted} done, "
            f"{volume.conversion_status})",
            LET_ENCRYPTION_FINISH,
            **evidence,
        )
    if conversion in ("fully decrypted", "decryption in progress", "decryption paused"):
        return failed(
            f"{volume.drive} is not encrypted ({volume.conversion_status})", TURN_ON_BITLOCKER, **evidence
        )
    return unknown(
        f"manage-bde reports {volume.drive} as {volume.conversion_status!r} / "
        f"{volume.protection_status!r}, which Homeroom does not recognise",
        ASK_IT,
        **evidence,
    )


def check(ctx: CheckContext) -> Finding:
    drive = system_drive(ctx.probes.registry_key(WINDOWS_NT_KEY))
    output = ctx.probes.run(["manage-bde", "-status", drive], timeout=30.0)
    if output.missing:
        return unknown(
            "manage-bde is not on this Windows, so BitLocker cannot be asked: this edition (e.g. Windows "
            "Home without BitLocker tools) or image has no BitLocker, and another encryption product "
            "would not be visible here",
            ASK_IT,
            drive=drive,
            probe=output.describe(),
        )
    if is_refusal(output):
        return unknown(
            "BitLocker status needs administrator rights: run as SYSTEM (the Homeroom service)",
            drive=drive,
            probe=output.describe(),
        )
    if output.error:
        return broken(f"could not run manage-bde: {output.describe()}", drive=drive)
    volume = parse_manage_bde_status(output.stdout, drive)
    if volume is None:
        return unknown(
            f"manage-bde gave no readable status for {drive} (it may not be a BitLocker-capable volume, or "
            "Windows' display language is not English)",
            ASK_IT,
            drive=drive,
            probe=output.describe(),
        )
    return decide(volume)
