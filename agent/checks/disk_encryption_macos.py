"""Disk encryption on macOS: FileVault, as `fdesetup status` reports it.

A lost laptop keeps its data private only once every block is encrypted, so
only "FileVault is On." with no conversion under way passes. While FileVault
is still encrypting, the disk holds readable data: that is a fail, with the
progress in the evidence, so IT can tell "nearly there" from "never started".
A deferred enablement (FileVault turns on at the next log-out or restart) is a
fail too, because until then nothing is encrypted.

`fdesetup status` runs without root. Its answer is one or two lines, e.g.
"FileVault is On." then "Encryption in progress: Percent completed = 42.1".
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from agent.checks.context import CheckContext
from agent.checks.results import Advice, Finding, broken, failed, passed, unknown

FDESETUP_STATUS = ["/usr/bin/fdesetup", "status"]
FDESETUP_PROBE = "macos.filevault.status"
TURN_ON_FILEVAULT = Advice(
    "Turn on FileVault: System Settings → Privacy & Security → FileVault.",
    "Ask your school's IT team to turn on FileVault (disk encryption) on this Mac.",
    "sudo fdesetup enable (or deploy a FileVault profile from the MDM, with the recovery key escrowed)",
)
OS_REFUSALS = ("operation not permitted", "must be run as root", "permission denied", "not authorized")


class FileVaultState(str, enum.Enum):
    ON = "on"
    OFF = "off"
    ENCRYPTING = "encrypting"
    DECRYPTING = "decrypting"
    # Turned on, but it only starts at the next log-out or restart.
    PENDING = "pending"


@dataclass(frozen=True)
class FileVaultStatus:
    state: FileVaultState
    percent_completed: float | None = None
    deferred_user: str | None = None


_PERCENT = re.compile(r"Percent completed\s*=\s*([0-9]+(?:\.[0-9]+)?)", re.IGNORECASE)
_DEFERRED = re.compile(r"Deferred enablement appears to be active for user '([^']*)'", re.IGNORECASE)


def _percent(line: str) -> float | None:
    match = _PERCENT.search(line)
    return float(match.group(1)) if match else None


def parse_fdesetup_status(text: str) -> FileVaultStatus | None:
    """None when the text is none of fdesetup's known answers.

    A conversion line outranks the "FileVault is On." line above it: during
    encryption fdesetup already says On.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        lowered = line.lower()
        if lowered.startswith("encryption in progress"):
            return FileVaultStatus(FileVaultState.ENCRYPTING, _percent(line))
        if lowered.startswith("decryption in progress"):
            return FileVaultStatus(FileVaultState.DECRYPTING, _percent(line))
    for line in lines:
        deferred = _DEFERRED.search(line)
        if deferred:
            return FileVaultStatus(FileVaultState.PENDING, deferred_user=deferred.group(1))
        if line.lower().startswith("filevault is off, but will be enabled"):
            return FileVaultStatus(FileVaultState.PENDING)
    for line in lines:
        if line == "FileVault is On.":
            return FileVaultStatus(FileVaultState.ON)
        if line == "FileVault is Off.":
            return FileVaultStatus(FileVaultState.OFF)
    return None


def decide_disk_encryption(status: FileVaultStatus) -> Finding:
    evidence: dict[str, object] = {"filevault": status.state.value}
    if status.percent_completed is not None:
        evidence["percent_completed"] = status.percent_completed
    if status.deferred_user is not None:
        evidence["deferred_user"] = status.deferred_user
    done = f" ({status.percent_completed:g}% done)" if status.percent_completed is not None else ""
    if status.state is FileVaultState.ON:
        return passed("FileVault is on: the startup disk is encrypted", **evidence)
    if status.state is FileVaultState.ENCRYPTING:
        return failed(
            f"FileVault is still encrypting the startup disk{done}",
            "Keep your Mac switched on and plugged in until FileVault finishes. You can watch the progress "
            "in System Settings → Privacy & Security → FileVault.",
            **evidence,
        )
    if status.state is FileVaultState.DECRYPTING:
        return failed(
            f"FileVault is being turned off and the disk is being decrypted{done}",
            Advice(
                "Turn FileVault back on: System Settings → Privacy & Security → FileVault → Turn On.",
                "Ask your school's IT team to turn FileVault back on: it is being turned off.",
                "sudo fdesetup enable once decryption has finished (fdesetup status shows it)",
            ),
            **evidence,
        )
    if status.state is FileVaultState.PENDING:
        return failed(
            "FileVault is set to turn on, but has not started yet",
            "Log out or restart your Mac, then enter your password when asked, so FileVault can start.",
            **evidence,
        )
    return failed("FileVault is off: the startup disk is not encrypted", TURN_ON_FILEVAULT, **evidence)


def refused(text: str) -> bool:
    lowered = text.lower()
    return any(phrase in lowered for phrase in OS_REFUSALS)


def check(ctx: CheckContext) -> Finding:
    output = ctx.probes.run(FDESETUP_STATUS, probe_id=FDESETUP_PROBE)
    if output.error:
        return broken(f"could not run fdesetup: {output.describe()}")
    if output.exit_code != 0:
        if refused(output.stderr + output.stdout):
            return unknown(
                "macOS refused to report FileVault status to this account: "
                "run as root (the Homeroom service)",
                detail=output.describe(),
            )
        return broken(f"fdesetup failed: {output.describe()}", exit_code=output.exit_code)
    status = parse_fdesetup_status(output.stdout)
    if status is None:
        return broken(
            "fdesetup status answered in a way this agent does not recognise",
            output=output.stdout.strip()[:300],
        )
    return decide_disk_encryption(status)
