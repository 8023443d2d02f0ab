"""The pure parts of the Sign-offs, Policies and Requirements pages: coverage and filters, the CSV,
the policy preview against what the laptop's dialog is given, the requirements form written back
into the document, and the diff."""

from __future__ import annotations

import csv
import io

import pytest

from agent.desktop.consent import dialog
from agent.desktop.consent.decide import prompt_for
from agent.desktop.consent.flow import dialog_request, version_label
from contract.errors import ConfigError
from contract.policy import flesch_kincaid_grade, load_policy, readable_text
from contract.requirements import CHECK_IDS, Requirements, requirements_from_text
from server.console import policy_preview, requirements_form, signoff_views
from server.fleet.signoffs import NEVER_SIGNED, PAST_RENEWAL, VERSION_CHANGED, SignOffRow
from tests.helpers.paths import CONFIG

SHIPPED = (CONFIG / "requirements.toml").read_text(encoding="utf-8")


def row(group: str, user: str, status: str, audience: str = "student", **extra: str) -> SignOffRow:
    values: dict[str, object] = {
        "group": group,
        "hostname": f"{group[:4].lower()}-lt",
        "serial": None,
        "device_id": "d" * 32,
        "user": user,
        "status": status,
        "full_name": None,
        "policy_id": "aup-secondary",
        "policy_version": "a" * 64,
        "decided_at": None,
        "note": "",
        "audience": audience,
        "must_sign": "",
    }
    values.update(extra)
    return SignOffRow(**values)  # type: ignore[arg-type]


ROWS = [
    row("Lincoln High", "ada", "signed", full_name="Ada Lovelace"),
    row("Lincoln High", "grace", "declined"),
    row("Lincoln High", "alan", "not signed", must_sign=NEVER_SIGNED),
    row("Lincoln High", "mr-smith", "must sign again", "staff", must_sign=PAST_RENEWAL),
    row("Washington Elementary", "kid", "not signed", must_sign=VERSION_CHANGED),
]


def test_the_totals_and_the_count_a_state_shows() -> None:
    """Coverage lines are counted by the database (tests/server/console/test_signoff_agreement.py);
    the total line and the count of people a state filter shows are added up from them."""
    lines = [
        signoff_views.Coverage("Lincoln High", "student", people=3, signed=1, declined=1, must_sign=1),
        signoff_views.Coverage("Lincoln High", "staff", people=1, must_sign=1),
        signoff_views.Coverage("Washington Elementary", "student", people=1, must_sign=1),
    ]
    assert lines[0].share == pytest.approx(1 / 3)
    whole = signoff_views.total(lines)
    assert (whole.people, whole.signed, whole.declined, whole.must_sign) == (5, 1, 1, 3)
    assert [signoff_views.shown(lines, state) for state in ("", *signoff_views.STATES)] == [5, 1, 1, 3]
    assert list(map(signoff_views.state_of, ROWS)) == [
        "signed",
        "declined",
        "must sign",
        "must sign",
        "must sign",
    ]


def test_csv_is_streamed_and_spreadsheet_safe() -> None:
    hostile = row("Lincoln High", "=cmd|' /C calc'!A0", "signed", full_name='=HYPERLINK("http://x")')
    pieces = list(signoff_views.as_csv([hostile] * 5, batch=2))
    assert len(pieces) == 3  # header + 2, 2, then the last one
    rows = list(csv.DictReader(io.StringIO("".join(pieces))))
    assert len(rows) == 5
    assert rows[0]["user"] == "'=cmd|' /C calc'!A0"
    assert rows[0]["full_name"] == '\'=HYPERLINK("http://x")'
    assert rows[0]["state"] == "signed"


