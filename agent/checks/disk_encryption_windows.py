"""Disk encryption on Windows: BitLocker on the system drive, asked in terms that no display language changes.

Windows prints `manage-bde` in the display language, so its text is the last
source, not the first. In order:

1. `Get-BitLockerVolume -MountPoint C: | Format-List` (probe `windows.bitlocker.volume`):
   property names (VolumeStatus, ProtectionStatus, EncryptionPercentage,
   KeyProtector) and enum names (FullyEncrypted, On, TpmPin) are .NET names,
   the same in every language; only the decimal comma of a percentage changes.
   Source: Microsoft's Get-BitLockerVolume reference, example 3 (SOURCES.md).
2. `Win32_EncryptableVolume` in root\\CIMV2\\Security\\MicrosoftVolumeEncryption:
   ProtectionStatus as a number (0 off, 1 on, 2 unknown; Microsoft's
   GetProtectionStatus reference) and, where Windows lists it, ConversionStatus
   (0 decrypted, 1 encrypted, 2 encrypting, 3 decrypting, 4/5 paused). Protection
   on with the conversion finished passes; protection on while still encrypting
   does not (manage-bde shows that state too). Without ConversionStatus, 0 is a
   fail that cannot say which of "never turned on", "suspended" or "still
   encrypting" it is.
3. `manage-bde -status C:`, for Windows without the BitLocker PowerShell
   module (or where PowerShell is locked down): read in English, Spanish,
   French and German from one table of labels and values
   (manage_bde_languages.py), tolerant of the OEM code page it writes in.
   Other languages are `unknown`, never guessed.

All of them need administrator rights, which the Homeroom service (SYSTEM) has.
The states seen in the wild are told apart: never turned on (FullyDecrypted,
no key protector), suspended (FullyEncrypted, protection Off, protectors
present), waiting for activation (FullyEncrypted, protection Off, no
protector: Windows' device encryption before a recovery key is saved, the key
in the clear), and encrypting (with its percentage).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from agent.checks import manage_bde_languages as languages
from agent.checks.context import CheckContext
from agent.checks.results import Advice, Finding, broken, failed, passed, unknown
from agent.probes import CommandOutput, RegistryKey, cim_instances
from agent.probes.windows import is_absent_provider, is_refusal

WINDOWS_NT_KEY = "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion"
DEFAULT_SYSTEM_DRIVE = "C:"
VOLUME_PROBE = "windows.bitlocker.volume"
MANAGE_BDE_PROBE = "windows.bitlocker.manage-bde"
ENCRYPTION_NAMESPACE = "root\\CIMV2\\Security\\MicrosoftVolumeEncryption"
ENCRYPTABLE_VOLUME = "Win32_EncryptableVolume"

FULLY_ENCRYPTED = "FullyEncrypted"
FULLY_DECRYPTED = "FullyDecrypted"
ENCRYPTING = frozenset({"EncryptionInProgress", "EncryptionSuspended", "EncryptionPaused"})
DECRYPTING = frozenset({"DecryptionInProgress", "DecryptionSuspended", "DecryptionPaused"})

_DO_IT_IN_CONTROL_PANEL = "Control Panel → System and Security → BitLocker Drive Encryption"
TURN_ON_BITLOCKER = Advice(
    f"Turn on BitLocker: {_DO_IT_IN_CONTROL_PANEL} → Turn on BitLocker (on Windows Home: Settings → "
    "Privacy & security → Device encryption).",
    "Ask your school's IT team to turn on disk encryption (BitLocker) on this laptop.",
    "Enable-BitLocker -MountPoint {drive} -TpmProtector; Add-BitLockerKeyProtector -MountPoint {drive} "
    "-RecoveryPasswordProtector (or: manage-bde -on {drive} -RecoveryPassword)",
)
RESUME_BITLOCKER = Advice(
    f"Resume BitLocker protection: {_DO_IT_IN_CONTROL_PANEL} → Resume protection.",
    "Ask your school's IT team to resume BitLocker protection on this laptop (it is paused).",
    "Resume-BitLocker -MountPoint {drive} (or: manage-bde -protectors -enable {drive})",
)
FINISH_ACTIVATION = Advice(
    "Finish turning on device encryption: Settings → Privacy & security → Device encryption (or "
    f"{_DO_IT_IN_CONTROL_PANEL}) and back up the recovery key when asked.",
    "Ask your school's IT team to finish turning on disk encryption (BitLocker is waiting for activation).",
    "Add-BitLockerKeyProtector -MountPoint {drive} -RecoveryPasswordProtector; "
    "Add-BitLockerKeyProtector -MountPoint {drive} -TpmProtector; Resume-BitLocker -MountPoint {drive}",
)
LET_ENCRYPTION_FINISH = (
    "Keep the laptop plugged in and switched on until BitLocker finishes encrypting; "
    f"{_DO_IT_IN_CONTROL_PANEL} shows the progress."
)
ASK_IT = "Ask your school's IT team to check this laptop's disk encryption."


@dataclass(frozen=True)
class BitLockerVolume:
    """One volume, in Get-BitLockerVolume's names; `printed` keeps what the tool said."""

    drive: str
    volume_status: str  # FullyEncrypted, EncryptionInProgress, ... ("" when not said)
    protection: str  # On, Off, Unknown ("" when not said)
    percentage: float | None
    protectors: tuple[str, ...]  # KeyProtectorType names
    source: str
    printed: dict[str, object] = field(default_factory=dict)

    @property
    def protection_on(self) -> bool:
        return self.protection == "On"

    @property
    def fully_encrypted(self) -> bool:
        return self.volume_status == FULLY_ENCRYPTED

    @property
    def key_protectors(self) -> tuple[str, ...]:
        return self.protectors

    def evidence(self) -> dict[str, object]:
        return {
            "drive": self.drive,
            "source": self.source,
            "volume_status": self.volume_status or None,
            "protection": self.protection or None,
            "percentage_encrypted": self.percentage,
            "key_protectors": list(self.protectors),
            **self.printed,
        }


