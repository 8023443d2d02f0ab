"""When to ask a user to sign, what to show, and what to do with the answer.

This is the glue the tray (at login, and every few minutes) and `homeroom-agent consent` share. The
policy that applies comes from the service's status.json (the server publishes it per group and
audience); the user's own decisions come from their local log; the dialog runs in its own process
so it never shares a thread with the tray's GTK loop.
"""

from __future__ import annotations

import getpass
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from agent.desktop.consent.decide import Prompt, Renewal, SignOff, is_signed, signoff_prompt
from agent.desktop.consent.dialog import DialogResult
from agent.desktop.consent.records import SignOffLog, flush_pending, new_signoff, record_decision
from agent.desktop.handoff import INBOX_DIR
from agent.state import STATUS_FILE
from contract.collected import Level, level_for
from contract.policy import PolicyDocument, PolicyError, dialog_blocks, dialog_version_label, load_policy
from contract.renewal import renewal_from_settings

DialogRunner = Callable[[dict[str, Any]], DialogResult | None]


@dataclass(frozen=True)
class ApplicablePolicy:
    document: PolicyDocument
    path: Path
    renewal: Renewal
    device_id: str | None


def renewal_from(settings: dict[str, Any]) -> Renewal:
    """The district's [signoff] settings as status.json carries them (0 and "" mean "not set")."""
    return renewal_from_settings(
        str(settings.get("renew_on") or ""),
        int(settings.get("renew_after_days") or 0),
        int(settings.get("ask_again_after_hours") or 0),
    )


def applicable_policy(state_dir: Path) -> ApplicablePolicy | str:
    """The policy this laptop's users sign, or why there is none yet."""
    try:
        status = json.loads((state_dir / STATUS_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "the Homeroom service has not run yet on this laptop"
    except (OSError, ValueError) as exc:
        return f"the service's status cannot be read ({exc})"
    entry = (status.get("policies") or {}).get(status.get("audience") or "student")
    if not entry:
        return "the district has not published an Acceptable Use Policy for this laptop yet"
    try:
        path = state_dir / entry["file"]
        document = load_policy(path)
    except (OSError, KeyError, PolicyError) as exc:
        return f"the policy file cannot be read ({exc})"
    return ApplicablePolicy(
        document, path, renewal_from(status.get("signoff") or {}), status.get("device_id")
    )


def version_label(document: PolicyDocument) -> str:
    """The header's second half (contract.policy.dialog_version_label: the console previews it)."""
    return dialog_version_label(document)


def policy_title(state_dir: Path, default: str) -> str:
    """The applicable document's own title (the tray's menu names it so), else `default`."""
    policy = applicable_policy(state_dir)
    return default if isinstance(policy, str) else policy.document.title


def reading_level(state_dir: Path) -> Level:
    """Whose words the "What Homeroom collects" window uses: those of the policy this laptop's users sign."""
    policy = applicable_policy(state_dir)
    if isinstance(policy, str):
        return "secondary"
    return level_for(policy.document.audience, policy.document.reading_level)


def dialog_request(document: PolicyDocument, user: str, prompt: Prompt | None) -> dict[str, Any]:
    """What `python -m agent.desktop.consent.dialog --policy-json` shows."""
    request: dict[str, Any] = {
        "title": document.title,
        "blocks": [[kind, text] for kind, text in dialog_blocks(document)],
        "contact": document.contact,
        "user": user,
        "version": version_label(document),
    }
    if prompt is not None:
        request["message"] = prompt.message
    return request


def run_dialog_process(request: dict[str, Any]) -> DialogResult | None:
    """The dialog in its own process; None when it could not open (no display)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as handle:
        json.dump(request, handle)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "agent.desktop.consent.dialog", "--policy-json", handle.name],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        Path(handle.name).unlink(missing_ok=True)
    if done.returncode != 0:
        return None
    data = json.loads(done.stdout)
    return DialogResult(
        decision=data["decision"], full_name=data["full_name"], decided_at=str(data.get("decided_at") or "")
    )


def moment_of_decision(result: DialogResult, fallback: datetime) -> datetime:
    """When the button was pressed (the dialog says), else `fallback`: a record's time is the click's."""
    try:
        moment = datetime.fromisoformat(result.decided_at)
    except ValueError:
        return fallback
    if moment.tzinfo is None or moment.utcoffset() is None:
        return fallback
    return moment.astimezone(timezone.utc)


@dataclass(frozen=True)
class Outcome:
    asked: bool
    decision: str | None  # "agree", "decline", "closed", or None when not asked
    delivered: bool  # whether the service's inbox has the record now (else it waits in pending/)
    note: str


def ask_if_needed(
    state_dir: Path,
    now: datetime,
    at_login: bool,
    run_dialog: DialogRunner = run_dialog_process,
    user: str | None = None,
    log: SignOffLog | None = None,
    force: bool = False,
) -> Outcome:
    """Shows the dialog when this user must sign (or always with `force`), and records the answer."""
    user = user or getpass.getuser()
    inbox = state_dir / INBOX_DIR
    log = log or SignOffLog()
    flush_pending(inbox)
    policy = applicable_policy(state_dir)
    if isinstance(policy, str):
        return Outcome(False, None, False, policy)
    document = policy.document
    prompt = signoff_prompt(
        log.read(), document.id, document.version, policy.renewal, now, at_login, title=document.title
    )
    if prompt is None and not force:
        return Outcome(False, None, False, "the current policy is signed")
    result = run_dialog(dialog_request(document, user, prompt))
    if result is None:
        return Outcome(True, None, False, "the sign-off window could not open (no display?)")
    if result.decision == "closed":
        return Outcome(True, "closed", False, "closed without a decision: asked again later")
    decided_at = moment_of_decision(result, now)
    record = new_signoff(
        user, result.full_name, policy.device_id, document.id, document.version, result.decision, decided_at
    )
    delivered = record_decision(record, inbox, log)
    return Outcome(True, result.decision, delivered, "recorded")


def status_lines(state_dir: Path, now: datetime, log: SignOffLog | None = None) -> list[str]:
    """`homeroom-agent consent --status`: what this user signed, and whether it is current."""
    records: list[SignOff] = (log or SignOffLog()).read()
    policy = applicable_policy(state_dir)
    lines: list[str] = []
    if isinstance(policy, str):
        lines.append(f"Policy: none to sign ({policy}).")
    else:
        document = policy.document
        signed = is_signed(records, document.id, document.version, policy.renewal, now)
        lines.append(f"Policy: {document.title} ({document.id}, version {document.version[:12]})")
        lines.append(
            "Status: signed and current." if signed else "Status: not signed yet (you will be asked)."
        )
    if not records:
        lines.append("You have not made a decision on this laptop yet.")
    for record in sorted(records, key=lambda r: r.decided_at):
        verb = "agreed to" if record.decision == "agree" else "did not agree to"
        lines.append(
            f"- {record.decided_at:%Y-%m-%d %H:%M} UTC: {record.full_name or record.user} {verb} "
            f"{record.policy_id} (version {record.policy_version[:12]})"
        )
    return lines
