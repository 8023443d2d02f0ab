"""Power-on password on macOS: nobody can start the Mac and reach data without a secret.

Two things can ask for a secret before macOS is reachable:
- FileVault: the Mac starts at a pre-boot unlock screen and needs a user's
  password (or the recovery key) before the disk can be read. Turning
  FileVault on also turns automatic login off. This counts as soon as FileVault
  is on, even while it is still encrypting, because the unlock screen is
  already in place.
- a firmware password, on Intel Macs only (`firmwarepasswd -check`, root only).
  It stops booting from another disk or Recovery, but a normal start still
  goes straight to macOS, so it only protects the data together with
  automatic login being off (`autoLoginUser` absent from
  /Library/Preferences/com.apple.loginwindow.plist).
Apple silicon Macs have no firmware password at all: FileVault is their only
pre-boot protection.

So: FileVault on passes; otherwise automatic login on fails; otherwise an
Intel firmware password passes; otherwise it fails, unless a fact needed for
the verdict could not be read, which is unknown with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from agent.checks.context import CheckContext
from agent.checks.disk_encryption_macos import (
    FDESETUP_PROBE,
    FDESETUP_STATUS,
    TURN_ON_FILEVAULT,
    FileVaultState,
    FileVaultStatus,
    parse_fdesetup_status,
)
from agent.checks.results import Advice, Finding, failed, passed, unknown
from agent.probes.macos import read_plist

FIRMWAREPASSWD_CHECK = ["/usr/sbin/firmwarepasswd", "-check"]
# The domain is com.apple.loginwindow (CIS Apple macOS Benchmark, "Disable automatic login":
# `defaults read /Library/Preferences/com.apple.loginwindow autoLoginUser`); an older copy of this
# check read /Library/Preferences/com.loginwindow.plist, which macOS never writes.
LOGINWINDOW_PLIST = "/Library/Preferences/com.apple.loginwindow.plist"
APPLE_SILICON = "arm64"
# Pre-boot unlock is in place from the moment FileVault is on, before encryption finishes.
PREBOOT_STATES = (FileVaultState.ON, FileVaultState.ENCRYPTING)
TURN_OFF_AUTOLOGIN = Advice(
    "Turn off automatic login: System Settings → Users & Groups → Automatically log in as → Off. "
    "Then turn on FileVault: System Settings → Privacy & Security → FileVault.",
    "Ask your school's IT team to turn off automatic login and turn on FileVault on this Mac.",
    "sudo defaults delete /Library/Preferences/com.apple.loginwindow autoLoginUser; sudo rm -f "
    "/etc/kcpassword; sudo fdesetup enable",
)
FIRMWAREPASSWD_PROBE = "macos.firmware-password.check"


@dataclass(frozen=True)
class Fact:
    """A yes/no fact about the Mac, or why it could not be read (value None)."""

    value: bool | None
    detail: str = ""


@dataclass(frozen=True)
class AutoLogin:
    user: str | None  # who logs in automatically; None when nobody does or it is not known
    problem: str | None = None  # why the setting could not be read

    @property
    def on(self) -> bool:
        return self.user is not None


_FIRMWARE = re.compile(r"Password Enabled:\s*(Yes|No)\b", re.IGNORECASE)


def parse_firmwarepasswd_check(text: str) -> bool | None:
    match = _FIRMWARE.search(text)
    return match.group(1).lower() == "yes" if match else None


def autologin_from_loginwindow(data: dict[str, Any]) -> AutoLogin:
    user = data.get("autoLoginUser")
    return AutoLogin(user.strip() if isinstance(user, str) and user.strip() else None)


def decide_power_on_password(
    apple_silicon: bool,
    filevault: FileVaultStatus | None,
    filevault_problem: str,
    firmware: Fact,
    autologin: AutoLogin,
) -> Finding:
    evidence: dict[str, object] = {
        "apple_silicon": apple_silicon,
        "filevault": filevault.state.value if filevault else None,
        "firmware_password": firmware.value,
        "automatic_login_user": autologin.user,
    }
    if filevault is None:
        evidence["filevault_problem"] = filevault_problem
    if firmware.detail:
        evidence["firmware_password_detail"] = firmware.detail
    if autologin.problem:
        evidence["automatic_login_problem"] = autologin.problem

    if filevault is not None and filevault.state in PREBOOT_STATES:
        return passed("FileVault asks for a password before macOS starts", **evidence)
    if autologin.on:
        return failed(
            f"Anyone who starts this Mac is logged in automatically as {autologin.user}",
            TURN_OFF_AUTOLOGIN,
            **evidence,
        )
    if firmware.value is True:
        if autologin.problem:
            return unknown(
                "A firmware password is set, but whether automatic login is off cannot be read: "
                + autologin.problem,
                TURN_ON_FILEVAULT,
                **evidence,
            )
        return passed("A firmware password is set and automatic login is off", **evidence)
    if filevault is None:
        return unknown(
            f"Cannot tell whether FileVault is on: {filevault_problem}", TURN_ON_FILEVAULT, **evidence
        )
    if apple_silicon:
        return failed(
            "FileVault is off, and on this Mac FileVault is the only password asked for at start-up",
            TURN_ON_FILEVAULT,
            **evidence,
        )
    if firmware.value is None:
        return unknown(
            f"FileVault is off and the firmware password cannot be read: {firmware.detail}",
            TURN_ON_FILEVAULT,
            **evidence,
        )
    return failed("FileVault is off and no firmware password is set", TURN_ON_FILEVAULT, **evidence)


def read_filevault(ctx: CheckContext) -> tuple[FileVaultStatus | None, str]:
    output = ctx.probes.run(FDESETUP_STATUS, probe_id=FDESETUP_PROBE)
    if not output.ok:
        return None, output.describe()
    status = parse_fdesetup_status(output.stdout)
    if status is None:
        return None, "fdesetup status answered: " + output.stdout.strip()[:200]
    return status, ""


def read_firmware_password(ctx: CheckContext) -> Fact:
    if not ctx.platform.is_admin:
        return Fact(None, "firmwarepasswd needs root: run as root (the Homeroom service)")
    output = ctx.probes.run(FIRMWAREPASSWD_CHECK, probe_id=FIRMWAREPASSWD_PROBE)
    if not output.ok:
        return Fact(None, output.describe())
    enabled = parse_firmwarepasswd_check(output.stdout)
    if enabled is None:
        return Fact(None, "firmwarepasswd answered: " + output.stdout.strip()[:200])
    return Fact(enabled)


def read_autologin(ctx: CheckContext) -> AutoLogin:
    plist = read_plist(ctx.probes, LOGINWINDOW_PLIST)
    if plist.missing:
        return AutoLogin(None)  # no login window preferences at all: nothing logs in automatically
    if plist.data is None:
        return AutoLogin(None, f"{LOGINWINDOW_PLIST}: {plist.error}")
    return autologin_from_loginwindow(plist.data)


def check(ctx: CheckContext) -> Finding:
    apple_silicon = ctx.platform.machine == APPLE_SILICON
    filevault, filevault_problem = read_filevault(ctx)
    autologin = read_autologin(ctx)
    protected = filevault is not None and filevault.state in PREBOOT_STATES
    if apple_silicon:
        firmware = Fact(False, "Apple silicon Macs have no firmware password")
    elif protected:
        firmware = Fact(None, "not asked: FileVault already protects start-up")
    else:
        firmware = read_firmware_password(ctx)
    return decide_power_on_password(apple_silicon, filevault, filevault_problem, firmware, autologin)