def system_drive(windows_nt: RegistryKey) -> str:
    """The drive Windows runs from, from SystemRoot (e.g. "C:\\WINDOWS"); C: when it cannot be read."""
    root = windows_nt.value("SystemRoot")
    if isinstance(root, str) and re.match(r"^[A-Za-z]:", root):
        return root[:2].upper()
    return DEFAULT_SYSTEM_DRIVE


def volume_command(drive: str) -> list[str]:
    script = f"Get-BitLockerVolume -MountPoint '{drive}' -ErrorAction Stop | Format-List"
    return ["powershell.exe", "-NoProfile", "-NonInteractive", "-Command", script]


def _percent(text: str) -> float | None:
    match = re.search(r"[0-9]+(?:[.,][0-9]+)?", text)
    return float(match.group().replace(",", ".")) if match else None


_LIST_LINE = re.compile(r"^([A-Za-z]+)\s*:\s?(.*?)\s*$")


def parse_bitlocker_volume_list(text: str, drive: str) -> BitLockerVolume | None:
    """`Get-BitLockerVolume | Format-List` for `drive`; None when that volume is not in it."""
    blocks: list[dict[str, str]] = [{}]
    for line in text.splitlines():
        if not line.strip():
            if blocks[-1]:
                blocks.append({})
            continue
        match = _LIST_LINE.match(line)
        if match:
            blocks[-1][match.group(1)] = match.group(2)
    for block in blocks:
        if block.get("MountPoint", "").upper().rstrip("\\") != drive.upper() or "VolumeStatus" not in block:
            continue
        protectors = tuple(
            p.strip() for p in block.get("KeyProtector", "").strip("{}").split(",") if p.strip()
        )
        return BitLockerVolume(
            drive=drive.upper(),
            volume_status=block["VolumeStatus"],
            protection=block.get("ProtectionStatus", ""),
            percentage=_percent(block.get("EncryptionPercentage", "")),
            protectors=protectors,
            source="Get-BitLockerVolume",
            printed={"lock_status": block.get("LockStatus") or None},
        )
    return None


