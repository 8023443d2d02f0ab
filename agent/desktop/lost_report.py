"""A report that a laptop is lost or stolen: what it must be before it is handed over, and the words
when it is not. Pure, used by the tray's form (agent.desktop.lost_form) and again by the service on
what arrives in its inbox (anyone on the laptop may write there), with the limits of contract/lost.py.

The person reports this laptop or another district laptop (by serial number, asset tag or
hostname: a teacher reporting a student's laptop from their own is the common case).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from agent.desktop.consent.decide import is_acceptable_name, normalise_full_name
from contract.approvals import text_problem
from contract.lost import (
    CONTACT_MAX,
    DEVICE_BY,
    DEVICE_VALUE_MAX,
    KINDS,
    POLICE_REPORT_MAX,
    REPORTER_NAME_MAX,
    WHAT_HAPPENED_MAX,
    WHERE_MAX,
)

FIELDS = ("device", "loss", "last_seen_at", "last_seen_where", "what_happened", "police_report",
          "reporter_name", "contact")  # fmt: skip
DEVICE_WORDS = {"serial": "serial number", "asset_tag": "asset tag", "hostname": "computer name (hostname)"}
EMPTY_FORM = (
    "The form is empty. Please say which laptop it is, whether it was lost or stolen, where it was "
    "last seen, what happened, and how IT can reach you."
)
STAFF_POLICE_NOTE = (
    "For staff: the district's policy asks you to file a police report at once when a laptop is "
    "stolen, to tell your supervisor, and to put the police report number here."
)
STUDENT_POLICE_NOTE = "If the police have a report of it, put its number here (you may leave this empty)."
USER_COPY_FILE = "lost-reports.json"  # in the user's own directory: their full copy, with the outcome
TIME_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%d")
FUTURE_SLACK = timedelta(minutes=10)


@dataclass(frozen=True)
class Report:
    """A report as it will be handed over: blanks trimmed, the time already an ISO 8601 string."""

    device_by: str  # "this", "serial", "asset_tag", "hostname"
    device_value: str
    loss: (
        str  # "lost" or "stolen" ("" when not chosen); "kind" on the wire (the inbox's "kind" is the entry's)
    )
    last_seen_at: str | None
    last_seen_where: str
    what_happened: str
    police_report: str | None
    reporter_name: str
    contact: str


def parse_when(typed: str, now: datetime) -> tuple[str | None, str | None]:
    """Pure: what the person typed as when it was last seen, as (ISO time or None, problem or None).

    `now` is aware and in the laptop's zone: a typed time is read in that zone. Empty is allowed.
    """
    typed = " ".join(typed.split())
    if not typed:
        return None, None
    for pattern in TIME_FORMATS:
        try:
            parsed = datetime.strptime(typed, pattern)
        except ValueError:
            continue
        aware = parsed.replace(tzinfo=now.tzinfo)
        if aware > now + FUTURE_SLACK:
            return None, "That time is in the future: please check the date."
        return aware.isoformat(), None
    return None, "Please write the date as 2026-12-01, or the date and time as 2026-12-01 14:30."


def tidy(
    device_by: str,
    device_value: str,
    loss: str,
    last_seen_at: str | None,
    where: str,
    what_happened: str,
    police_report: str,
    reporter_name: str,
    contact: str,
) -> Report:
    police = police_report.strip()
    return Report(
        device_by,
        "" if device_by == "this" else device_value.strip(),
        loss,
        last_seen_at,
        where.strip(),
        what_happened.strip(),
        police or None,
        normalise_full_name(reporter_name),
        contact.strip(),
    )


def is_empty(report: Report) -> bool:
    return not any(
        (
            report.device_value,
            report.loss,
            report.last_seen_at,
            report.last_seen_where,
            report.what_happened,
            report.police_report,
            report.reporter_name,
            report.contact,
        )
    )


def report_problems(report: Report) -> dict[str, str]:
    """Per field (FIELDS, and "form" for an empty one), what to fix before it can be sent; empty when none."""
    problems: dict[str, str] = {}
    if is_empty(report):
        return {"form": EMPTY_FORM}
    if report.device_by not in DEVICE_BY:
        problems["device"] = (
            "Please choose this laptop, or another laptop by its serial number, asset tag or name."
        )
    elif report.device_by != "this":
        words = DEVICE_WORDS[report.device_by]
        if not report.device_value:
            problems["device"] = f"Please type the other laptop's {words} (it is on a label underneath)."
        else:
            wrong = text_problem(report.device_value, f"The {words}", DEVICE_VALUE_MAX)
            if wrong:
                problems["device"] = wrong
    if report.loss not in KINDS:
        problems["loss"] = "Please choose whether the laptop was lost or stolen."
    if report.last_seen_at is not None:
        try:
            if datetime.fromisoformat(report.last_seen_at).tzinfo is None:
                problems["last_seen_at"] = "The time has no time zone."
        except ValueError:
            problems["last_seen_at"] = "Please write the date as 2026-12-01, or as 2026-12-01 14:30."
    if not report.last_seen_where:
        problems["last_seen_where"] = "Please say where it was last seen (a room, a bus, “I don't know”)."
    elif wrong := text_problem(report.last_seen_where, "Where it was last seen", WHERE_MAX, allow_lines=True):
        problems["last_seen_where"] = wrong
    if not report.what_happened:
        problems["what_happened"] = "Please say in a few words what happened."
    elif wrong := text_problem(report.what_happened, "What happened", WHAT_HAPPENED_MAX, allow_lines=True):
        problems["what_happened"] = wrong
    if report.police_report is not None and (
        wrong := text_problem(report.police_report, "The police report number", POLICE_REPORT_MAX)
    ):
        problems["police_report"] = wrong
    if wrong := text_problem(report.reporter_name, "Your name", REPORTER_NAME_MAX):
        problems["reporter_name"] = wrong
    elif not is_acceptable_name(report.reporter_name):
        problems["reporter_name"] = "Please type your name (at least two letters)."
    if not report.contact:
        problems["contact"] = "Please say how IT can reach you: a phone number or an e-mail address."
    elif wrong := text_problem(report.contact, "How to reach you", CONTACT_MAX):
        problems["contact"] = wrong
    return problems


def inbox_record(report: Report, user: str, record_id: str, made_at: str) -> dict[str, Any]:
    """The inbox entry the service takes (agent.desktop.inbox_entries checks it again)."""
    return {"record_id": record_id, "user": user, "made_at": made_at, **asdict(report)}


def report_from_entry(data: dict[str, Any]) -> Report:
    """The report an inbox entry holds (its fields already checked for type by inbox_entries)."""
    return Report(**{name: data[name] for name in Report.__dataclass_fields__})


# --- the user's own copy -------------------------------------------------------------------------


@dataclass(frozen=True)
class KeptReport:
    """One report in the user's copy: what they wrote and what became of it."""

    record_id: str
    made_at: str
    report: dict[str, Any]
    state: str = "handed"  # handed, waiting, sent, refused
    outcome: str = ""
    message: str = ""
    closest: tuple[str, ...] = ()


