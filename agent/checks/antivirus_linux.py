"""Antivirus on Linux: ClamAV's scanner daemon with fresh signatures, or a known EDR agent.

ClamAV's databases carry their build time in a 512-byte text header
(`ClamAV-VDB:<build time>:<version>:<signatures>:<level>:<md5>:<dsig>:<builder>:<seconds>`),
which is what "signature age" means for `.cvd`/`.cld` files. A district's
own databases (`.hdb`, `.ndb`, ... made with sigtool) have no header: their
file time is their age. The daemon reads the directory named by
`DatabaseDirectory` in the configuration it was started with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from agent.checks.context import CheckContext
from agent.checks.results import Finding, failed, passed, unknown
from agent.probes import Probes, ProcessInfo

DEFAULT_CLAMD_CONFIGS = ("/etc/clamav/clamd.conf", "/etc/clamd.d/scan.conf", "/usr/local/etc/clamd.conf")
DEFAULT_DATABASE_DIR = "/var/lib/clamav"
HEADER_BYTES = 512
DATABASE_SUFFIXES = (".cvd", ".cld", ".cud", ".hdb", ".hsb", ".mdb", ".msb", ".ndb", ".ldb", ".cdb", ".ign2")
# Process names of endpoint protection agents whose vendors keep their own signatures current.
KNOWN_EDR_PROCESSES = {
    "falcon-sensor": "CrowdStrike Falcon",
    "wdavdaemon": "Microsoft Defender for Endpoint",
    "s1-agent": "SentinelOne",
    "sentinelone-agent": "SentinelOne",
    "sophos_threat_detector": "Sophos Protection for Linux",
    "cbagentd": "VMware Carbon Black",
    "elastic-endpoint": "Elastic Defend",
    "ds_agent": "Trend Micro Deep Security",
}
START_CLAMD = (
    "Turn on virus protection: run `sudo systemctl enable --now clamav-daemon clamav-freshclam`, "
    "or ask your school's IT team."
)
UPDATE_SIGNATURES = (
    "Update the virus signatures: connect to the internet and run `sudo systemctl restart clamav-freshclam` "
    "(it updates by itself once it can reach the internet)."
)


@dataclass(frozen=True)
class Database:
    name: str
    built: datetime | None


def parse_cvd_header(text: str) -> datetime | None:
    """The build time of a .cvd/.cld database, from its header's last field (seconds since 1970)."""
    if not text.startswith("ClamAV-VDB:"):
        return None
    fields = text[:HEADER_BYTES].split(":")
    if len(fields) > 8:
        seconds = re.match(r"\d+", fields[8].strip())
        if seconds:
            return datetime.fromtimestamp(int(seconds.group()), tz=timezone.utc)
    try:
        return datetime.strptime(fields[1], "%d %b %Y %H-%M %z")
    except (IndexError, ValueError):
        return None


def parse_clamd_config(text: str) -> str:
    """`DatabaseDirectory` from clamd.conf (last one wins, as in clamd), or the compiled-in default."""
    directory = DEFAULT_DATABASE_DIR
    for line in text.splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) == 2 and parts[0] == "DatabaseDirectory":
            directory = parts[1].strip().strip('"')
    return directory


def config_from_cmdline(cmdline: tuple[str, ...]) -> str | None:
    for index, arg in enumerate(cmdline):
        if arg.startswith("--config-file="):
            return arg.split("=", 1)[1]
        if arg in {"-c", "--config-file"} and index + 1 < len(cmdline):
            return cmdline[index + 1]
    return None


def find_edr(processes: tuple[ProcessInfo, ...]) -> list[str]:
    return sorted({KNOWN_EDR_PROCESSES[p.name] for p in processes if p.name in KNOWN_EDR_PROCESSES})


def signature_databases(probes: Probes, directory: str) -> list[Database] | str:
    listing = probes.list_dir(directory)
    if listing.error:
        return f"{directory}: {listing.error}"
    found: list[Database] = []
    for entry in listing.entries:
        if not entry.endswith(DATABASE_SUFFIXES):
            continue
        content = probes.read_file(f"{directory}/{entry}", limit=HEADER_BYTES)
        built = parse_cvd_header(content.text or "") if entry.endswith((".cvd", ".cld")) else None
        if built is None and content.mtime is not None:
            built = datetime.fromtimestamp(content.mtime, tz=timezone.utc)
        found.append(Database(entry, built))
    return found


def _clamd_database_dir(probes: Probes, clamd: ProcessInfo) -> str:
    configs = [path] if (path := config_from_cmdline(clamd.cmdline)) else list(DEFAULT_CLAMD_CONFIGS)
    for config in configs:
        content = probes.read_file(config)
        if content.text is not None:
            return parse_clamd_config(content.text)
    return DEFAULT_DATABASE_DIR


def check(ctx: CheckContext) -> Finding:
    listing = ctx.probes.processes()
    if listing.error:
        return unknown(f"the process list could not be read: {listing.error}")
    edr = find_edr(listing.processes)
    clamd = next((p for p in listing.processes if p.name == "clamd"), None)
    max_age = ctx.requirements.antivirus_max_signature_age_days
    evidence: dict[str, object] = {"edr_agents": edr, "clamd_running": clamd is not None}
    if clamd is not None:
        directory = _clamd_database_dir(ctx.probes, clamd)
        evidence["database_directory"] = directory
        databases = signature_databases(ctx.probes, directory)
        if isinstance(databases, str):
            evidence["database_problem"] = databases
        else:
            dated = [db for db in databases if db.built is not None]
            evidence["databases"] = {db.name: db.built.isoformat() if db.built else None for db in databases}
            if dated:
                newest = max(db.built for db in dated if db.built is not None)
                age_days = (ctx.now - newest).total_seconds() / 86400
                evidence["signature_age_days"] = round(age_days, 1)
                evidence["max_signature_age_days"] = max_age
                if age_days <= max_age:
                    return passed(f"ClamAV is running; signatures are {age_days:.0f} day(s) old", **evidence)
                if not edr:
                    return failed(
                        f"ClamAV's signatures are {age_days:.0f} days old (the limit is {max_age})",
                        UPDATE_SIGNATURES,
                        **evidence,
                    )
    if edr:
        return passed(f"{', '.join(edr)} is running", **evidence)
    if clamd is not None:
        return failed("ClamAV is running but has no virus signatures", UPDATE_SIGNATURES, **evidence)
    return failed("no running antivirus was found", START_CLAMD, **evidence)
