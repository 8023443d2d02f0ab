"""Antivirus on Linux: ClamAV's scanner daemon answering with fresh signatures, or a known EDR agent.

A running process proves only that the process runs, so each product is asked
itself where it has a status command: clamd answers `clamdscan --ping 1`
with "PONG" (exit 0; "PING timeout exceeded; No response from clamd", exit
21, when it does not: recorded from ClamAV 1.4.6 on Debian 12, SOURCES.md);
Microsoft Defender for Endpoint answers `mdatp health --field
real_time_protection_enabled` ("true"/"false"); CrowdStrike Falcon answers
`falconctl -g --rfm-state` ("rfm-state=false." when not in reduced
functionality mode). Other agents are known by their process only, and the
summary says so.

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
from agent.checks.results import Advice, Finding, failed, passed, unknown
from agent.probes import CommandOutput, Probes, ProcessInfo

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
CLAMD_VERSION = ["clamd", "--version"]
CLAMD_VERSION_PROBE = "linux.clamav.clamd-version"
CLAMD_PING_PROBE = "linux.clamav.ping"
MDATP_HEALTH = ["mdatp", "health", "--field", "real_time_protection_enabled"]
MDATP_PROBE = "linux.mdatp.real-time-protection"
FALCON_RFM = ["/opt/CrowdStrike/falconctl", "-g", "--rfm-state"]
FALCON_PROBE = "linux.falcon.rfm-state"
ASK_IT_ANTIVIRUS = "Ask your school's IT team to turn on virus protection on this laptop."
START_CLAMD = Advice(
    "Virus protection is installed but not running: ask your school's IT team to start it.",
    ASK_IT_ANTIVIRUS,
    "sudo systemctl enable --now clamav-daemon clamav-freshclam (Fedora/RHEL: clamd@scan, clamav-freshclam)",
)
INSTALL_ANTIVIRUS = Advice(
    "No virus protection is installed: ask your school's IT team to install the district's antivirus.",
    "Ask your school's IT team to install virus protection on this laptop.",
    "ClamAV is not installed: install the district's endpoint agent, or ClamAV (Debian/Ubuntu: sudo apt "
    "install clamav-daemon clamav-freshclam clamdscan; then sudo systemctl enable --now clamav-daemon "
    "clamav-freshclam)",
)
UPDATE_SIGNATURES = Advice(
    "Connect to the internet and leave the laptop on for an hour: virus signatures update by themselves. "
    "If they still do not, ask your school's IT team.",
    "Connect to the internet and leave the laptop on for an hour: virus signatures update by themselves. "
    "If they still do not, ask your school's IT team.",
    "sudo systemctl restart clamav-freshclam; journalctl -u clamav-freshclam shows why updates fail",
)
RESTART_CLAMD = Advice(
    "Restart the laptop. If virus protection still does not answer, ask your school's IT team.",
    "Restart the laptop. If virus protection still does not answer, ask your school's IT team.",
    "sudo systemctl restart clamav-daemon; journalctl -u clamav-daemon shows why clamd does not answer",
)
INSTALL_CLAMDSCAN = Advice(
    "Ask your school's IT team to check the virus protection on this laptop.",
    "Ask your school's IT team to check the virus protection on this laptop.",
    "install clamdscan (sudo apt install clamdscan), which Homeroom uses to ask clamd whether it works",
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


def clamd_answers(output: CommandOutput) -> bool | None:
    """True when clamd said PONG; False when clamdscan ran and clamd did not answer; None when not asked."""
    if output.missing or output.error:
        return None
    return output.exit_code == 0 and output.stdout.strip() == "PONG"


def mdatp_real_time(output: CommandOutput) -> bool | None:
    if not output.ok:
        return None
    answer = output.stdout.strip().strip('"').casefold()
    return True if answer == "true" else False if answer == "false" else None


def falcon_functional(output: CommandOutput) -> bool | None:
    """`rfm-state=false.` means Falcon is fully functional; true means reduced functionality mode."""
    if not output.ok:
        return None
    text = output.stdout.strip().casefold().rstrip(".")
    if text.endswith("rfm-state=false"):
        return True
    if text.endswith("rfm-state=true"):
        return False
    return None


def edr_health(probes: Probes, products: list[str]) -> dict[str, bool | None]:
    """Each running agent's own answer: True healthy, False not, None when it has no command we ask."""
    health: dict[str, bool | None] = {}
    for product in products:
        if product == "Microsoft Defender for Endpoint":
            health[product] = mdatp_real_time(probes.run(MDATP_HEALTH, probe_id=MDATP_PROBE))
        elif product == "CrowdStrike Falcon":
            health[product] = falcon_functional(probes.run(FALCON_RFM, probe_id=FALCON_PROBE))
        else:
            health[product] = None
    return health


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


