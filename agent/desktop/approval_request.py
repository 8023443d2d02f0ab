"""What a request to approve an app must be before it is handed over, and the words when it is not: pure.

The tray's form uses this to tell the person what to fix; the service uses the same rules on what
arrives in its inbox (anyone on the laptop may write there), so a request that skips the form is
refused for the same reasons. A request for an app the district has already approved, or has
blocked, is refused here: the first needs nothing, and IT cannot approve the second through
Homeroom (the message says whom to talk to instead).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.checks.software import SoftwareItem, matches
from agent.desktop.consent.decide import is_acceptable_name, normalise_full_name
from contract.approvals import APP_MAX, NAME_MAX, PUBLISHER_MAX, REASON_MAX, text_problem
from contract.requirements import Requirements

FALLBACK_CONTACT = "your school's IT team"
FIELDS = ("app", "reason", "full_name")


@dataclass(frozen=True)
class Choice:
    """An app the last software check found and the district has not approved."""

    name: str
    publisher: str = ""
    blocked: bool = False

    @property
    def label(self) -> str:
        return f"{self.name} (blocked)" if self.blocked else self.name


@dataclass(frozen=True)
class Request:
    app: str
    publisher: str
    reason: str
    full_name: str


def choices_from_results(results: Iterable[Mapping[str, Any]]) -> list[Choice]:
    """The unapproved apps in the software result's evidence, once each, in the order found."""
    found: dict[str, Choice] = {}
    for result in results:
        if not isinstance(result, Mapping) or result.get("id") != "software":
            continue
        evidence = result.get("evidence")
        listed = evidence.get("unapproved") if isinstance(evidence, Mapping) else None
        for item in listed if isinstance(listed, list) else ():
            if not isinstance(item, Mapping) or not isinstance(item.get("name"), str) or not item["name"]:
                continue
            name = str(item["name"])[:APP_MAX]
            publisher = item.get("publisher")
            found.setdefault(
                name.casefold(),
                Choice(
                    name,
                    str(publisher)[:PUBLISHER_MAX] if isinstance(publisher, str) else "",
                    item.get("reason") == "blocked",
                ),
            )
    return list(found.values())


def tidy(app: str, publisher: str, reason: str, full_name: str, choices: Iterable[Choice] = ()) -> Request:
    """The request as it will be sent: blanks trimmed, a picked label back to its app, its publisher kept."""
    app = app.strip()
    by_label = {choice.label.casefold(): choice for choice in choices}
    by_label.update({choice.name.casefold(): choice for choice in choices})
    picked = by_label.get(app.casefold())
    if picked is not None:
        app, publisher = picked.name, publisher or picked.publisher
    return Request(app, publisher.strip(), reason.strip(), normalise_full_name(full_name))


def request_problems(request: Request, requirements: Requirements, contact: str = "") -> dict[str, str]:
    """Per field (app, reason, full_name), what to fix before the request can go to IT; empty when none."""
    problems: dict[str, str] = {}
    contact = contact.strip() or FALLBACK_CONTACT
    if not request.app:
        problems["app"] = "Please choose the app from the list, or type its name."
    else:
        wrong = text_problem(request.app, "The app's name", APP_MAX) or text_problem(
            request.publisher, "The app's publisher", PUBLISHER_MAX
        )
        if wrong:
            problems["app"] = wrong
        else:
            item = SoftwareItem(request.app, publisher=request.publisher)
            if any(matches(rule, item) for rule in requirements.software_blocked):
                problems["app"] = (
                    f"“{request.app}” is blocked by the district, so IT cannot approve it through "
                    f"Homeroom. Please talk to {contact} about it."
                )
            elif requirements.software_mode == "blocklist" or any(
                matches(rule, item) for rule in requirements.software_approved
            ):
                problems["app"] = (
                    f"“{request.app}” is already approved for this laptop, so there is nothing to ask. "
                    "If Homeroom still shows it, choose “Check now”."
                )
    if not request.reason:
        problems["reason"] = "Please say why you need this app for your school work."
    else:
        wrong = text_problem(request.reason, "The reason", REASON_MAX, allow_lines=True)
        if wrong:
            problems["reason"] = wrong
    wrong = text_problem(request.full_name, "Your name", NAME_MAX)
    if wrong:
        problems["full_name"] = wrong
    elif not is_acceptable_name(request.full_name):
        problems["full_name"] = "Please type your name (at least two letters)."
    return problems


def inbox_record(request: Request, user: str, record_id: str, requested_at: str) -> dict[str, str]:
    """The inbox entry the service takes (agent.desktop.inbox_entries checks it again)."""
    return {
        "record_id": record_id,
        "user": user,
        "app": request.app,
        "publisher": request.publisher,
        "reason": request.reason,
        "full_name": request.full_name,
        "requested_at": requested_at,
    }


def form_command(state_dir: Path, account: str, results: Path) -> list[str]:
    """The form as its own process (agent.desktop.approval_form), as the tray and the status window run it.

    `results` is a JSON file whose "software" (or "results") list holds the last software result.
    """
    return [
        sys.executable,
        "-m",
        "agent.desktop.approval_form",
        "--state-dir",
        str(state_dir),
        "--user",
        account,
        "--results",
        str(results),
    ]