def read_copy(user_dir: Path) -> list[KeptReport]:
    try:
        data = json.loads((user_dir / USER_COPY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    kept: list[KeptReport] = []
    for item in data.get("reports", []) if isinstance(data, dict) else []:
        try:
            kept.append(
                KeptReport(
                    str(item["record_id"]),
                    str(item["made_at"]),
                    dict(item["report"]),
                    str(item.get("state") or "handed"),
                    str(item.get("outcome") or ""),
                    str(item.get("message") or ""),
                    tuple(str(name) for name in item.get("closest") or ()),
                )
            )
        except (KeyError, TypeError, ValueError):
            continue
    return kept


def write_copy(user_dir: Path, reports: list[KeptReport]) -> None:
    """0600 in a 0700 directory: what happened and how to reach the person are theirs."""
    user_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = user_dir / USER_COPY_FILE
    temporary = path.with_name(f".{path.name}.tmp")
    text = json.dumps({"reports": [asdict(r) for r in reports]}, indent=1, ensure_ascii=False)
    temporary.unlink(missing_ok=True)  # a leftover keeps its mode: start from a new file
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


def with_outcomes(kept: list[KeptReport], statuses: dict[str, dict[str, Any]]) -> list[KeptReport]:
    """Pure: the user's copy with what the service says became of each report."""
    updated: list[KeptReport] = []
    for report in kept:
        status = statuses.get(report.record_id)
        if status is None:
            updated.append(report)
            continue
        updated.append(
            replace(
                report,
                state=str(status.get("state") or report.state),
                outcome=str(status.get("outcome") or ""),
                message=str(status.get("message") or ""),
                closest=tuple(str(name) for name in status.get("closest") or ()),
            )
        )
    return updated


def form_command(state_dir: Path, account: str) -> list[str]:
    """The form as its own process, as the tray runs it."""
    return [sys.executable, "-m", "agent.desktop.lost_form", "--state-dir", str(state_dir), "--user", account]
