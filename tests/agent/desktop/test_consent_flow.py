"""What the flow hands the dialog, and the time it records: pure parts of agent/desktop/consent/flow.py."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from agent.desktop.consent.decide import signoff_prompt
from agent.desktop.consent.dialog import DialogResult
from agent.desktop.consent.flow import dialog_request, moment_of_decision
from contract.policy import load_policy
from contract.renewal import Renewal
from tests.helpers.paths import CONFIG

NOW = datetime(2026, 9, 1, 8, tzinfo=timezone.utc)


def test_a_students_request_has_the_title_and_no_version_hash() -> None:
    document = load_policy(CONFIG / "policies" / "elementary.md")
    prompt = signoff_prompt([], document.id, document.version, Renewal(), NOW, True, title=document.title)
    request = dialog_request(document, "sam", prompt)
    assert request["title"] == "My School Laptop Promise" and request["version"] == ""
    assert "“My School Laptop Promise”" in request["message"]
    assert "Acceptable Use Policy" not in request["message"]
    assert not re.search(r"[0-9a-f]{12}", str(request["message"]) + request["version"])


def test_staff_still_see_which_version_they_sign() -> None:
    document = load_policy(CONFIG / "policies" / "staff.md")
    request = dialog_request(document, "ada", None)
    assert document.version[:12] in request["version"] and "effective 15 August 2026" in request["version"]


def test_the_record_takes_the_dialogs_click_time() -> None:
    clicked = NOW + timedelta(minutes=20)
    result = DialogResult("agree", "Ada", clicked.isoformat())
    assert moment_of_decision(result, NOW) == clicked
    for unusable in ("", "yesterday", "2026-09-01T08:20:00"):  # missing, malformed, no zone
        assert moment_of_decision(DialogResult("agree", "Ada", unusable), NOW) == NOW
