"""Power-on password on Windows: nobody can start the laptop and reach data without a secret.

Three things can ask for that secret before Windows runs, and Homeroom looks
for each where Windows exposes it:

- a firmware power-on password, readable through the maker's WMI provider:
  HP (root\\HP\\InstrumentedBIOS HP_BIOSPassword "Power-On Password" IsSet),
  Dell (root\\dcim\\sysman\\wmisecurity PasswordObject "System" IsPasswordSet),
  Lenovo (root\\WMI Lenovo_BiosPasswordSettings PasswordState: bit 1 power-on,
  2 supervisor, 4 hard drive, 64 system management); a hard-drive password
  also stops the laptop at power-on, a supervisor/setup password does not;
- a BitLocker pre-boot secret on the system drive: a TPM+PIN,
  TPM+PIN+startup key or password protector (TPM alone unlocks by itself);
- and, in every case, no automatic sign-in (Winlogon AutoAdminLogon = "1"),
  which would hand the desktop to whoever switched the laptop on.

Other makers expose no firmware password to Windows, and the vendor classes
need administrator rights: what is not visible makes the answer `unknown`.
Only when every source was read and none holds a secret is it `fail`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.checks.context import CheckContext
from agent.checks.disk_encryption_windows import (
    WINDOWS_NT_KEY,
    BitLockerVolume,
    read_volume,
    system_drive,
)
from agent.checks.results import Advice, Finding, ask_it, failed, passed, unknown
from agent.probes import CommandOutput, RegistryKey, cim_instances
from agent.probes.windows import is_refusal

WINLOGON_KEY = "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Winlogon"
CIMV2 = "root\\CIMV2"
HP_NAMESPACE = "root\\HP\\InstrumentedBIOS"
DELL_NAMESPACE = "root\\dcim\\sysman\\wmisecurity"
LENOVO_NAMESPACE = "root\\WMI"

LENOVO_POWER_ON = 0x01
LENOVO_HARD_DRIVE = 0x04

# KeyProtectorType names (Get-BitLockerVolume; manage-bde's are mapped to them) that ask a person
# for a secret before Windows starts. TPM alone unlocks by itself.
PRE_BOOT_PROTECTORS = frozenset({"TpmPin", "TpmPinStartupKey", "Password"})

TURN_OFF_AUTOLOGIN = Advice(
    "Turn off automatic sign-in so Windows asks for your password: open netplwiz and tick “Users must "
    "enter a user name and password to use this computer”.",
    "Ask your school's IT team to turn off automatic sign-in on this laptop, so it asks for a password.",
    'Set-ItemProperty "HKLM:\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Winlogon" '
    "-Name AutoAdminLogon -Value 0; remove DefaultPassword from the same key",
)
ADD_PRE_BOOT_SECRET = ask_it(
    "Ask your school's IT team to set a power-on password in this laptop's BIOS, or a BitLocker start-up "
    "PIN.",
    "BIOS power-on password in the firmware setup, or: manage-bde -protectors -add C: -TPMAndPIN "
    "(with the policy “Require additional authentication at startup” allowing a PIN)",
)


@dataclass(frozen=True)
class Sighting:
    """What one source said: True (secret set), False (read, none set), None (not visible), and why."""

    source: str
    secret_set: bool | None
    detail: str

    def to_json(self) -> dict[str, object]:
        return {"source": self.source, "secret_set": self.secret_set, "detail": self.detail}


def _flag(value: Any) -> bool:
    return value in (1, True, "1", "True", "true")


def autologin_on(winlogon: RegistryKey) -> bool | None:
    """None when Winlogon could not be read (a missing value means off)."""
    if winlogon.error:
        return None
    return str(winlogon.value("AutoAdminLogon", "0")).strip() == "1"


def maker(instances: list[dict[str, Any]]) -> str:
    """ "hp", "dell", "lenovo" or the Manufacturer as given (lower case) from Win32_ComputerSystem."""
    name = str(instances[0].get("Manufacturer") or "").strip().casefold() if instances else ""
    if name in ("hp", "hewlett-packard") or name.startswith("hp "):
        return "hp"
    if name.startswith("dell"):
        return "dell"
    if name.startswith("lenovo"):
        return "lenovo"
    return name


def hp_power_on_password(instances: list[dict[str, Any]]) -> Sighting:
    for item in instances:
        if item.get("Name") == "Power-On Password":
            is_set = _flag(item.get("IsSet"))
            return Sighting("HP BIOS", is_set, f"Power-On Password IsSet={item.get('IsSet')}")
    return Sighting("HP BIOS", None, "HP_BIOSPassword has no “Power-On Password” entry")


def dell_system_password(instances: list[dict[str, Any]]) -> Sighting:
    for item in instances:
        if item.get("NameId") == "System":
            is_set = _flag(item.get("IsPasswordSet"))
            return Sighting("Dell BIOS", is_set, f"System password IsPasswordSet={item.get('IsPasswordSet')}")
    return Sighting("Dell BIOS", None, "PasswordObject has no “System” entry")


def lenovo_password_state(instances: list[dict[str, Any]]) -> Sighting:
    for item in instances:
        state = item.get("PasswordState")
        if isinstance(state, int) and not isinstance(state, bool):
            is_set = bool(state & (LENOVO_POWER_ON | LENOVO_HARD_DRIVE))
            return Sighting("Lenovo BIOS", is_set, f"PasswordState={state}")
    return Sighting("Lenovo BIOS", None, "Lenovo_BiosPasswordSettings has no PasswordState")


FIRMWARE_READERS = {
    "hp": ("HP BIOS", HP_NAMESPACE, "HP_BIOSPassword", hp_power_on_password),
    "dell": ("Dell BIOS", DELL_NAMESPACE, "PasswordObject", dell_system_password),
    "lenovo": ("Lenovo BIOS", LENOVO_NAMESPACE, "Lenovo_BiosPasswordSettings", lenovo_password_state),
}


def bitlocker_pre_boot(drive: str, volume: BitLockerVolume | None, last: CommandOutput) -> Sighting:
    source = f"BitLocker on {drive}"
    if volume is None:
        if is_refusal(last):
            return Sighting(source, None, "BitLocker's status needs administrator rights")
        if not last.ok:
            return Sighting(source, None, f"BitLocker could not be asked: {last.describe()}")
        return Sighting(source, None, "BitLocker gave no readable status")
    protectors = [p for p in volume.protectors if p in PRE_BOOT_PROTECTORS]
    listed = ", ".join(volume.protectors) or "none"
    if protectors and volume.protection_on:
        return Sighting(source, True, f"key protectors: {listed}")
    if protectors:
        return Sighting(
            source, False, f"protection is {volume.protection or 'not reported'}; key protectors: {listed}"
        )
    return Sighting(source, False, f"no PIN or password protector (key protectors: {listed})")


def decide(autologin: bool | None, sightings: list[Sighting]) -> Finding:
    evidence: dict[str, object] = {
        "automatic_sign_in": autologin,
        "sources": [s.to_json() for s in sightings],
    }
    if autologin:
        return failed(
            "Windows signs in automatically, so anyone who starts the laptop reaches the desktop",
            TURN_OFF_AUTOLOGIN,
            **evidence,
        )
    secured = [s for s in sightings if s.secret_set]
    if secured and autologin is False:
        return passed(f"a secret is asked before Windows starts ({secured[0].source})", **evidence)
    if secured:
        return unknown(
            f"a pre-boot secret is set ({secured[0].source}) but whether Windows signs in automatically "
            "could not be read",
            "Ask your school's IT team to check that Windows asks for a password at sign-in.",
            **evidence,
        )
    unseen = [s for s in sightings if s.secret_set is None]
    if unseen or autologin is None:
        reasons = "; ".join(f"{s.source}: {s.detail}" for s in sightings)
        return unknown(
            f"no power-on secret is visible to Windows ({reasons})", ADD_PRE_BOOT_SECRET, **evidence
        )
    return failed(
        "nothing asks for a secret before Windows starts: no firmware power-on password and no BitLocker PIN",
        ADD_PRE_BOOT_SECRET,
        **evidence,
    )


def _firmware(ctx: CheckContext) -> Sighting:
    system = ctx.probes.cim(CIMV2, "Win32_ComputerSystem")
    try:
        vendor = maker(cim_instances(system)) if system.ok else ""
    except ValueError:
        vendor = ""
    if vendor not in FIRMWARE_READERS:
        if not system.ok:
            return Sighting("firmware", None, f"the maker could not be read ({system.describe()})")
        return Sighting(
            "firmware", None, f"maker {vendor or 'unknown'} exposes no firmware password to Windows"
        )
    source, namespace, class_name, reader = FIRMWARE_READERS[vendor]
    output = ctx.probes.cim(namespace, class_name)
    if is_refusal(output):
        return Sighting(source, None, f"{class_name} needs administrator rights: run as SYSTEM")
    if not output.ok:
        return Sighting(source, None, f"{class_name} could not be read: {output.describe()}")
    try:
        return reader(cim_instances(output))
    except ValueError as exc:
        return Sighting(source, None, f"unreadable {class_name} output: {exc}")


def check(ctx: CheckContext) -> Finding:
    autologin = autologin_on(ctx.probes.registry_key(WINLOGON_KEY))
    firmware = _firmware(ctx)
    drive = system_drive(ctx.probes.registry_key(WINDOWS_NT_KEY))
    volume, last = read_volume(ctx, drive)
    bitlocker = bitlocker_pre_boot(drive, volume, last)
    return decide(autologin, [firmware, bitlocker])
