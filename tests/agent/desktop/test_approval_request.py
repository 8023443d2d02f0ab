"""Asking IT to approve an app: each bad input gets a clear message, the same in the form and the service;
the inbox takes only well-formed requests; approvals.json moves forward only; answers are told once."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from agent.approval_status import (
    RequestStatus,
    district_contact,
    moved_to,
    read_statuses,
    with_status,
    write_statuses,
)
from agent.desktop.approval_request import Choice, choices_from_results, request_problems, tidy
from agent.desktop.handoff import check_entry
from agent.desktop.tray_state import approval_notifications
from contract.approvals import APP_MAX, REASON_MAX
from contract.requirements import load_requirements, requirements_from_text
from tests.helpers.paths import ROOT

REQUIREMENTS = load_requirements(ROOT / "config" / "requirements.toml")
CONTACT = "your teacher or the school office"
SOFTWARE_RESULT = {
    "id": "software",
    "status": "fail",
    "evidence": {
        "unapproved": [
            {"name": "Krita", "publisher": "KDE", "reason": "not approved"},
            {"name": "qbittorrent", "publisher": "", "reason": "blocked"},
            {"name": "krita", "publisher": "KDE", "reason": "not approved"},  # the same app, twice
            {"name": 7},  # a damaged entry is passed over
        ]
    },
}


def problems(
    app: str = "Krita", reason: str = "Art class portfolio", name: str = "Ada Lovelace"
) -> dict[str, str]:
    choices = choices_from_results([SOFTWARE_RESULT])
    return request_problems(tidy(app, "", reason, name, choices), REQUIREMENTS, CONTACT)


def test_the_unapproved_apps_found_are_offered_once_each_and_blocked_ones_say_so() -> None:
    choices = choices_from_results(
        [{"id": "firewall", "evidence": {"unapproved": [{"name": "x"}]}}, SOFTWARE_RESULT]
    )
    assert choices == [Choice("Krita", "KDE"), Choice("qbittorrent", "", blocked=True)]
    assert [c.label for c in choices] == ["Krita", "qbittorrent (blocked)"]
    # A picked label is the app again, with the publisher the check found.
    assert tidy("  krita ", "", " why ", " Ada   Lovelace ", choices).publisher == "KDE"
    assert tidy("qbittorrent (blocked)", "", "x", "Ada", choices).app == "qbittorrent"


def test_a_good_request_has_no_problems() -> None:
    assert problems() == {}
    assert problems(app="Inkscape (typed)") == {}


def test_an_empty_reason_or_app_or_name_is_refused_with_what_to_do() -> None:
    assert problems(reason="   \n ") == {"reason": "Please say why you need this app for your school work."}
    assert problems(app=" ") == {"app": "Please choose the app from the list, or type its name."}
    assert problems(name="") == {"full_name": "Please type your name (at least two letters)."}
    assert problems(name="1") == {"full_name": "Please type your name (at least two letters)."}


def test_an_app_already_approved_needs_no_request() -> None:
    found = problems(app="LibreOffice Writer")["app"]
    assert found.startswith("“LibreOffice Writer” is already approved for this laptop")
    assert "Check now" in found
    blocklist = requirements_from_text("t", '[software]\nmode = "blocklist"\n')
    assert "already approved" in request_problems(tidy("Krita", "", "r", "Ada"), blocklist)["app"]


def test_a_blocked_app_says_it_is_blocked_and_whom_to_ask() -> None:
    found = problems(app="qbittorrent (blocked)")["app"]
    assert found == (
        "“qbittorrent” is blocked by the district, so IT cannot approve it through Homeroom. "
        f"Please talk to {CONTACT} about it."
    )
    # With no policy published yet, the school's IT team.
    assert (
        "your school's IT team" in request_problems(tidy("uTorrent Web", "", "r", "Ada"), REQUIREMENTS)["app"]
    )


def test_too_long_text_says_how_long_it_may_be() -> None:
    assert problems(reason="x" * (REASON_MAX + 1))["reason"] == (
        f"The reason is {REASON_MAX + 1} characters long: please keep it to {REASON_MAX}."
    )
    assert "please keep it to" in problems(app="k" * (APP_MAX + 1))["app"]
    assert "please keep it to" in problems(name="Ada " * 60)["full_name"]


@pytest.mark.parametrize("bad", ["\x1b[2J", "\x07", "\u202e", "\x85", "\x00"])
def test_control_characters_are_refused_and_named(bad: str) -> None:
    code = f"U+{ord(bad[0]):04X}"
    assert code in problems(app=f"Krita{bad}x")["app"]
    assert code in problems(reason=f"For art{bad}class")["reason"]
    if bad.isspace():  # NEL is a space to str.split: the name's spaces are normalised, so it is gone
        assert problems(name=f"Ada{bad}Lovelace") == {}
    else:
        assert code in problems(name=f"Ada{bad}Lovelace")["full_name"]


def test_a_reason_may_run_over_several_lines() -> None:
    assert problems(reason="For art class.\n\tAnd the school play.") == {}


# --- the service's inbox: the same rules, for input from anyone on the laptop --------------------

GOOD = {
    "kind": "approval_request",
    "user": "ada",
    "record_id": "0123456789abcdef",
    "app": "Krita",
    "publisher": "KDE",
    "reason": "Art class",
    "full_name": "Ada Lovelace",
    "requested_at": "2026-12-01T09:00:00+00:00",
}


def entry(**changes: object) -> object:
    data = {**GOOD, **changes}
    raw = json.dumps(data).encode()
    return check_entry(
        "approval_request-1.json", stat.S_IFREG | 0o644, len(raw), 1, 1001, raw, lambda u: 1001
    )


def test_the_inbox_takes_a_well_formed_request_rebuilt_from_its_fields() -> None:
    taken = entry(extra="ignored")
    assert not isinstance(taken, str)
    assert taken.data == {k: v for k, v in GOOD.items() if k != "kind"}


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"reason": "  "}, "reason is empty"),
        ({"app": ""}, "app is empty"),
        ({"full_name": 3}, "full_name is not a string"),
        ({"reason": "r" * (REASON_MAX + 1)}, f"reason must be 0-{REASON_MAX} characters"),
        ({"app": "Krita\x1b[31m"}, "app holds a control character (U+001B)"),
        ({"reason": "a\ud800"}, "reason is not valid Unicode"),
        ({"record_id": "not/hex"}, "record_id must be 8-64 hexadecimal digits or '-'"),
        ({"requested_at": "yesterday"}, "requested_at is not an ISO 8601 time"),
        ({"requested_at": "2026-12-01T09:00:00"}, "requested_at has no time zone"),
    ],
)
def test_the_inbox_refuses_a_bad_request_with_a_reason(changes: dict[str, object], why: str) -> None:
    refused = entry(**changes)
    assert isinstance(refused, str) and refused.startswith(why), refused


# --- approvals.json ------------------------------------------------------------------------------


def test_a_request_moves_forward_and_an_answer_is_never_taken_back(tmp_path: Path) -> None:
    waiting = RequestStatus("r1", "ada", "Krita", "waiting")
    statuses = with_status([], waiting)
    statuses = moved_to(statuses, "r1", "declined", "Use GIMP instead", "t1")
    assert moved_to(statuses, "r1", "sent", "", "t2") == statuses  # a late "sent" changes nothing
    assert moved_to(statuses, "unknown", "approved", "", "t2") == statuses
    write_statuses(tmp_path, statuses)
    assert read_statuses(tmp_path) == [
        RequestStatus("r1", "ada", "Krita", "declined", "Use GIMP instead", "t1")
    ]
    assert stat.S_IMODE((tmp_path / "approvals.json").stat().st_mode) == 0o644
    # No typed reason or full name in the world-readable file.
    assert "reason" not in (tmp_path / "approvals.json").read_text()
    (tmp_path / "approvals.json").write_text('{"requests": [{"state": "gone"}, 3]}')
    assert read_statuses(tmp_path) == []


def test_only_the_newest_requests_are_kept() -> None:
    statuses: list[RequestStatus] = []
    for n in range(120):
        statuses = with_status(statuses, RequestStatus(f"r{n}", "ada", "app", "waiting"))
    assert len(statuses) == 100 and statuses[0].record_id == "r20"


def test_the_contact_comes_from_the_policy_that_applies(tmp_path: Path) -> None:
    assert district_contact(tmp_path) == ""
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "student.md").write_text((ROOT / "config/policies/secondary.md").read_text())
    (tmp_path / "status.json").write_text(
        json.dumps({"audience": "student", "policies": {"student": {"file": "policies/student.md"}}})
    )
    assert district_contact(tmp_path) == CONTACT


def test_each_answer_is_told_once() -> None:
    answered = [("r1", "Krita", "approved", ""), ("r2", "Steam", "declined", "not for school work")]
    told, seen = approval_notifications(answered, frozenset())
    assert [(n.title, n.message) for n in told] == [
        ("IT approved Krita", "“Krita” is approved for this laptop."),
        ("IT declined Steam", "Not for school work."),
    ]
    assert approval_notifications(answered, seen) == ([], seen)
