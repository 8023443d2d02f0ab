"""Reading `agent.toml` and `requirements.toml`, and saying exactly what is wrong with them.

A district edits these files by hand. A mistake must come back as the file,
the line and the fix, never as a traceback, and an unknown key is a mistake
(a misspelt `max_idle_minute` would otherwise silently keep the default).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

CHECK_IDS = (
    "disk_encryption",
    "firewall",
    "power_on_password",
    "antivirus",
    "screen_lock",
    "software",
)
CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


class ConfigError(Exception):
    def __init__(self, file: str, line: int | None, message: str, fix: str) -> None:
        self.file = file
        self.line = line
        self.message = message
        self.fix = fix
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {message}. Fix: {fix}")


@dataclass(frozen=True)
class SoftwareRule:
    """A name glob (case-insensitive), optionally narrowed by a publisher glob."""

    name: str
    publisher: str | None = None


@dataclass(frozen=True)
class Requirements:
    enabled: tuple[str, ...] = CHECK_IDS
    check_timeout_seconds: float = 20.0
    screen_lock_max_idle_minutes: int = 15
    antivirus_max_signature_age_days: int = 7
    # Apple ships XProtect updates every few weeks, not daily: its own limit keeps
    # up-to-date Macs from failing a limit meant for daily-updated engines.
    antivirus_max_xprotect_age_days: int = 30
    software_mode: str = "allowlist"
    software_baseline: bool = True
    software_approved: tuple[SoftwareRule, ...] = ()
    software_blocked: tuple[SoftwareRule, ...] = ()
    # Sign-off renewal: "MM-DD" each year (the start of the school year), and/or after N days (0: never).
    signoff_renew_on: str = ""
    signoff_renew_after_days: int = 0
    # After "I do not agree": ask again at the next login (0), or also after this many hours.
    signoff_ask_again_after_hours: int = 0


@dataclass(frozen=True)
class AgentConfig:
    server_url: str = ""
    enrolment_token: str = ""
    state_dir: str = ""
    outbox_max_mb: int = 50
    check_interval_minutes: int = 60
    report_interval_hours: int = 4
    heartbeat_interval_minutes: int = 15
    audience: str = "student"


# --- locating keys in the source, for line numbers ---------------------------------

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


def _key_pattern(key: str) -> re.Pattern[str]:
    quoted = re.escape(key)
    return re.compile(rf"^\s*(?:{quoted}|\"{quoted}\"|'{quoted}')\s*=")


def locate(text: str, table: str, key: str | None) -> int | None:
    """The 1-based line of `key` inside `[table]` (or of the header itself when key is None)."""
    current = ""
    pattern = _key_pattern(key) if key is not None else None
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            current = header.group(1).replace(" ", "")
            if key is None and current == table:
                return number
            continue
        if pattern is not None and current == table and pattern.match(line):
            return number
    return None


# --- a small schema -------------------------------------------------------------------

Validator = Callable[[Any], str | None]  # returns the problem, or None when fine


def _int_range(low: int, high: int) -> Validator:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be a whole number, not {type(value).__name__}"
        if not low <= value <= high:
            return f"must be between {low} and {high}, not {value}"
        return None

    return check


def _number_range(low: float, high: float) -> Validator:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"must be a number, not {type(value).__name__}"
        if not low <= value <= high:
            return f"must be between {low:g} and {high:g}, not {value}"
        return None

    return check


def _string(value: Any) -> str | None:
    return None if isinstance(value, str) else f"must be a quoted string, not {type(value).__name__}"


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _one_of(*choices: str) -> Validator:
    def check(value: Any) -> str | None:
        if value not in choices:
            return f"must be one of {', '.join(repr(c) for c in choices)}, not {value!r}"
        return None

    return check


def _month_day(value: Any) -> str | None:
    if not isinstance(value, str) or not re.fullmatch(r"(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])", value):
        return 'must be a month and day in quotes, like "08-15"'
    return None


def _check_ids(value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return "must be a list of check ids in quotes"
    wrong = [v for v in value if v not in CHECK_IDS]
    if wrong:
        return f"has unknown check id {wrong[0]!r} (known: {', '.join(CHECK_IDS)})"
    return None


def _rules(value: Any) -> str | None:
    if not isinstance(value, list):
        return 'must be a list like ["Name*", { name = "Name*", publisher = "Vendor*" }]'
    for item in value:
        if isinstance(item, str):
            continue
        if isinstance(item, dict):
            unknown = set(item) - {"name", "publisher"}
            if unknown:
                return f"has an entry with unknown key {sorted(unknown)[0]!r} (use name and publisher)"
            if not isinstance(item.get("name"), str):
                return "has an entry without a quoted name"
            if "publisher" in item and not isinstance(item["publisher"], str):
                return "has an entry whose publisher is not a quoted string"
            continue
        return f"has an entry that is neither a name nor {{ name = ..., publisher = ... }}: {item!r}"
    return None


Schema = dict[str, dict[str, tuple[Validator, str]]]  # table -> key -> (validator, fix hint)

REQUIREMENTS_SCHEMA: Schema = {
    "checks": {
        "enabled": (_check_ids, f"list the checks to run, from {', '.join(CHECK_IDS)}"),
        "timeout_seconds": (_number_range(1, 600), "give the per-check time limit in seconds, e.g. 20"),
    },
    "screen_lock": {
        "max_idle_minutes": (_int_range(1, 240), "give the longest idle time before lock, e.g. 15"),
    },
    "antivirus": {
        "max_signature_age_days": (_int_range(1, 365), "give the oldest acceptable signature age, e.g. 7"),
        "max_xprotect_age_days": (_int_range(1, 365), "give the oldest acceptable XProtect age, e.g. 30"),
    },
    "software": {
        "mode": (_one_of("allowlist", "blocklist"), 'use "allowlist" or "blocklist"'),
        "baseline": (_boolean, "write baseline = true or baseline = false"),
        "approved": (_rules, 'write approved = ["Name*", { name = "Name*", publisher = "Vendor*" }]'),
        "blocked": (_rules, 'write blocked = ["Name*", { name = "Name*", publisher = "Vendor*" }]'),
    },
    "signoff": {
        "renew_on": (_month_day, 'give the yearly renewal date as "MM-DD", e.g. "08-15"'),
        "renew_after_days": (_int_range(0, 3650), "give days until a sign-off must be renewed (0: never)"),
        "ask_again_after_hours": (
            _int_range(0, 720),
            "give hours before asking again after a decline (0: next login)",
        ),
    },
}

AGENT_SCHEMA: Schema = {
    "server": {
        "url": (_string, 'give the server address in quotes, e.g. "https://homeroom.example.org"'),
        "enrolment_token": (_string, "paste the token from `homeroom-server token create` in quotes"),
    },
    "agent": {
        "state_dir": (_string, "give a directory path in quotes, or remove the line for the default"),
        "outbox_max_mb": (_int_range(1, 10_000), "give the outbox's size limit in megabytes, e.g. 50"),
    },
    "policy": {
        "audience": (_one_of("staff", "student"), 'write audience = "staff" or audience = "student"'),
    },
    "intervals": {
        "check_minutes": (_int_range(1, 1440), "give minutes between check cycles, e.g. 60"),
        "report_hours": (_int_range(1, 168), "give hours between full reports, e.g. 4"),
        "heartbeat_minutes": (_int_range(1, 1440), "give minutes between heartbeats, e.g. 15"),
    },
}


def toml_error_position(exc: tomllib.TOMLDecodeError) -> tuple[int | None, str]:
    """The line and the bare message of a TOML syntax error (older tomllib and tomli give only text)."""
    line = getattr(exc, "lineno", None)
    if line is None:
        match = re.search(r"line (\d+)", str(exc))
        line = int(match.group(1)) if match else None
    return line, re.sub(r"\s*\(at line \d+, column \d+\)", "", getattr(exc, "msg", str(exc)))


def parse_toml(name: str, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line, message = toml_error_position(exc)
        raise ConfigError(
            name,
            line,
            f"is not valid TOML: {message}",
            'keys are written key = value, strings in "quotes", tables as [name]',
        ) from None


def read_config_text(path: Path) -> str:
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            name, None, "file not found", "check the path, or remove the option to use the default"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            name, None, f"cannot be read ({exc})", "make it a readable UTF-8 text file"
        ) from None
    return text


def validate(name: str, text: str, data: dict[str, Any], schema: Schema) -> None:
    for table, values in data.items():
        if table not in schema:
            raise ConfigError(
                name,
                locate(text, table, None) or locate(text, "", table),
                f"unknown section [{table}]",
                f"use one of {', '.join('[' + t + ']' for t in schema)}",
            )
        if not isinstance(values, dict):
            raise ConfigError(
                name, locate(text, "", table), f"{table} must be a section", f"write it as [{table}]"
            )
        for key, value in values.items():
            line = locate(text, table, key)
            if key not in schema[table]:
                known = ", ".join(schema[table])
                raise ConfigError(name, line, f"unknown key {key!r} in [{table}]", f"use one of: {known}")
            validator, fix = schema[table][key]
            problem = validator(value)
            if problem:
                raise ConfigError(name, line, f"[{table}] {key} {problem}", fix)


def _rule(item: str | dict[str, str]) -> SoftwareRule:
    if isinstance(item, str):
        return SoftwareRule(item)
    return SoftwareRule(item["name"], item.get("publisher"))


def load_requirements(path: Path | None = None) -> Requirements:
    path = path or CONFIG_DIR / "requirements.toml"
    return requirements_from_text(str(path), read_config_text(path))


def requirements_from_text(name: str, text: str) -> Requirements:
    data = parse_toml(name, text)
    validate(name, text, data, REQUIREMENTS_SCHEMA)
    return requirements_from_dict(data)


def requirements_from_dict(data: dict[str, Any]) -> Requirements:
    checks = data.get("checks", {})
    software = data.get("software", {})
    defaults = Requirements()
    return Requirements(
        enabled=tuple(checks.get("enabled", defaults.enabled)),
        check_timeout_seconds=float(checks.get("timeout_seconds", defaults.check_timeout_seconds)),
        screen_lock_max_idle_minutes=data.get("screen_lock", {}).get(
            "max_idle_minutes", defaults.screen_lock_max_idle_minutes
        ),
        antivirus_max_signature_age_days=data.get("antivirus", {}).get(
            "max_signature_age_days", defaults.antivirus_max_signature_age_days
        ),
        antivirus_max_xprotect_age_days=data.get("antivirus", {}).get(
            "max_xprotect_age_days", defaults.antivirus_max_xprotect_age_days
        ),
        software_mode=software.get("mode", defaults.software_mode),
        software_baseline=software.get("baseline", defaults.software_baseline),
        software_approved=tuple(_rule(r) for r in software.get("approved", ())),
        software_blocked=tuple(_rule(r) for r in software.get("blocked", ())),
        signoff_renew_on=data.get("signoff", {}).get("renew_on", defaults.signoff_renew_on),
        signoff_renew_after_days=data.get("signoff", {}).get(
            "renew_after_days", defaults.signoff_renew_after_days
        ),
        signoff_ask_again_after_hours=data.get("signoff", {}).get(
            "ask_again_after_hours", defaults.signoff_ask_again_after_hours
        ),
    )


def load_agent_config(path: Path | None = None) -> AgentConfig:
    path = path or CONFIG_DIR / "agent.toml"
    text = read_config_text(path)
    data = parse_toml(str(path), text)
    validate(str(path), text, data, AGENT_SCHEMA)
    server = data.get("server", {})
    intervals = data.get("intervals", {})
    defaults = AgentConfig()
    return AgentConfig(
        server_url=server.get("url", ""),
        enrolment_token=server.get("enrolment_token", ""),
        state_dir=data.get("agent", {}).get("state_dir", ""),
        outbox_max_mb=data.get("agent", {}).get("outbox_max_mb", defaults.outbox_max_mb),
        check_interval_minutes=intervals.get("check_minutes", defaults.check_interval_minutes),
        report_interval_hours=intervals.get("report_hours", defaults.report_interval_hours),
        heartbeat_interval_minutes=intervals.get("heartbeat_minutes", defaults.heartbeat_interval_minutes),
        audience=data.get("policy", {}).get("audience", defaults.audience),
    )