# "Volume C: [OS]", 'Volume "C:" []' (German), "Volumen C: [OS]" (Spanish): a word at the line's
# start, then the drive letter, maybe quoted.
_VOLUME_HEADER = re.compile(r'^[^\s:"]+\s+"?([A-Za-z]:)"?(?:\s|$)')
# "    Conversion Status:    Fully Encrypted", "    Taille :      475.59 Go" (French spaces before
# the colon), "Campo de identificación:Desconocido" (no space after it).
_FIELD = re.compile(r"^\s+([^:]+?)\s*:\s*(.*?)\s*$")


def parse_manage_bde_status(text: str, drive: str) -> BitLockerVolume | None:
    """The block for `drive` in `manage-bde -status` output, or None (absent, or a language not read).

    The labels and values are read in English, Spanish, French and German
    (agent/checks/manage_bde_languages.py); a value in no table becomes an
    unrecognised state (`unknown`), never a guess.
    """
    fields: dict[str, str] = {}
    printed_protectors: list[str] = []
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
        match = _FIELD.match(line)
        name = languages.field_of(match.group(1)) if match else None
        if match and (match.group(2) or name == "protectors"):
            in_protectors = name == "protectors"
            if name is not None and not in_protectors:
                fields[name] = match.group(2)
            # A value on the protectors' own line is "None Found" / "Keine gefunden": there are none.
            continue
        if in_protectors and not match:
            printed_protectors.append(line.strip())
    if not in_volume or "conversion" not in fields or "protection" not in fields:
        return None
    conversion = fields["conversion"]
    return BitLockerVolume(
        drive=drive.upper(),
        volume_status=languages.conversion_name(conversion),
        protection=languages.protection_name(fields["protection"]),
        percentage=_percent(fields.get("percentage", "")),
        protectors=tuple(languages.protector_name(p) for p in printed_protectors),
        source="manage-bde",
        printed={
            "conversion_status": conversion,
            "protection_status": fields["protection"],
            "lock_status": fields.get("lock") or None,
            "printed_key_protectors": printed_protectors,
        },
    )


def _advice(advice: Advice, drive: str) -> Advice:
    return Advice(advice.yourself, advice.ask_it, (advice.it or "").format(drive=drive) or None)


def decide(volume: BitLockerVolume) -> Finding:
    """Pass only when every used sector is encrypted and the key is actually protected."""
    evidence = volume.evidence()
    drive = volume.drive
    done = f"{volume.percentage:g}% done" if volume.percentage is not None else "progress not reported"
    if volume.fully_encrypted and volume.protection_on:
        return passed(f"BitLocker protects {drive} (fully encrypted, protection on)", **evidence)
    if volume.fully_encrypted and volume.protection == "Off" and volume.protectors:
        return failed(
            f"BitLocker protection on {drive} is suspended: the disk is encrypted but its key is stored "
            "in the clear",
            _advice(RESUME_BITLOCKER, drive),
            **evidence,
        )
    if volume.fully_encrypted and volume.protection == "Off":
        return failed(
            f"{drive} is encrypted but BitLocker is waiting for activation: no key protector is set, so "
            "its key is stored in the clear",
            _advice(FINISH_ACTIVATION, drive),
            **evidence,
        )
    if volume.volume_status in ENCRYPTING:
        paused = (
            " (paused)" if "Suspended" in volume.volume_status or "Paused" in volume.volume_status else ""
        )
        return failed(
            f"BitLocker is still encrypting {drive}{paused} ({done})", LET_ENCRYPTION_FINISH, **evidence
        )
    if volume.volume_status == FULLY_DECRYPTED and not volume.protectors:
        return failed(
            f"BitLocker has never been turned on for {drive}, so it is not encrypted",
            _advice(TURN_ON_BITLOCKER, drive),
            **evidence,
        )
    if volume.volume_status == FULLY_DECRYPTED or volume.volume_status in DECRYPTING:
        state = "is being decrypted" if volume.volume_status in DECRYPTING else "is not encrypted"
        return failed(f"BitLocker is off: {drive} {state}", _advice(TURN_ON_BITLOCKER, drive), **evidence)
    return unknown(
        f"{volume.source} reports {drive} as {volume.volume_status or 'an unrecognised state'} with "
        f"protection {volume.protection or 'not reported'}, which Homeroom does not recognise",
        ASK_IT,
        **evidence,
    )


