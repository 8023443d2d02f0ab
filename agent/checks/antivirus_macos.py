"""Antivirus on macOS: XProtect's signatures are fresh, or a known security product is running.

Every Mac has XProtect, Apple's built-in malware scanner; it is always on, so
what can go wrong is that its signatures stop being updated (automatic
security updates turned off, a Mac that never reaches the internet). Its
version is `CFBundleShortVersionString` of the bundle's Info.plist and its age
is that file's modification time, or, when the file gives none, the newest
"XProtectPlistConfigData" install in `system_profiler SPInstallHistoryDataType
-json`. From macOS 15 Apple also delivers XProtect updates to
/private/var/protected/xprotect, so both bundles are read and the newer one
counts.

A district may run its own endpoint product instead; one of the known ones
running passes whatever XProtect's age, because those update themselves
and report to their own console. The age limit is the district's
(`max_xprotect_age_days`, longer than the daily engines' limit because Apple
ships XProtect updates every few weeks).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from agent.checks.context import CheckContext
from agent.checks.results import Advice, Finding, broken, failed, passed, unknown
from agent.probes import ProcessInfo
from agent.probes.macos import read_plist

XPROTECT_INFO_PLISTS = (
    "/Library/Apple/System/Library/CoreServices/XProtect.bundle/Contents/Info.plist",
    "/private/var/protected/xprotect/XProtect.bundle/Contents/Info.plist",
)
INSTALL_HISTORY = ["/usr/sbin/system_profiler", "SPInstallHistoryDataType", "-json"]
XPROTECT_PACKAGE = "XProtectPlistConfigData"
UPDATE_XPROTECT = Advice(
    "Turn on security updates: System Settings → General → Software Update → the ⓘ next to Automatic "
    "updates → Install Security Responses and system files, then connect to the internet and restart.",
    "Connect to the internet and restart your Mac. If this message stays, ask your school's IT team to "
    "turn on automatic security updates.",
    "sudo softwareupdate --background-critical (forces an XProtect update check); or set "
    "CriticalUpdateInstall and ConfigDataInstall to true in com.apple.SoftwareUpdate",
)
INSTALL_HISTORY_PROBE = "macos.install-history"
# Process names as `ps` and psutil show them. psutil may cut a long name to its first 15 or 16 characters.
KNOWN_PRODUCTS: dict[str, tuple[str, ...]] = {
    "CrowdStrike Falcon": ("com.crowdstrike.falcon.Agent", "falcond"),
    "SentinelOne": ("sentineld", "SentinelAgent"),
    "Sophos": ("SophosScanD", "SophosAntiVirus", "com.sophos.endpoint.scanextension"),
    "Microsoft Defender": ("wdavdaemon", "wdavdaemon_enterprise", "wdavdaemon_unprivileged"),
    "Jamf Protect": ("JamfProtect", "com.jamf.protect.daemon"),
}
TRUNCATED_NAME_LENGTH = 15
# Microsoft Defender answers for itself (Microsoft Learn, "Resources for Microsoft Defender for
# Endpoint on macOS": `mdatp health --field real_time_protection_enabled` prints true or false).
MDATP_HEALTH = ["/usr/local/bin/mdatp", "health", "--field", "real_time_protection_enabled"]
MDATP_PROBE = "macos.mdatp.real-time-protection"


def defender_says(answer_ok: bool, stdout: str) -> bool | None:
    """Defender's own answer: True on, False off, None when it gave none."""
    if not answer_ok:
        return None
    text = stdout.strip().strip('"').casefold()
    return True if text == "true" else False if text == "false" else None


@dataclass(frozen=True)
class XProtectSignatures:
    version: str
    updated: datetime | None  # None when neither the file nor the install history says
    source: str  # where `updated` came from


def version_key(version: str) -> tuple[int, ...]:
    """XProtect versions are plain numbers ("5287"); dotted ones compare part by part."""
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def xprotect_version(info: dict[str, Any]) -> str | None:
    version = info.get("CFBundleShortVersionString")
    return version.strip() if isinstance(version, str) and version.strip() else None


def parse_install_history(text: str) -> datetime | None:
    """The newest XProtect signature install in `system_profiler SPInstallHistoryDataType -json` output."""
    data = json.loads(text)
    entries = data.get("SPInstallHistoryDataType", []) if isinstance(data, dict) else []
    newest: datetime | None = None
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("_name") != XPROTECT_PACKAGE:
            continue
        stamp = entry.get("install_date")
        if not isinstance(stamp, str):
            continue
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
        newest = when if newest is None or when > newest else newest
    return newest


