"""Power-on password on Linux: a firmware password, or a LUKS passphrase with no automatic login.

Linux shows firmware passwords only where the vendor's kernel driver exposes
them (Dell `dell-wmi-sysman`, Lenovo `think-lmi`, HP `hp-bioscfg`) under
`/sys/class/firmware-attributes/*/authentication/*/` (`role`, `is_enabled`).
Elsewhere the secret that guards the data at power-on is the LUKS
passphrase asked before boot, and it counts only if the desktop does not
then log someone in by itself, and if the disk is not unlocked by the TPM
alone (systemd-cryptenroll / crypttab `tpm2-device=` without `tpm2-pin`).
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.checks.context import CheckContext
from agent.checks.disk_encryption_linux import RootEncryption, root_encryption
from agent.checks.results import Advice, Finding, failed, passed, unknown
from agent.probes import Probes
from agent.probes.linux import read_ini

FIRMWARE_ATTRIBUTES = "/sys/class/firmware-attributes"
POWER_ON_NAMES = {"power-on", "power-on password", "system", "poweron"}
GDM_FILES = ("/etc/gdm3/custom.conf", "/etc/gdm3/daemon.conf", "/etc/gdm/custom.conf")
LIGHTDM_FILE = "/etc/lightdm/lightdm.conf"
LIGHTDM_DIRS = ("/usr/share/lightdm/lightdm.conf.d", "/etc/lightdm/lightdm.conf.d")
SDDM_FILE = "/etc/sddm.conf"
SDDM_DIRS = ("/usr/lib/sddm/sddm.conf.d", "/etc/sddm.conf.d")
GETTY_DIR = "/etc/systemd/system/getty@tty1.service.d"
CRYPTTAB = "/etc/crypttab"
AUTOLOGIN_REMEDY = Advice(
    "Turn off automatic login so the laptop asks for your password when it starts: "
    "Settings → Users → Unlock → Automatic Login → off.",
    "Ask your school's IT team to turn off automatic login on this laptop, so it asks for a password.",
    "remove the display manager's autologin: GDM AutomaticLoginEnable=false in /etc/gdm3/custom.conf; "
    "LightDM autologin-user; SDDM [Autologin] User; getty --autologin drop-ins",
)
NO_SECRET_REMEDY = (
    "Please ask your school's IT team to set a power-on (BIOS) password or to turn on disk encryption "
    "with a start-up passphrase for this laptop."
)


@dataclass(frozen=True)
class FirmwarePassword:
    name: str
    role: str
    enabled: bool


def is_power_on(password: FirmwarePassword) -> bool:
    return password.role == "power-on" or password.name.casefold() in POWER_ON_NAMES


def _true(value: str | None) -> bool:
    return (value or "").strip().casefold() in {"true", "1", "yes"}


def gdm_autologin(text: str) -> str | None:
    """The user GDM logs in by itself (`[daemon] AutomaticLoginEnable`, or timed login), or None."""
    parser = read_ini(text)
    if not parser.has_section("daemon"):
        return None
    daemon = parser["daemon"]
    if _true(daemon.get("AutomaticLoginEnable")):
        return daemon.get("AutomaticLogin") or "(a user)"
    if _true(daemon.get("TimedLoginEnable")):
        return daemon.get("TimedLogin") or "(a user)"
    return None


def lightdm_autologin(text: str) -> str | None:
    parser = read_ini(text)
    for section in parser.sections():
        if section.startswith("Seat") or section == "SeatDefaults":
            user = parser[section].get("autologin-user", "").strip()
            if user:
                return user
    return None


def sddm_autologin(text: str) -> str | None:
    parser = read_ini(text)
    if parser.has_section("Autologin"):
        user = parser["Autologin"].get("User", "").strip()
        if user:
            return user
    return None


def getty_autologin(text: str) -> str | None:
    for line in text.splitlines():
        if line.strip().startswith("ExecStart=") and "--autologin" in line:
            parts = line.split("--autologin", 1)[1].split()
            return parts[0] if parts else "(a user)"
    return None


def tpm_only_unlock(crypttab: str, crypt_devices: tuple[str, ...]) -> list[str]:
    """Root crypt devices that the TPM unlocks with no PIN: no secret is asked at power-on."""
    found: list[str] = []
    for line in crypttab.splitlines():
        fields = line.split()
        if not fields or fields[0].startswith("#") or fields[0] not in crypt_devices:
            continue
        options = fields[3].split(",") if len(fields) > 3 else []
        keyfile = fields[2] if len(fields) > 2 else "none"
        tpm = any(option.startswith("tpm2-device") for option in options)
        pin = any(option in {"tpm2-pin=yes", "tpm2-pin=true", "tpm2-pin=1"} for option in options)
        if (tpm and not pin) or keyfile not in {"none", "-", ""}:
            found.append(fields[0])
    return found


def _conf_files(probes: Probes, single: str, directories: tuple[str, ...]) -> list[str]:
    texts: list[str] = []
    for directory in directories:
        listing = probes.list_dir(directory)
        for entry in listing.entries:
            if entry.endswith(".conf"):
                content = probes.read_file(f"{directory}/{entry}")
                if content.text is not None:
                    texts.append(content.text)
    main = probes.read_file(single)
    if main.text is not None:
        texts.append(main.text)
    return texts


def automatic_login(probes: Probes) -> dict[str, str]:
    """Every display manager (and tty getty) that logs a user in without a password."""
    found: dict[str, str] = {}
    for path in GDM_FILES:
        content = probes.read_file(path)
        if content.text is not None and (user := gdm_autologin(content.text)):
            found["gdm"] = user
    sources = (
        ("lightdm", _conf_files(probes, LIGHTDM_FILE, LIGHTDM_DIRS), lightdm_autologin),
        ("sddm", _conf_files(probes, SDDM_FILE, SDDM_DIRS), sddm_autologin),
    )
    for name, texts, parse in sources:
        # Later files override earlier ones; the last that names a user wins.
        users = [user for text in texts if (user := parse(text))]
        if users:
            found[name] = users[-1]
    getty = probes.list_dir(GETTY_DIR)
    for entry in getty.entries:
        content = probes.read_file(f"{GETTY_DIR}/{entry}")
        if content.text is not None and (user := getty_autologin(content.text)):
            found["getty"] = user
    return found


def firmware_passwords(probes: Probes) -> list[FirmwarePassword] | None:
    """None when no vendor driver exposes firmware authentication on this laptop."""
    drivers = probes.list_dir(FIRMWARE_ATTRIBUTES)
    found: list[FirmwarePassword] = []
    seen_any = False
    for driver in drivers.entries:
        base = f"{FIRMWARE_ATTRIBUTES}/{driver}/authentication"
        for name in probes.list_dir(base).entries:
            enabled = probes.read_file(f"{base}/{name}/is_enabled")
            if enabled.text is None:
                continue
            seen_any = True
            role = probes.read_file(f"{base}/{name}/role")
            found.append(FirmwarePassword(name, (role.text or "").strip(), enabled.text.strip() == "1"))
    return found if seen_any else None


def check(ctx: CheckContext) -> Finding:
    probes = ctx.probes
    firmware = firmware_passwords(probes)
    autologin = automatic_login(probes)
    evidence: dict[str, object] = {
        "firmware_passwords": None
        if firmware is None
        else {p.name: {"role": p.role, "set": p.enabled} for p in firmware},
        "automatic_login": autologin,
    }
    if firmware and any(is_power_on(p) and p.enabled for p in firmware):
        return passed("a power-on (firmware) password is set", **evidence)

    encryption = root_encryption(ctx)
    if isinstance(encryption, Finding):
        evidence["disk_encryption"] = encryption.summary
        encryption_state: RootEncryption | None = None
    else:
        encryption_state = encryption
        evidence["crypt_devices"] = list(encryption.crypt_devices)

    if autologin:
        who = ", ".join(f"{dm} logs in {user}" for dm, user in sorted(autologin.items()))
        return failed(f"automatic login is on ({who})", AUTOLOGIN_REMEDY, **evidence)

    if encryption_state is not None and encryption_state.encrypted:
        crypttab = probes.read_file(CRYPTTAB)
        tpm_only = tpm_only_unlock(crypttab.text or "", encryption_state.crypt_devices)
        if tpm_only:
            evidence["unlocked_without_secret"] = tpm_only
            return failed(
                f"the disk unlocks by itself at power-on ({', '.join(tpm_only)}: TPM or key file, no PIN)",
                NO_SECRET_REMEDY,
                **evidence,
            )
        return passed(
            "the disk asks for its LUKS passphrase before start-up and automatic login is off", **evidence
        )

    if firmware is not None:
        return failed(
            "no power-on password is set and the disk is not encrypted", NO_SECRET_REMEDY, **evidence
        )
    return unknown(
        "this laptop's firmware does not show Linux whether a power-on password is set, "
        "and the disk is not encrypted, so no start-up secret can be seen",
        NO_SECRET_REMEDY,
        **evidence,
    )