@pytest.mark.parametrize("name", ["secondary", "staff", "elementary"])
def test_the_preview_shows_what_the_dialog_is_given(name: str) -> None:
    document = load_policy(CONFIG / "policies" / f"{name}.md")
    shown = policy_preview.preview(document, account="ada")
    prompt = prompt_for("first", document.title)
    request = dialog_request(document, "ada", prompt)  # what the laptop's dialog process reads
    flattened = [
        (["bullet", text] if group.kind == "bullets" else [group.kind, text])
        for group in shown.groups
        for text in group.texts
    ]
    assert flattened == request["blocks"]
    assert shown.title == request["title"]
    assert shown.window_title == dialog.WINDOW_TITLE_PREFIX + document.title
    assert shown.signed_in == "Signed in as ada" + (
        f" · {version_label(document)}" if request["version"] else ""
    )
    assert shown.how_to == (request["message"], dialog.HOW_TO)
    assert "\n\n".join(shown.declined) == (
        "Thank you for reading the policy. If you have questions about it or want to talk it "
        f"through, please contact {document.contact}.\n\n{dialog.ASK_AGAIN_AT_LOGIN}"
    )
    assert shown.grade == round(flesch_kincaid_grade(readable_text(document.body)), 1)
    if document.audience == "student":
        assert document.version[:12] not in shown.signed_in  # a student's header has no hash


def test_form_values_of_the_shipped_requirements() -> None:
    values = requirements_form.form_values(SHIPPED, Requirements())
    assert values["enabled"] == list(CHECK_IDS)
    assert values["max_idle_minutes"] == "15"
    assert values["mode"] == "allowlist" and values["baseline"] is True
    assert "Zoom* | Zoom Video Communications*" in values["approved"].splitlines()
    assert "*BitTorrent*" in values["blocked"].splitlines()
    assert values["renew_on"] == "08-15"


def test_an_unchanged_form_leaves_the_document_byte_for_byte() -> None:
    values = requirements_form.form_values(SHIPPED, Requirements())
    assert requirements_form.edited_text(SHIPPED, values) == SHIPPED


def test_a_changed_threshold_and_list_change_only_those_lines() -> None:
    values = requirements_form.form_values(SHIPPED, Requirements())
    values["max_idle_minutes"] = "10"
    values["blocked"] += "\nRoblox* | Roblox Corporation"
    values["enabled"] = [c for c in CHECK_IDS if c != "power_on_password"]
    values["renew_on"] = ""
    edited = requirements_form.edited_text(SHIPPED, values)
    parsed = requirements_from_text("edited", edited)
    assert parsed.screen_lock_max_idle_minutes == 10
    assert parsed.software_blocked[-1].name == "Roblox*"
    assert parsed.software_blocked[-1].publisher == "Roblox Corporation"
    assert "power_on_password" not in parsed.enabled
    assert parsed.signoff_renew_on == ""
    assert "# The screen must lock with a password after at most this many idle minutes." in edited
    changed = [d for d in requirements_form.diff(SHIPPED, edited) if d.kind in ("added", "removed")]
    assert "-max_idle_minutes = 15" in [d.text for d in changed]
    assert "+max_idle_minutes = 10" in [d.text for d in changed]
    assert all("approved" not in d.text for d in changed)  # the approved list is untouched


@pytest.mark.parametrize(
    ("field", "typed", "named"),
    [
        ("max_idle_minutes", "ten", "[screen_lock] max_idle_minutes must be a whole number"),
        ("max_idle_minutes", "0", "[screen_lock] max_idle_minutes must be between 1 and 240"),
        ("mode", "anything", "[software] mode must be one of"),
        ("renew_on", "02-30", "[signoff] renew_on is '02-30'"),
        ("timeout_seconds", "1e9", "[checks] timeout_seconds must be a number"),
    ],
)
def test_bad_input_is_refused_by_the_publish_validation(field: str, typed: str, named: str) -> None:
    values = requirements_form.form_values(SHIPPED, Requirements())
    values[field] = typed
    edited = requirements_form.edited_text(SHIPPED, values)
    with pytest.raises(ConfigError) as refused:
        requirements_from_text("the requirements form", edited)
    assert named in str(refused.value)


def test_a_document_without_a_section_gets_one() -> None:
    current = "[checks]\ntimeout_seconds = 20\n"
    values = requirements_form.form_values(current, Requirements())
    values["max_idle_minutes"] = "5"
    edited = requirements_form.edited_text(current, values)
    assert edited == current + "\n[screen_lock]\nmax_idle_minutes = 5\n"  # nothing else written
    assert requirements_from_text("x", edited).screen_lock_max_idle_minutes == 5