def product_for_process(process: ProcessInfo) -> str | None:
    names = {process.name}
    if process.exe:
        names.add(process.exe.rstrip("/").rsplit("/", 1)[-1])
    for product, known in KNOWN_PRODUCTS.items():
        for name in names:
            for known_name in known:
                if name == known_name:
                    return product
                if len(name) >= TRUNCATED_NAME_LENGTH and known_name.startswith(name):
                    return product
    return None


def running_products(processes: Iterable[ProcessInfo]) -> list[str]:
    found = {product for process in processes if (product := product_for_process(process))}
    return sorted(found)


def decide_antivirus(
    signatures: XProtectSignatures | None,
    xprotect_problem: str,
    products: list[str],
    process_problem: str | None,
    max_age_days: int,
    now: datetime,
) -> Finding:
    evidence: dict[str, object] = {"max_signature_age_days": max_age_days, "security_products": products}
    age_days: float | None = None
    if signatures is not None:
        evidence["xprotect_version"] = signatures.version
        if signatures.updated is not None:
            age_days = (now - signatures.updated).total_seconds() / 86400
            evidence["xprotect_updated"] = signatures.updated.isoformat()
            evidence["xprotect_age_days"] = round(age_days, 1)
            evidence["xprotect_date_source"] = signatures.source
    else:
        evidence["xprotect_problem"] = xprotect_problem
    if process_problem:
        evidence["process_problem"] = process_problem

    if products:
        return passed(f"{', '.join(products)} is running", **evidence)
    if signatures is not None and age_days is not None and age_days <= max_age_days:
        return passed(f"XProtect {signatures.version} is up to date ({age_days:.0f} days old)", **evidence)
    if signatures is None:
        return unknown(f"Cannot read XProtect's signatures: {xprotect_problem}", UPDATE_XPROTECT, **evidence)
    if age_days is None:
        return unknown(
            f"XProtect {signatures.version} is installed, but its update date cannot be read: "
            f"{signatures.source}",
            UPDATE_XPROTECT,
            **evidence,
        )
    if process_problem:
        return unknown(
            f"XProtect's signatures are {age_days:.0f} days old and the running programs cannot be listed "
            f"to look for another security product: {process_problem}",
            UPDATE_XPROTECT,
            **evidence,
        )
    return failed(
        f"XProtect's signatures are {age_days:.0f} days old (the limit is {max_age_days}) "
        "and no other security product is running",
        UPDATE_XPROTECT,
        **evidence,
    )


def read_signatures(ctx: CheckContext) -> tuple[XProtectSignatures | None, str]:
    """The newest XProtect bundle, with its date; or why none could be read."""
    best: tuple[tuple[int, ...], str, float | None] | None = None
    problems: list[str] = []
    for path in XPROTECT_INFO_PLISTS:
        plist = read_plist(ctx.probes, path)
        version = xprotect_version(plist.data) if plist.data is not None else None
        if version is None:
            problems.append(f"{path}: {plist.error or 'no CFBundleShortVersionString'}")
            continue
        candidate = (version_key(version), version, plist.mtime)
        if best is None or candidate[0] > best[0]:
            best = candidate
    if best is None:
        return None, "; ".join(problems)
    _, version, mtime = best
    if mtime is not None:
        return XProtectSignatures(version, datetime.fromtimestamp(mtime, tz=timezone.utc), "Info.plist"), ""
    history = ctx.probes.run(INSTALL_HISTORY, timeout=60.0, probe_id=INSTALL_HISTORY_PROBE)
    if not history.ok:
        return XProtectSignatures(version, None, f"install history: {history.describe()}"), ""
    try:
        updated = parse_install_history(history.stdout)
    except ValueError as exc:
        return XProtectSignatures(version, None, f"install history is not JSON: {exc}"), ""
    if updated is None:
        return XProtectSignatures(version, None, "install history lists no XProtect update"), ""
    return XProtectSignatures(version, updated, "install history"), ""


def check(ctx: CheckContext) -> Finding:
    listing = ctx.probes.processes()
    products = running_products(listing.processes)
    if "Microsoft Defender" in products:
        answer = ctx.probes.run(MDATP_HEALTH, probe_id=MDATP_PROBE)
        if defender_says(answer.ok, answer.stdout) is False:
            # Running, but it says real-time protection is off: it protects nothing.
            products = [p for p in products if p != "Microsoft Defender"]
    signatures, problem = read_signatures(ctx)
    if signatures is None and listing.error and not products:
        return broken(
            f"could not read XProtect ({problem}) nor list running programs ({listing.error})",
            xprotect_problem=problem,
            process_problem=listing.error,
        )
    return decide_antivirus(
        signatures,
        problem,
        products,
        listing.error,
        ctx.requirements.antivirus_max_xprotect_age_days,
        ctx.now,
    )
