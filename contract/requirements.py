"""The requirements a district publishes (`requirements.toml`) and the ids of the six checks.

Both ends read this file: the server validates it at publish and hands it to the
laptops of a group; the agent runs its checks against it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contract.config_files import (
    CONFIG_DIR,
    Schema,
    boolean,
    int_range,
    number_range,
    one_of,
    parse_toml,
    read_config_text,
    validate,
)

CHECK_IDS = (
    "disk_encryption",
    "firewall",
    "power_on_password",
    "antivirus",
    "screen_lock",
    "software",
)


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


# The longest each month can be: 29 February is a real date (every fourth year; the agent keeps
# it as the 28th in other years), 30 February or 31 April never is.
DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _month_day(value: Any) -> str | None:
    if not isinstance(value, str) or not re.fullmatch(r"(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])", value):
        return 'must be a month and day in quotes, like "08-15"'
    month, day = int(value[:2]), int(value[3:])
    if day > DAYS_IN_MONTH[month - 1]:
        return f"is {value!r}, a day that month never has (it has {DAYS_IN_MONTH[month - 1]} days)"
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


def _check_ids(value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return "must be a list of check ids in quotes"
    wrong = [v for v in value if v not in CHECK_IDS]
    if wrong:
        return f"has unknown check id {wrong[0]!r} (known: {', '.join(CHECK_IDS)})"
    return None


REQUIREMENTS_SCHEMA: Schema = {
    "checks": {
        "enabled": (_check_ids, f"list the checks to run, from {', '.join(CHECK_IDS)}"),
        "timeout_seconds": (number_range(1, 600), "give the per-check time limit in seconds, e.g. 20"),
    },
    "screen_lock": {
        "max_idle_minutes": (int_range(1, 240), "give the longest idle time before lock, e.g. 15"),
    },
    "antivirus": {
        "max_signature_age_days": (int_range(1, 365), "give the oldest acceptable signature age, e.g. 7"),
        "max_xprotect_age_days": (int_range(1, 365), "give the oldest acceptable XProtect age, e.g. 30"),
    },
    "software": {
        "mode": (one_of("allowlist", "blocklist"), 'use "allowlist" or "blocklist"'),
        "baseline": (boolean, "write baseline = true or baseline = false"),
        "approved": (_rules, 'write approved = ["Name*", { name = "Name*", publisher = "Vendor*" }]'),
        "blocked": (_rules, 'write blocked = ["Name*", { name = "Name*", publisher = "Vendor*" }]'),
    },
    "signoff": {
        "renew_on": (_month_day, 'give the yearly renewal date as "MM-DD", e.g. "08-15"'),
        "renew_after_days": (int_range(0, 3650), "give days until a sign-off must be renewed (0: never)"),
        "ask_again_after_hours": (
            int_range(0, 720),
            "give hours before asking again after a decline (0: next login)",
        ),
    },
}


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