PROTECTION_STATUS = {0: "Off", 1: "On", 2: "Unknown"}
# Win32_EncryptableVolume's ConversionStatus property (the numbers of its GetConversionStatus method;
# a real Get-WmiObject capture lists it beside ProtectionStatus, tests/fixtures/corpus/SOURCES.md).
CONVERSION_STATUS = {
    0: FULLY_DECRYPTED,
    1: FULLY_ENCRYPTED,
    2: "EncryptionInProgress",
    3: "DecryptionInProgress",
    4: "EncryptionPaused",
    5: "DecryptionPaused",
}


def _number(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def decide_protection_status(instances: list[dict[str, object]], drive: str) -> Finding | None:
    """Win32_EncryptableVolume's numbers for `drive`; None when the volume is not listed.

    ProtectionStatus alone cannot tell "never turned on" from "suspended" from
    "still encrypting"; ConversionStatus, where Windows gives it, can (all but
    suspended from waiting for activation, which needs the key protectors).
    """
    for item in instances:
        if str(item.get("DriveLetter") or "").upper() != drive.upper():
            continue
        raw = item.get("ProtectionStatus")
        number = _number(raw)
        status = PROTECTION_STATUS.get(number) if number is not None else None
        conversion_number = _number(item.get("ConversionStatus"))
        conversion = CONVERSION_STATUS.get(conversion_number) if conversion_number is not None else None
        evidence: dict[str, object] = {"drive": drive, "source": ENCRYPTABLE_VOLUME, "ProtectionStatus": raw}
        if "ConversionStatus" in item:
            evidence["ConversionStatus"] = item.get("ConversionStatus")
        if status in ("On", "Off") and conversion is not None:
            evidence["volume_status"] = conversion
            if conversion in ENCRYPTING:
                return failed(
                    f"BitLocker is still encrypting {drive} (Win32_EncryptableVolume: {conversion})",
                    LET_ENCRYPTION_FINISH,
                    **evidence,
                )
            if conversion in DECRYPTING:
                return failed(
                    f"BitLocker is off: {drive} is being decrypted",
                    _advice(TURN_ON_BITLOCKER, drive),
                    **evidence,
                )
            if conversion == FULLY_DECRYPTED:
                return failed(
                    f"BitLocker is off: {drive} is not encrypted",
                    _advice(TURN_ON_BITLOCKER, drive),
                    **evidence,
                )
            if status == "Off":
                return failed(
                    f"{drive} is encrypted but its key is stored in the clear: BitLocker protection is "
                    "suspended or waiting for activation (Windows did not say which)",
                    _advice(RESUME_BITLOCKER, drive),
                    **evidence,
                )
        if status == "On":
            return passed(f"BitLocker protects {drive} (Win32_EncryptableVolume: protection on)", **evidence)
        if status == "Off":
            return failed(
                f"BitLocker does not protect {drive}: it is not encrypted, still encrypting, or its key is "
                "in the clear (suspended); Windows did not say which",
                _advice(TURN_ON_BITLOCKER, drive),
                **evidence,
            )
        return unknown(
            f"Windows could not tell whether BitLocker protects {drive} (ProtectionStatus {raw!r})",
            ASK_IT,
            **evidence,
        )
    return None


def read_volume(ctx: CheckContext, drive: str) -> tuple[BitLockerVolume | None, CommandOutput]:
    """The volume with its key protectors (Get-BitLockerVolume, else manage-bde), and the last answer.

    Shared with the power-on password check, which needs the protectors.
    """
    listing = ctx.probes.run(volume_command(drive), timeout=30.0, probe_id=VOLUME_PROBE)
    if listing.ok and (volume := parse_bitlocker_volume_list(listing.stdout, drive)) is not None:
        return volume, listing
    output = ctx.probes.run(["manage-bde", "-status", drive], timeout=30.0, probe_id=MANAGE_BDE_PROBE)
    if output.ok:
        return parse_manage_bde_status(output.stdout, drive), output
    return None, output if not is_refusal(listing) else listing


def check(ctx: CheckContext) -> Finding:
    drive = system_drive(ctx.probes.registry_key(WINDOWS_NT_KEY))
    tried: dict[str, str] = {}
    listing = ctx.probes.run(volume_command(drive), timeout=30.0, probe_id=VOLUME_PROBE)
    if listing.ok:
        volume = parse_bitlocker_volume_list(listing.stdout, drive)
        if volume is not None:
            return decide(volume)
        tried["Get-BitLockerVolume"] = f"no {drive} in its answer"
    else:
        tried["Get-BitLockerVolume"] = listing.describe()
    refused = is_refusal(listing)

    cim = ctx.probes.cim(ENCRYPTION_NAMESPACE, ENCRYPTABLE_VOLUME)
    if cim.ok:
        try:
            decided = decide_protection_status(cim_instances(cim), drive)
        except ValueError as exc:
            decided = None
            tried[ENCRYPTABLE_VOLUME] = f"unreadable: {exc}"
        if decided is not None:
            # Ask manage-bde too: it can tell suspended from never-on and give the percentage.
            text = ctx.probes.run(["manage-bde", "-status", drive], timeout=30.0, probe_id=MANAGE_BDE_PROBE)
            detailed = parse_manage_bde_status(text.stdout, drive) if text.ok else None
            return decide(detailed) if detailed is not None else decided
        tried.setdefault(ENCRYPTABLE_VOLUME, f"no {drive} among the encryptable volumes")
    else:
        tried[ENCRYPTABLE_VOLUME] = cim.describe()
        refused = refused or is_refusal(cim)
    no_provider = is_absent_provider(cim)

    output = ctx.probes.run(["manage-bde", "-status", drive], timeout=30.0, probe_id=MANAGE_BDE_PROBE)
    if output.ok:
        volume = parse_manage_bde_status(output.stdout, drive)
        if volume is not None:
            return decide(volume)
        return unknown(
            f"manage-bde gave no readable status for {drive} (it may not be a BitLocker-capable volume, or "
            "Windows' display language is not one Homeroom reads: English, Spanish, French, German), and "
            "the language-neutral sources did not answer",
            ASK_IT,
            drive=drive,
            tried=tried,
            probe=output.describe(),
        )
    if refused or is_refusal(output):
        return unknown(
            "BitLocker status needs administrator rights: run as SYSTEM (the Homeroom service)",
            drive=drive,
            tried=tried,
            probe=output.describe(),
        )
    if output.missing or no_provider:
        return unknown(
            "BitLocker is not on this Windows (no manage-bde, no BitLocker provider): this edition (e.g. "
            "Windows Home without BitLocker tools) or image has no BitLocker, and another encryption product "
            "would not be visible here",
            ASK_IT,
            drive=drive,
            tried=tried,
            probe=output.describe(),
        )
    return broken(f"could not ask BitLocker: {output.describe()}", drive=drive, tried=tried)
