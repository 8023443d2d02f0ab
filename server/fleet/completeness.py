"""Every enabled requirement in every device record: what the laptop left out counts as unknown.

A report that omits a requirement (the tray never ran, an old agent) must not let
the device look compliant on the rest. The server knows which requirements it
published to the group, so it fills each gap with an `unknown` that says why, and
"overall" is computed over the completed list.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from contract.errors import ConfigError
from contract.requirements import CHECK_IDS, requirements_from_text
from server.api.schemas import RequirementsOut

TITLES = {
    "disk_encryption": "Disk encryption",
    "firewall": "Firewall",
    "power_on_password": "Power-on password",
    "antivirus": "Antivirus",
    "screen_lock": "Screen lock",
    "software": "Authorised software",
}
MISSING_SUMMARY = "the laptop's report did not include this requirement"


@lru_cache(maxsize=64)
def _enabled_in(content: str) -> tuple[str, ...]:
    try:
        return requirements_from_text("published requirements", content).enabled
    except ConfigError:
        return CHECK_IDS  # publishing validates; should a bad copy slip in, ask for everything


def enabled_checks(published: RequirementsOut | None) -> tuple[str, ...]:
    """The group's enabled requirements; nothing published means the defaults: all of them."""
    return CHECK_IDS if published is None else _enabled_in(published.content)


def missing_result(check_id: str) -> dict[str, Any]:
    return {
        "id": check_id,
        "title": TITLES.get(check_id, check_id),
        "status": "unknown",
        "summary": MISSING_SUMMARY,
        "evidence": {"missing_from_report": True},
        "remediation": None,
        "duration_ms": 0,
    }


def complete_results(results: list[dict[str, Any]], enabled: tuple[str, ...]) -> list[dict[str, Any]]:
    """The report's results plus an `unknown` for each enabled requirement it left out."""
    present = {r["id"] for r in results}
    return results + [missing_result(check_id) for check_id in enabled if check_id not in present]
