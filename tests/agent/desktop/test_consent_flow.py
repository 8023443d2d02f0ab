"""What the flow hands the dialog, and the time it records: pure parts of agent/desktop/consent/flow.py."""

from __future__ import annotations

import json
import re
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from agent.desktop.consent.decide import signoff_prompt
from agent.desktop.consent.dialog import DialogResult
from agent.desktop.consent.flow import dialog_request, moment_of_decision, policy_title, reading_level
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


def _laptop_with(state_dir: Path, name: str, audience: str) -> None:
    """A state directory as the service leaves it: status.json naming a published policy file."""
    (state_dir / "policies").mkdir(parents=True)
    shutil.copy(CONFIG / "policies" / f"{name}.md", state_dir / "policies" / f"{audience}.md")
    document = load_policy(state_dir / "policies" / f"{audience}.md")
    status = {
        "audience": audience,
        "policies": {
            audience: {
                "file": f"policies/{audience}.md",
                "policy_id": document.id,
                "version": document.version,
            }
        },
    }
    (state_dir / "status.json").write_text(json.dumps(status), encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "audience", "title", "level"),
    [
        ("elementary", "student", "My School Laptop Promise", "elementary"),
        ("secondary", "student", "Laptop Acceptable Use Policy for Secondary Students", "secondary"),
        ("staff", "staff", "Laptop Acceptable Use Policy for Staff", "adult"),
    ],
)
def test_the_tray_names_the_policy_and_picks_the_words_of_its_readers(
    tmp_path: Path, name: str, audience: str, title: str, level: str
) -> None:
    _laptop_with(tmp_path, name, audience)
    assert policy_title(tmp_path, "Acceptable Use Policy") == title
    assert reading_level(tmp_path) == level


def test_before_any_policy_arrives_the_tray_uses_plain_defaults(tmp_path: Path) -> None:
    assert policy_title(tmp_path, "Acceptable Use Policy") == "Acceptable Use Policy"
    assert reading_level(tmp_path) == "secondary"
