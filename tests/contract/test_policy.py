"""The three shipped AUP documents, the strict header, the version hash, the safe renderer, readability."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract.collected import policy_section
from contract.policy import (
    Block,
    PolicyDocument,
    PolicyError,
    count_syllables,
    flesch_kincaid_grade,
    load_policy,
    parse_policy,
    plain_text,
    policy_version,
    readable_text,
)
from tests.helpers.paths import ROOT

POLICIES = ROOT / "config" / "policies"
NAMES = ("elementary", "secondary", "staff")

GOOD = """+++
id = "aup-test"
audience = "student"
title = "Test Policy"
effective = 2026-08-15
reading_level = "grades 6-12"
contact = "your teacher"
+++

# Test Policy

I will take care of the laptop.
"""


def shipped(name: str) -> PolicyDocument:
    return load_policy(POLICIES / f"{name}.md")


def lowered(name: str) -> str:
    """The words as the reader sees them (bold marks gone, lines joined), lower-case."""
    return readable_text(shipped(name).body).lower()


# --- the shipped documents --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "policy_id", "audience"),
    [
        ("elementary", "aup-elementary", "student"),
        ("secondary", "aup-secondary", "student"),
        ("staff", "aup-staff", "staff"),
    ],
)
def test_shipped_documents_parse_with_their_ids_and_audiences(
    name: str, policy_id: str, audience: str
) -> None:
    document = shipped(name)
    assert document.id == policy_id
    assert document.audience == audience
    assert document.effective == date(2026, 8, 15)
    assert document.contact and document.reading_level and document.title
    raw = (POLICIES / f"{name}.md").read_bytes()
    assert document.version == hashlib.sha256(raw).hexdigest()  # what `sha256sum` prints
    assert not document.body.startswith(("\n", "+++"))
    first = plain_text(document.body)[0]
    assert first == Block("heading1", document.title, [])  # the dialog's heading is the title


def test_shipped_documents_have_distinct_ids_and_versions() -> None:
    documents = [shipped(name) for name in NAMES]
    assert len({d.id for d in documents}) == 3
    assert len({d.version for d in documents}) == 3


def test_students_are_told_to_contact_a_teacher_or_the_school_office() -> None:
    for name in ("elementary", "secondary"):
        assert shipped(name).contact == "your teacher or the school office"
    assert "supervisor" in shipped("staff").contact


def _has_all(text: str, words: list[str]) -> list[str]:
    """The words missing from text (an empty list when all are there)."""
    return [word for word in words if word not in text]


@pytest.mark.parametrize("name", NAMES)
def test_each_document_says_what_the_user_will_do(name: str) -> None:
    text = lowered(name)
    wanted = [
        "i will",
        "password",
        "lock",
        "software",
        "creative work",
        "why",
        "respect" if name != "elementary" else "kind",
    ]
    wanted += ["care" if name != "elementary" else "carry", "food and drink"]
    wanted += ["copyright"] if name != "elementary" else ["who made the words and pictures"]
    wanted += ["privacy"] if name != "elementary" else ["other people's names, photos"]
    assert _has_all(text, wanted) == []
    assert text.count("i will") >= 7


@pytest.mark.parametrize("name", NAMES)
def test_each_document_names_exactly_what_homeroom_collects(name: str) -> None:
    text = lowered(name)
    six_checks = ["disk encryption", "firewall", "power-on password", "antivirus", "screen lock"]
    six_checks += ["list of installed software"] if name != "elementary" else ["list of apps (software)"]
    identity = [
        "serial number",
        "hardware id",
        "model",
        "network hardware addresses" if name != "staff" else "network hardware (mac) addresses",
        "version",
    ]
    identity += ["hostname"] if name != "elementary" else ["name"]
    signoff = [
        "account name",
        "the full name you type" if name != "elementary" else "the name you type",
        "decision" if name != "elementary" else "your answer",
        "time",
    ]
    assert _has_all(text, six_checks + identity + signoff) == []


LEVEL = {"staff": "adult", "secondary": "secondary", "elementary": "elementary"}


@pytest.mark.parametrize("name", NAMES)
def test_what_is_sent_is_the_description_of_what_the_agent_sends(name: str) -> None:
    """The policy's list is contract/collected.py's, word for word (line breaks aside).

    To update a policy after the description changes: `python -m contract.collected LEVEL`.
    """
    wanted = plain_text(policy_section(LEVEL[name]))  # type: ignore[arg-type]
    blocks = plain_text(shipped(name).body)
    starts = [i for i, block in enumerate(blocks) if block == wanted[0]]
    assert starts, f"{name}.md lacks the line {wanted[0].text!r}"
    assert blocks[starts[0] : starts[0] + len(wanted)] == wanted, (
        f"{name}.md's list of what is sent differs from `python -m contract.collected {LEVEL[name]}`"
    )


@pytest.mark.parametrize("name", NAMES)
def test_where_the_laptop_is_is_collected_only_in_lost_mode_and_says_so(name: str) -> None:
    """Lost mode's evidence (networks, nearby Wi-Fi) is in the list with its condition, and the
    sentence on what is not collected keeps the same condition: nowhere is it said unconditionally."""
    text = lowered(name)
    assert "wi-fi" in text and "only" in text and "lost" in text
    assert "told after" in text or "is told between which times" in text
    for unconditional in ("\nhomeroom does not track where", "\nhomeroom does not collect where"):
        assert unconditional not in "\n" + text
    assert (
        "unless it is lost" in text
        or "outside lost mode, homeroom does not collect where the laptop is" in text
    )


@pytest.mark.parametrize("name", NAMES)
def test_the_accounts_sent_in_every_report_are_stated_plainly(name: str) -> None:
    assert "account names that" in lowered(name) and "sign in" in lowered(name)


@pytest.mark.parametrize("name", NAMES)
def test_each_document_says_what_homeroom_never_looks_at(name: str) -> None:
    text = lowered(name)
    wanted = ["does not read your files", "e-mail", "camera", "microphone", "screen"]
    wanted += ["browsing history"] if name != "elementary" else ["websites you visit"]
    assert _has_all(text, wanted) == []


def test_staff_know_whom_to_tell_about_a_loss_and_their_student_data_duties() -> None:
    text = lowered("staff")
    wanted = ["supervisor", "police report", "risk management office", "technology help desk"]
    wanted += ["student records", "legitimate educational interest", "student privacy law"]
    assert _has_all(text, wanted) == []


@pytest.mark.parametrize("name", ["elementary", "secondary"])
def test_students_know_whom_to_tell_about_a_loss(name: str) -> None:
    text = lowered(name)
    assert (
        _has_all(
            text,
            [
                "teacher",
                "school office",
                "lost or stolen",
                "right away" if name == "elementary" else "as soon as",
            ],
        )
        == []
    )


@pytest.mark.parametrize("name", NAMES)
def test_misuse_is_explained_without_threats(name: str) -> None:
    text = lowered(name)
    assert "if" in text and ("mistake" in text or "conversation" in text)
    for threat in ("punish", "expel", "suspen", "arrest", "prosecut", "terminat", "fired", "zero tolerance"):
        assert threat not in text, threat


@pytest.mark.parametrize("name", NAMES)
def test_each_document_explains_the_decision_and_asks_again(name: str) -> None:
    text = lowered(name)
    assert _has_all(text, ['"i agree"', '"i do not agree"', "again", "sign in"]) == []


# --- the version -----------------------------------------------------------------------


def test_version_is_the_sha256_of_the_whole_text() -> None:
    assert policy_version(GOOD) == hashlib.sha256(GOOD.encode()).hexdigest()
    assert parse_policy(GOOD, "t").version == policy_version(GOOD)


@given(st.data())
def test_version_changes_with_any_single_character(data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(GOOD) - 1))
    replacement = data.draw(st.characters(codec="utf-8").filter(lambda c: c != GOOD[position]))
    changed = GOOD[:position] + replacement + GOOD[position + 1 :]
    assert policy_version(changed) != policy_version(GOOD)


def test_version_changes_with_whitespace_and_line_endings(tmp_path: Path) -> None:
    versions = {
        policy_version(GOOD),
        policy_version(GOOD + "\n"),
        policy_version(GOOD.replace("laptop.", "laptop. ")),
        policy_version(GOOD.replace("\n", "\r\n")),
    }
    assert len(versions) == 4
    # A CRLF file is read byte for byte: it parses, and its version is the hash of its bytes.
    path = tmp_path / "crlf.md"
    path.write_bytes(GOOD.replace("\n", "\r\n").encode())
    document = load_policy(path)
    assert document.version == hashlib.sha256(path.read_bytes()).hexdigest()
    assert document.title == "Test Policy"
    assert "\r" not in "".join(b.text for b in plain_text(document.body))


def test_a_byte_order_mark_is_tolerated_but_is_part_of_the_version(tmp_path: Path) -> None:
    path = tmp_path / "bom.md"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    document = load_policy(path)
    assert document.id == "aup-test"
    assert document.version != policy_version(GOOD)


# --- header errors ---------------------------------------------------------------------


def error(text: str) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "staff.md")
    return caught.value


@pytest.mark.parametrize(
    ("old", "new", "line", "words"),
    [
        (
            'contact = "your teacher"',
            'contact = "your teacher"\ncontcat = "office"',
            8,
            "unknown header key 'contcat'",
        ),
        ('audience = "student"', 'audience = "parent"', 3, "audience must be one of 'staff', 'student'"),
        ("effective = 2026-08-15", 'effective = "2026-08-15"', 5, "must be a date like 2026-08-15"),
        ("effective = 2026-08-15", "effective = 2026-08-15T08:00:00", 5, "no time"),
        ('title = "Test Policy"', "title = 7", 4, "title must be a quoted string, not a number"),
        ('title = "Test Policy"', 'title = "   "', 4, "title must not be empty"),
        ('contact = "your teacher"', 'contact = """a\nb"""', 7, "contact must be on one line"),
        ('id = "aup-test"', 'id = "AUP Test"', 2, "lower-case letters, digits and hyphens"),
        ('id = "aup-test"', '"id" = "AUP"', 2, "lower-case"),
        ('reading_level = "grades 6-12"', "reading_level = true", 6, "not true/false"),
        ('reading_level = "grades 6-12"', "[reading_level]\nx = 1", 6, "not a table"),
        ('title = "Test Policy"', 'title = "Test Policy', 4, "the header is not valid TOML"),
        ('contact = "your teacher"', "", 8, "the header lacks contact"),
        ('id = "aup-test"\naudience = "student"', "", 7, "the header lacks id, audience"),
    ],
)
def test_header_errors_name_the_line_and_the_fix(old: str, new: str, line: int, words: str) -> None:
    assert old in GOOD
    problem = error(GOOD.replace(old, new, 1))
    assert problem.line == line, str(problem)
    assert words in str(problem)
    assert str(problem).startswith(f"staff.md:{line}: ")
    assert "Fix: " in str(problem) and problem.fix


def test_a_file_without_a_header_is_refused_at_line_one() -> None:
    problem = error("# Policy\n\nI will be kind.\n")
    assert problem.line == 1
    assert "first line must be +++" in str(problem)
    assert error("").line == 1


def test_an_unclosed_header_is_refused() -> None:
    problem = error(GOOD.replace("+++\n\n#", "\n#"))
    assert problem.line == 1
    assert "never closed" in str(problem)


def test_an_empty_body_is_refused_with_the_line_after_the_header() -> None:
    header = GOOD.split("+++\n\n")[0] + "+++\n"
    problem = error(header + "\n   \n")
    assert problem.line == 9
    assert "no text after the header" in str(problem)


def test_unreadable_files_are_policy_errors(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="file not found"):
        load_policy(tmp_path / "missing.md")
    path = tmp_path / "latin1.md"
    path.write_bytes(GOOD.encode() + b"caf\xe9\n")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert caught.value.line == GOOD.count("\n") + 1
    assert "UTF-8" in str(caught.value)


# --- the renderer ----------------------------------------------------------------------


def test_plain_text_blocks() -> None:
    markdown = (
        "# Title\n"
        "## Part **one**\n"
        "First line of a paragraph\n"
        "continues here.\n"
        "\n"
        "- A bullet with **bold** text\n"
        "  that wraps.\n"
        "- Second bullet\n"
        "Paragraph right after a list.\n"
    )
    assert plain_text(markdown) == [
        Block("heading1", "Title"),
        Block("heading2", "Part one", [(5, 8)]),
        Block("paragraph", "First line of a paragraph continues here."),
        Block("bullet", "A bullet with bold text that wraps.", [(14, 18)]),
        Block("bullet", "Second bullet"),
        Block("paragraph", "Paragraph right after a list."),
    ]


def test_bold_spans_point_at_the_bold_words() -> None:
    [block] = plain_text("Say **yes** or **no**, **then** stop.")
    assert block.text == "Say yes or no, then stop."
    assert [block.text[s:e] for s, e in block.bold_spans] == ["yes", "no", "then"]


def test_unknown_syntax_is_shown_as_written() -> None:
    markdown = (
        "### Small heading\n\n"
        "<script>alert(1)</script> <b>x</b>\n\n"
        "[click](https://example.org/x) and ![img](file:///etc/passwd)\n\n"
        "* star item\n\n"
        "1. numbered\n\n"
        "an **unpaired bold\n\n"
        "a **** b\n\n"
        "`code` _em_ \\*escaped\\*\n"
    )
    texts = [(b.kind, b.text, b.bold_spans) for b in plain_text(markdown)]
    assert texts == [
        ("paragraph", "### Small heading", []),
        ("paragraph", "<script>alert(1)</script> <b>x</b>", []),
        ("paragraph", "[click](https://example.org/x) and ![img](file:///etc/passwd)", []),
        ("paragraph", "* star item", []),
        ("paragraph", "1. numbered", []),
        ("paragraph", "an **unpaired bold", []),
        ("paragraph", "a **** b", []),
        ("paragraph", "`code` _em_ \\*escaped\\*", []),
    ]


def test_control_characters_never_reach_the_dialog() -> None:
    [block] = plain_text("I will\x1b[31m be\x00 kind\x07.\tReally.")
    assert block.text == "I will[31m be kind. Really."
    assert plain_text("\x00\x01\n\n# \x1b\n") == []


def test_headings_need_a_space_and_lose_closing_hashes() -> None:
    assert plain_text("#hashtag\n\n## Done ##\n") == [
        Block("paragraph", "#hashtag"),
        Block("heading2", "Done"),
    ]


def test_blocks_serialise_for_the_dialog_process() -> None:
    block = plain_text("- **I will** help.")[0]
    assert block.to_json() == {"kind": "bullet", "text": "I will help.", "bold_spans": [[0, 6]]}


@pytest.mark.parametrize("name", NAMES)
def test_shipped_documents_render_without_markdown_marks(name: str) -> None:
    blocks = plain_text(shipped(name).body)
    kinds = {b.kind for b in blocks}
    assert kinds == {"heading1", "heading2", "paragraph", "bullet"}
    for block in blocks:
        assert "**" not in block.text and not block.text.startswith(("#", "- ", "+++"))
        assert all(0 <= s < e <= len(block.text) for s, e in block.bold_spans)


# --- readability -----------------------------------------------------------------------


def test_syllable_estimate() -> None:
    assert [count_syllables(w) for w in ["I", "the", "laptop", "care", "people", "names", "passed"]] == [
        1,
        1,
        2,
        1,
        2,
        1,
        1,
    ]
    assert count_syllables("encryption") == 3
    assert count_syllables("responsibility") == 6
    assert count_syllables("123") == 0


def test_flesch_kincaid_grade_follows_the_formula() -> None:
    # 2 sentences, 7 words, 7 syllables: 0.39 * 3.5 + 11.8 * 1 - 15.59
    assert flesch_kincaid_grade("I will be kind. I can help.\n") == pytest.approx(0.39 * 3.5 + 11.8 - 15.59)
    # A line break ends a sentence, as headings and bullets do.
    assert flesch_kincaid_grade("I will be kind\nI can help") == flesch_kincaid_grade(
        "I will be kind. I can help."
    )
    assert flesch_kincaid_grade("") == 0.0
    hard = "Administrators shall ensure comprehensive institutional documentation of confidentiality."
    assert flesch_kincaid_grade(hard) > 15


def test_elementary_is_simpler_than_secondary_which_is_simpler_than_staff() -> None:
    grades = {name: flesch_kincaid_grade(readable_text(shipped(name).body)) for name in NAMES}
    assert grades["elementary"] < grades["secondary"] < grades["staff"], grades
    assert grades["elementary"] <= 4.0, grades
    assert grades["staff"] >= 8.0, grades


def test_elementary_is_short() -> None:
    words = readable_text(shipped("elementary").body).split()
    assert len(words) < 375  # well under 400
    assert len(words) < len(readable_text(shipped("secondary").body).split())
