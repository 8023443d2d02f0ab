"""The user-context results (screen lock) in the service's report: the tray's reading, or why there is none.

The root service cannot read per-user settings, so it reports what the tray
read in the user's session. When there is no fresh reading the requirement is
still in the report, as `unknown` with the reason, so nobody reads a laptop as
compliant on the checks that did run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from agent.checks import CheckSpec
from agent.checks.results import CheckResult, Status

MAX_AGE_SECONDS = 24 * 3600
ASK_IT = "Sign in on this laptop so Homeroom's tray can check this; if you have, ask IT to look at the tray."


@dataclass(frozen=True)
class TrayReading:
    """The last user_results the tray handed over: when, from whom, which results (already validated)."""

    at: float
    user: str
    results: tuple[CheckResult, ...]


def _hours(seconds: float) -> str:
    hours = int(seconds // 3600)
    return "1 h" if hours == 1 else f"{hours} h"


def why_missing(reading: TrayReading | None, users_seen: Iterable[str], now: float) -> str:
    """One plain reason a user-context result is not in hand."""
    if reading is None:
        if not set(users_seen):
            return "no user has signed in since enrolment"
        return "the tray has not reported since enrolment (is it running for the signed-in user?)"
    age = now - reading.at
    if age > MAX_AGE_SECONDS:
        return f"the tray has not reported for {_hours(age)}"
    return "the tray's last report did not include this requirement"


def user_context_results(
    specs: Sequence[CheckSpec], reading: TrayReading | None, users_seen: Iterable[str], now: float
) -> list[CheckResult]:
    """One result per enabled user-context check: the tray's fresh one, else `unknown` saying why."""
    fresh = {}
    if reading is not None and now - reading.at <= MAX_AGE_SECONDS:
        fresh = {r.id: r for r in reading.results}
    reason = why_missing(reading, users_seen, now)
    chosen: list[CheckResult] = []
    for spec in specs:
        found = fresh.get(spec.id)
        chosen.append(
            found
            if found is not None
            else CheckResult(
                id=spec.id,
                title=spec.title,
                status=Status.UNKNOWN,
                summary=reason,
                evidence={"user_context": True, "tray_reported_at": reading.at if reading else None},
                remediation=ASK_IT,
                duration_ms=0,
            )
        )
    return chosen
