"""What the tray shows, decided from plain data: the icon's colour, its tooltip, and when to notify.

Everything here is pure (the clock is passed in) so every rule is tested without a
display; `agent/desktop/tray.py` only reads files, draws and calls these functions.

Colour rules, from the issue: red when a requirement fails; amber when something
could not be confirmed, the sign-off is pending or no results have arrived yet;
green only when every requirement passes and the policy is signed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

Colour = Literal["green", "amber", "red", "grey", "lost"]  # "lost": agent.desktop.lost_view

# Requirement results as status.json carries them: CheckResult.to_json() dicts.
ResultDict = Mapping[str, Any]

VERDICTS = ("pass", "fail", "unknown", "error")
RENOTIFY_AFTER = timedelta(days=1)
PENDING_WORDS = "the Acceptable Use Policy is waiting for your sign-off"
NOT_RUNNING = "Homeroom is not running — tell IT"
# The service rewrites status.json at least every minute (STATUS_REFRESH_SECONDS in agent.service);
# a file this much older means it has stopped, and its last colour is no longer true.
STALE_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class TrayState:
    colour: Colour
    tooltip: str


@dataclass(frozen=True)
class StatusSnapshot:
    """status.json as the service wrote it, with anything malformed left out rather than trusted."""

    updated_at: str | None = None
    results: tuple[dict[str, Any], ...] = ()
    device_id: str | None = None
    server_url: str | None = None


def parse_status(text: str) -> StatusSnapshot:
    """Reads status.json; a half-written or damaged file reads as 'no results yet', never as a crash."""
    try:
        data = json.loads(text)
    except ValueError:
        return StatusSnapshot()
    if not isinstance(data, dict):
        return StatusSnapshot()
    listed = data.get("results")
    results = (
        tuple(clean_result(item) for item in listed if _is_result(item)) if isinstance(listed, list) else ()
    )
    device_id = data.get("device_id")
    server_url = data.get("server_url")
    updated_at = data.get("updated_at")
    return StatusSnapshot(
        updated_at=updated_at if isinstance(updated_at, str) else None,
        results=results,
        device_id=device_id if isinstance(device_id, str) else None,
        server_url=server_url if isinstance(server_url, str) else None,
    )


def service_stopped(updated_at: str | None, now: datetime, waiting_since: datetime) -> bool:
    """Whether the service has stopped writing status.json: too old, or never there since `waiting_since`.

    A clock set back (a file from the future) is not read as "stopped".
    """
    if updated_at is None:
        return now - waiting_since > STALE_AFTER
    try:
        written = datetime.fromisoformat(updated_at)
    except ValueError:
        return now - waiting_since > STALE_AFTER
    if written.tzinfo is None:
        written = written.replace(tzinfo=timezone.utc)
    return now - written > STALE_AFTER


def not_running_state() -> TrayState:
    return TrayState("grey", NOT_RUNNING)


def _is_result(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("id"), str) and bool(item["id"])


def clean_result(item: Mapping[str, Any]) -> dict[str, Any]:
    """One result with the fields the tray uses, typed; an unheard-of status counts as unknown."""
    status = item.get("status")
    remediation = item.get("remediation")
    return {
        "id": str(item["id"]),
        "title": str(item.get("title") or item["id"]),
        "status": status if status in VERDICTS else "unknown",
        "summary": str(item.get("summary") or ""),
        "remediation": remediation if isinstance(remediation, str) and remediation else None,
    }


def merge_results(service: Iterable[ResultDict], user: Iterable[ResultDict]) -> list[dict[str, Any]]:
    """The service's results with the tray's own user-context results in their place.

    The service runs as root and cannot read per-user settings (screen lock): the
    tray's reading, taken in the user's session, is the true one.
    """
    mine = {str(r["id"]): clean_result(r) for r in user if _is_result(r)}
    merged = [mine.pop(str(r["id"]), clean_result(r)) for r in service if _is_result(r)]
    return merged + list(mine.values())


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _named(results: Sequence[ResultDict]) -> str:
    if len(results) == 1:
        only = results[0]
        return f"{only['title']} — {only['summary']}" if only.get("summary") else str(only["title"])
    return ", ".join(str(r["title"]) for r in results)


def tray_state(results: Sequence[ResultDict], signoff_pending: bool) -> TrayState:
    """The icon's colour and a tooltip that says the same thing in friendly words."""
    clean = [clean_result(r) for r in results if _is_result(r)]
    failing = [r for r in clean if r["status"] == "fail"]
    unsure = [r for r in clean if r["status"] in ("unknown", "error")]
    met = len(clean) - len(failing) - len(unsure)
    pending = f"; {PENDING_WORDS}" if signoff_pending else ""

    if not clean:
        return TrayState("amber", f"Homeroom is still checking this laptop{pending}")
    if failing:
        parts = [f"{_count(len(failing), 'thing', 'things')} to fix: {_named(failing)}"]
        if unsure:
            parts.append(f"{len(unsure)} could not be confirmed: {_named(unsure)}")
        return TrayState("red", "; ".join(parts) + pending)
    if unsure:
        return TrayState(
            "amber",
            f"{met} of {_count(len(clean), 'requirement', 'requirements')} met; "
            f"{len(unsure)} could not be confirmed: {_named(unsure)}{pending}",
        )
    everything = "The requirement is met" if met == 1 else f"All {met} requirements met"
    if signoff_pending:
        return TrayState("amber", f"{everything}; {PENDING_WORDS}")
    return TrayState("green", f"{everything} and the policy is signed")


