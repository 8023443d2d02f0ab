"""A "Report lost or stolen" from the tray: each bad input's words (the form's and the service's),
the inbox's checks on a hostile entry, the person's own copy, and what the form says afterwards."""

from __future__ import annotations

import json
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from agent.desktop.inbox_entries import check_entry
from agent.desktop.lost_form import HANDED, WAITING, confirmation
from agent.desktop.lost_report import (
    EMPTY_FORM,
    USER_COPY_FILE,
    KeptReport,
    Report,
    inbox_record,
    parse_when,
    read_copy,
    report_problems,
    tidy,
    with_outcomes,
    write_copy,
)
from agent.lost.reports import ReportStatus
from contract.lost import WHAT_HAPPENED_MAX

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=timezone(timedelta(hours=-5)))


def good(**changes: Any) -> Report:
    report = tidy(
        "asset_tag", " LHS-04217 ", "lost", None, "Bus 14", "I left it on the bus.", "", " Ada  Lovelace ",
        "555-0142",
    )  # fmt: skip
    return Report(**{**report.__dict__, **changes})


def test_a_good_report_has_no_problems_and_is_tidied() -> None:
    report = good()
    assert report_problems(report) == {}
    assert report.device_value == "LHS-04217" and report.reporter_name == "Ada Lovelace"
    assert report.police_report is None  # empty means none
    assert tidy("this", "typed by mistake", "stolen", None, "x", "y", "", "Al", "a@b").device_value == ""


def test_an_empty_form_is_said_as_a_whole() -> None:
    empty = tidy("this", "", "", None, "", "", "", "", "")
    assert report_problems(empty) == {"form": EMPTY_FORM}
    assert report_problems(tidy("serial", "   ", "", None, " ", "\n", " ", " ", " ")) == {"form": EMPTY_FORM}


def test_each_missing_field_says_what_to_do() -> None:
    problems = report_problems(good(device_by="serial", device_value="", loss="", last_seen_where="",
                                    what_happened="", reporter_name="J", contact=""))  # fmt: skip
    assert problems == {
        "device": "Please type the other laptop's serial number (it is on a label underneath).",
        "loss": "Please choose whether the laptop was lost or stolen.",
        "last_seen_where": "Please say where it was last seen (a room, a bus, “I don't know”).",
        "what_happened": "Please say in a few words what happened.",
        "reporter_name": "Please type your name (at least two letters).",
        "contact": "Please say how IT can reach you: a phone number or an e-mail address.",
    }


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("device_value", "LHS\x1b[2J", "The asset tag holds a control character (U+001B)"),
        ("contact", "ada\u202e@evil", "How to reach you holds a control character (U+202E)"),
        (
            "police_report",
            "P" * 101,
            "The police report number is 101 characters long: please keep it to 100.",
        ),
        ("what_happened", "x" * (WHAT_HAPPENED_MAX + 1), f"please keep it to {WHAT_HAPPENED_MAX}"),
    ],
)
def test_bad_input_is_named(field: str, value: str, words: str) -> None:
    problems = report_problems(good(**{field: value}))
    assert any(words in problem for problem in problems.values()), problems


def test_what_happened_and_where_may_run_over_several_lines() -> None:
    assert (
        report_problems(good(what_happened="After lunch.\nIt was gone.", last_seen_where="Room 12\nDesk 3"))
        == {}
    )


def test_when_it_was_last_seen_is_read_in_the_laptops_zone() -> None:
    assert parse_when("", NOW) == (None, None)
    assert parse_when("2026-12-01 14:30", NOW) == ("2026-12-01T14:30:00-05:00", None)
    assert parse_when(" 2026-11-30 ", NOW) == ("2026-11-30T00:00:00-05:00", None)
    assert parse_when("2026-12-02", NOW)[1] == "That time is in the future: please check the date."
    assert parse_when("last Tuesday", NOW)[1] == (
        "Please write the date as 2026-12-01, or the date and time as 2026-12-01 14:30."
    )


# --- the inbox: anyone on the laptop may write there ------------------------------------------

GOOD_ENTRY = {
    **inbox_record(good(), "ada", "0123456789abcdef0123456789abcdef", "2026-12-01T20:00:00+00:00"),
    "kind": "lost_report",
}


def entry(**changes: object) -> object:
    raw = json.dumps({**GOOD_ENTRY, **changes}).encode()
    return check_entry("lost_report-1.json", stat.S_IFREG | 0o644, len(raw), 1, 1001, raw, lambda u: 1001)


def test_the_inbox_takes_a_well_formed_report_rebuilt_from_its_fields() -> None:
    taken = entry(extra="ignored")
    assert not isinstance(taken, str)
    assert taken.data == {k: v for k, v in GOOD_ENTRY.items() if k != "kind"}


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"record_id": "../../etc"}, "record_id"),
        ({"device_by": "mac_address"}, "device_by"),
        ({"loss": "borrowed"}, "loss must be"),
        ({"last_seen_at": "2026-12-01T10:00:00"}, "last_seen_at has no time zone"),
        ({"made_at": 5}, "made_at is not a string"),
        ({"contact": "x" * 301}, "contact"),
        ({"reporter_name": "Ada\x07"}, "control character"),
        ({"what_happened": "\ud800"}, "not valid Unicode"),
        ({"police_report": ["PR-1"]}, "police_report is not a string"),
        ({"user": "bob"}, "speaks for"),
    ],
)
def test_the_inbox_refuses_a_bad_report_with_a_reason(changes: dict[str, object], why: str) -> None:
    raw = json.dumps({**GOOD_ENTRY, **changes}).encode()
    refused = check_entry(
        "lost_report-1.json",
        stat.S_IFREG | 0o644,
        len(raw),
        1,
        1001,
        raw,
        lambda u: 1001 if u == "ada" else 1002,
    )
    assert isinstance(refused, str) and why in refused, refused


# --- the person's own copy and what the form says ------------------------------------------------


def test_the_persons_copy_is_theirs_alone_and_takes_the_outcome(tmp_path: Path) -> None:
    user_dir = tmp_path / "homeroom"
    kept = KeptReport("r1", "2026-12-01T20:00:00+00:00", {"what_happened": "I left it on the bus."})
    write_copy(user_dir, [kept])
    assert stat.S_IMODE((user_dir / USER_COPY_FILE).stat().st_mode) == 0o600
    answered = {
        "r1": {"state": "sent", "outcome": "already_reported", "message": "IT is on it.", "closest": []}
    }
    write_copy(user_dir, with_outcomes(read_copy(user_dir), answered))
    (copy,) = read_copy(user_dir)
    assert (copy.state, copy.outcome, copy.message) == ("sent", "already_reported", "IT is on it.")
    assert copy.report == {"what_happened": "I left it on the bus."}


def test_the_form_says_plainly_what_became_of_a_report() -> None:
    def said(state: str, outcome: str = "", message: str = "", closest: tuple[str, ...] = ()) -> str:
        return confirmation(ReportStatus("r1", "ada", state, outcome, message, closest))

    assert confirmation(None) == HANDED
    assert said("waiting") == WAITING and "waiting to be sent" in WAITING
    assert said("sent", "recorded").startswith("Sent to the district.")
    assert "closest it knows: LHS-04271, LHS-04127" in said(
        "sent", "unknown_device", "", ("LHS-04271", "LHS-04127")
    )
    assert said("sent", "already_reported").startswith("Sent. That laptop was already reported")
    assert said("sent", "already_recovered").startswith("Sent. That laptop has already been found")
    assert said("refused", message="too long").startswith("Not sent: too long")