def _ping_command(clamd: ProcessInfo) -> list[str]:
    config = config_from_cmdline(clamd.cmdline)
    return ["clamdscan", *(["-c", config] if config else []), "--ping", "1"]


def check(ctx: CheckContext) -> Finding:
    listing = ctx.probes.processes()
    if listing.error:
        return unknown(f"the process list could not be read: {listing.error}")
    running_edr = find_edr(listing.processes)
    health = edr_health(ctx.probes, running_edr)
    healthy_edr = [name for name in running_edr if health[name] is not False]
    broken_edr = [name for name in running_edr if health[name] is False]
    clamd = next((p for p in listing.processes if p.name == "clamd"), None)
    max_age = ctx.requirements.antivirus_max_signature_age_days
    evidence: dict[str, object] = {
        "edr_agents": running_edr,
        "edr_health": {name: health[name] for name in running_edr},
        "clamd_running": clamd is not None,
    }
    edr_pass = _edr_pass(healthy_edr, health, evidence)
    if clamd is not None:
        ping = ctx.probes.run(_ping_command(clamd), probe_id=CLAMD_PING_PROBE)
        answers = clamd_answers(ping)
        evidence["clamd_answers"] = answers
        if answers is None:
            evidence["clamd_ping"] = ping.describe()
        directory = _clamd_database_dir(ctx.probes, clamd)
        evidence["database_directory"] = directory
        databases = signature_databases(ctx.probes, directory)
        age_days: float | None = None
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
        if edr_pass is not None:
            return edr_pass
        if answers is False:
            return failed(
                "ClamAV's scanner (clamd) is running but does not answer", RESTART_CLAMD, **evidence
            )
        if age_days is not None and age_days > max_age:
            return failed(
                f"ClamAV's signatures are {age_days:.0f} days old (the limit is {max_age})",
                UPDATE_SIGNATURES,
                **evidence,
            )
        if age_days is None:
            return failed("ClamAV is running but has no virus signatures", UPDATE_SIGNATURES, **evidence)
        if answers is None:
            return unknown(
                "ClamAV's scanner is running, but it could not be asked whether it works "
                f"({ping.describe()}); a running process alone does not show protection",
                INSTALL_CLAMDSCAN,
                **evidence,
            )
        return passed(f"ClamAV answers and its signatures are {age_days:.0f} day(s) old", **evidence)
    if edr_pass is not None:
        return edr_pass
    if broken_edr:
        return failed(
            f"{', '.join(broken_edr)} is running but reports that it is not protecting",
            Advice(ASK_IT_ANTIVIRUS, ASK_IT_ANTIVIRUS, "check the agent in its own console"),
            **evidence,
        )
    installed = ctx.probes.run(CLAMD_VERSION, probe_id=CLAMD_VERSION_PROBE)
    evidence["clamav_installed"] = not installed.missing
    if installed.missing:
        return failed("no antivirus is installed", INSTALL_ANTIVIRUS, **evidence)
    return failed("ClamAV is installed but its scanner (clamd) is not running", START_CLAMD, **evidence)


def _edr_pass(
    healthy: list[str], health: dict[str, bool | None], evidence: dict[str, object]
) -> Finding | None:
    """A pass for EDR agents that said they protect, or that run and have no command to ask."""
    asked = [name for name in healthy if health[name] is True]
    if asked:
        return passed(f"{', '.join(asked)} reports real-time protection on", **evidence)
    if healthy:
        return passed(
            f"{', '.join(healthy)} is running (it manages its own signatures; its own status was not "
            "reported)",
            **evidence,
        )
    return None