# --- requirement lines for the status window ------------------------------------------------

STATUS_WORDS = {
    "pass": "Done",
    "fail": "Needs fixing",
    "unknown": "Could not be confirmed",
    "error": "Could not be checked",
}


@dataclass(frozen=True)
class RequirementLine:
    title: str
    status: str
    words: str  # "Done", "Needs fixing", ...
    summary: str
    how_to_fix: str | None


def requirement_lines(results: Sequence[ResultDict]) -> list[RequirementLine]:
    """Each requirement in friendly words, what needs fixing first, with how to fix it."""
    order = {"fail": 0, "error": 1, "unknown": 1, "pass": 2}
    clean = sorted((clean_result(r) for r in results if _is_result(r)), key=lambda r: order[r["status"]])
    return [
        RequirementLine(
            title=r["title"],
            status=r["status"],
            words=STATUS_WORDS[r["status"]],
            summary=r["summary"],
            how_to_fix=r["remediation"] if r["status"] != "pass" else None,
        )
        for r in clean
    ]


# --- notifications ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Notification:
    title: str
    message: str


@dataclass(frozen=True)
class NotifyMemory:
    """For each requirement already notified as failing: when the person was last told.

    An entry is forgotten only when the requirement is seen passing, so a failure
    that comes back after being fixed is news again, while a failing check that
    blinks to `unknown` (a probe timed out once) does not start a second round.
    """

    told_at: dict[str, datetime] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"failing": {k: v.isoformat() for k, v in sorted(self.told_at.items())}}

    @classmethod
    def from_json(cls, data: Any) -> NotifyMemory:
        """Tolerant: a damaged tray.json costs at most one repeated notification."""
        failing = data.get("failing") if isinstance(data, dict) else None
        told: dict[str, datetime] = {}
        for key, value in (failing or {}).items() if isinstance(failing, dict) else ():
            try:
                when = datetime.fromisoformat(str(value))
            except ValueError:
                continue
            told[str(key)] = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
        return cls(told)


def _due(told: datetime | None, now: datetime) -> bool:
    if told is None:
        return True
    elapsed = now - told
    # A clock set back (elapsed < 0) would otherwise silence a failure until it catches up.
    return elapsed >= RENOTIFY_AFTER or elapsed < timedelta(0)


def notifications(
    previous: NotifyMemory, results: Sequence[ResultDict], now: datetime
) -> tuple[list[Notification], NotifyMemory]:
    """What to tell the person now, and the memory to keep for next time.

    A requirement that starts failing is announced once with how to fix it; it is
    repeated only after a day, or after it was fixed and failed again. Requirements
    that fall due together share one notification: desktops replace a tray's
    previous notification with its next, so separate ones would hide each other.
    """
    clean = [clean_result(r) for r in results if _is_result(r)]
    told = dict(previous.told_at)
    for result in clean:
        if result["status"] == "pass":
            told.pop(result["id"], None)
    due = [r for r in clean if r["status"] == "fail" and _due(told.get(r["id"]), now)]
    for result in due:
        told[result["id"]] = now
    memory = NotifyMemory(told)
    if not due:
        return [], memory
    if len(due) == 1:
        only = due[0]
        how = only["remediation"] or "Ask your school's IT team for help."
        summary = only["summary"] or "this requirement is not met"
        return [Notification(f"{only['title']} needs fixing", f"{_sentence(summary)} {how}")], memory
    lines = [f"{r['title']}: {r['remediation'] or _sentence(r['summary'])}" for r in due]
    title = f"{len(due)} things to fix on this laptop"
    return [Notification(title, "\n".join(lines))], memory


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


# --- answers to requests to approve an app --------------------------------------------------


def approval_notifications(
    answered: Iterable[tuple[str, str, str, str]], seen: frozenset[str]
) -> tuple[list[Notification], frozenset[str]]:
    """IT's answers not told yet: (record id, app, state, message) each, once; and what is told now.

    `state` is approved, declined or refused (the service could not send it, and why).
    """
    told: list[Notification] = []
    now_seen = set(seen)
    for record_id, app, state, message in answered:
        if record_id in now_seen or state not in ("approved", "declined", "refused"):
            continue
        now_seen.add(record_id)
        if state == "approved":
            told.append(Notification(f"IT approved {app}", f"“{app}” is approved for this laptop."))
        elif state == "declined":
            told.append(Notification(f"IT declined {app}", _sentence(message) or "IT declined your request."))
        else:
            told.append(Notification(f"Your request for {app} was not sent", _sentence(message)))
    return told, frozenset(now_seen)
