"""The Acceptable Use Policy documents: reading them strictly, naming their version, showing them safely.

A policy is a Markdown file with a TOML header between two `+++` lines. A district
edits these by hand, and a sign-off is only worth something if everyone agreed to
the same words, so:

- the header is strict: an unknown, missing or mistyped key is an error naming the
  file, the line and the fix (a misspelt `contact` must not quietly become blank
  on the "I do not agree" screen);
- the version is the SHA-256 of the whole file as stored, header included, so any
  change of any byte is a new version that is asked for again, and anyone can check
  it with `sha256sum`;
- the dialog never interprets the body as HTML or follows links: `plain_text`
  understands only the few Markdown forms the documents use and shows anything
  else as the characters written.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, cast

from contract.config_files import toml_error_position
from contract.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

Audience = Literal["staff", "student"]
AUDIENCES: tuple[Audience, ...] = ("staff", "student")
DELIMITER = "+++"
BlockKind = Literal["heading1", "heading2", "paragraph", "bullet"]


@dataclass(frozen=True)
class PolicyDocument:
    id: str
    audience: Audience
    title: str
    effective: date
    reading_level: str
    contact: str  # whom to tell when something goes wrong, and after "I do not agree"
    body: str  # the Markdown after the header
    version: str  # SHA-256 (hex) of the whole file text, encoded as UTF-8


class PolicyError(ConfigError):
    """A policy file that cannot be used: like any config file, the message is the source, the line
    when known, and the fix."""

    @property
    def source(self) -> str:
        return self.file


# --- the header -----------------------------------------------------------------------

_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
_HEADER_EXAMPLE = (
    '+++ / id = "aup-staff" / audience = "staff" / title = "…" / effective = 2026-08-15 / '
    'reading_level = "adult" / contact = "…" / +++'
)


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"must be a quoted string, not {_toml_type(value)}"
    if not value.strip():
        return "must not be empty"
    if "\n" in value or "\r" in value:
        return "must be on one line"
    return None


def _policy_id(value: Any) -> str | None:
    problem = _text(value)
    if problem:
        return problem
    if not _ID.match(value):
        return f"must be lower-case letters, digits and hyphens, like aup-staff, not {value!r}"
    return None


def _audience(value: Any) -> str | None:
    if value not in AUDIENCES:
        return f"must be one of {', '.join(repr(a) for a in AUDIENCES)}, not {value!r}"
    return None


def _date(value: Any) -> str | None:
    # tomllib gives `datetime` (a subclass of `date`) for 2026-08-15T08:00: a policy takes effect on a day.
    if isinstance(value, datetime) or not isinstance(value, date):
        return f"must be a date like 2026-08-15 (no quotes, no time), not {_toml_type(value)} {value!r}"
    return None


def _toml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, datetime):
        return "a date and time"
    if isinstance(value, date):
        return "a date"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


Validator = Callable[[Any], str | None]  # the problem with a value, or None when it is fine

_HEADER_KEYS: dict[str, tuple[Validator, str]] = {
    "id": (_policy_id, 'give a short id in quotes, e.g. id = "aup-secondary"'),
    "audience": (_audience, 'write audience = "staff" or audience = "student"'),
    "title": (_text, 'give the title in quotes, e.g. title = "Laptop Acceptable Use Policy"'),
    "effective": (_date, "give the first day it applies, unquoted, e.g. effective = 2026-08-15"),
    "reading_level": (_text, 'describe the readers in quotes, e.g. reading_level = "grades 6-12"'),
    "contact": (_text, 'say whom to tell in quotes, e.g. contact = "your teacher or the school office"'),
}


def _key_line(header_lines: list[str], first_line: int, key: str) -> int | None:
    """The file line where `key` is assigned (bare or quoted) or opened as a [table], if it can be found."""
    name = re.escape(key)
    pattern = re.compile(rf"^\s*(?:\[{{1,2}}\s*)?(?:{name}|\"{name}\"|'{name}')\s*[=.\]]")
    for offset, line in enumerate(header_lines):
        if pattern.match(line):
            return first_line + offset
    return None


def _split(text: str, source: str) -> tuple[list[str], int, str, int]:
    """(header lines, file line of the first header line, body, file line of the closing +++)."""
    lines = text.splitlines(keepends=True)
    first = lines[0].lstrip("\ufeff").rstrip("\r\n").strip() if lines else ""
    if first != DELIMITER:
        raise PolicyError(
            source,
            1,
            "has no header: the first line must be +++",
            f"start the file with a TOML header between two +++ lines: {_HEADER_EXAMPLE}",
        )
    for index in range(1, len(lines)):
        if lines[index].rstrip("\r\n").strip() == DELIMITER:
            header = [line.rstrip("\r\n") for line in lines[1:index]]
            body = "".join(lines[index + 1 :])
            return header, 2, body, index + 1
    raise PolicyError(
        source, 1, "the header opened with +++ on line 1 is never closed", "end the header with a +++ line"
    )


def _parse_header(header: list[str], first_line: int, source: str) -> dict[str, Any]:
    try:
        data = tomllib.loads("\n".join(header))
    except tomllib.TOMLDecodeError as exc:
        line, message = toml_error_position(exc)
        raise PolicyError(
            source,
            first_line + line - 1 if line else None,
            f"the header is not valid TOML: {message}",
            'write each key as key = value, strings in "quotes", the date unquoted like 2026-08-15',
        ) from None
    return data


def parse_policy(text: str, source: str) -> PolicyDocument:
    """Read one policy file's text; `source` names it in errors (a path, or e.g. "<staff policy>")."""
    header, first_line, body, closing_line = _split(text, source)
    data = _parse_header(header, first_line, source)
    for key, value in data.items():
        line = _key_line(header, first_line, key)
        if key not in _HEADER_KEYS:
            raise PolicyError(
                source, line, f"unknown header key {key!r}", f"use only these keys: {', '.join(_HEADER_KEYS)}"
            )
        validator, fix = _HEADER_KEYS[key]
        problem = validator(value)
        if problem:
            raise PolicyError(source, line, f"header key {key} {problem}", fix)
    missing = [key for key in _HEADER_KEYS if key not in data]
    if missing:
        _, fix = _HEADER_KEYS[missing[0]]
        example = fix.split("e.g. ")[-1]
        raise PolicyError(
            source,
            closing_line,
            f"the header lacks {', '.join(missing)}",
            f"add {'them' if len(missing) > 1 else 'it'} before the closing +++, e.g. {example}",
        )
    body = body.strip("\r\n")
    if not body.strip():
        raise PolicyError(
            source,
            closing_line + 1,
            "has no text after the header",
            "write the policy in Markdown below the closing +++ line",
        )
    return PolicyDocument(
        id=data["id"],
        audience=cast(Audience, data["audience"]),
        title=data["title"].strip(),
        effective=data["effective"],
        reading_level=data["reading_level"].strip(),
        contact=data["contact"].strip(),
        body=body,
        version=policy_version(text),
    )


def policy_version(text: str) -> str:
    """SHA-256 of the text as UTF-8: for a file read by `load_policy`, the hash of its exact bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_policy(path: Path) -> PolicyDocument:
    """Read a policy file byte for byte (no newline translation), so its version is `sha256sum` of it."""
    source = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PolicyError(
            source, None, "file not found", "check the path in status.json or the --policy option"
        ) from None
    except OSError as exc:
        raise PolicyError(
            source, None, f"cannot be read ({exc.strerror or exc})", "make it readable"
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise PolicyError(source, line, "is not UTF-8 text", "save the file as UTF-8") from None
    return parse_policy(text, source)


# --- showing the body -------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """One thing the dialog shows: its text already free of Markdown marks, and where bold runs are."""

    kind: BlockKind
    text: str
    bold_spans: list[tuple[int, int]] = field(default_factory=list)  # [start, end) offsets into text

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "text": self.text, "bold_spans": [list(s) for s in self.bold_spans]}


# C0 and C1 controls and DEL (not tab): terminal escapes and NULs have no place in a dialog.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_HEADING = re.compile(r"^(#{1,2})[ \t]+(.*?)[ \t]*#*[ \t]*$")
_BULLET = re.compile(r"^[ \t]{0,3}-[ \t]+(.*)$")
_CONTINUATION = re.compile(r"^[ \t]{2,}\S")


def _inline(raw: str) -> tuple[str, list[tuple[int, int]]]:
    """Drop the marks of **bold** and note its spans; an unpaired ** stays as written."""
    text = " ".join(_CONTROL.sub("", raw).split())
    out: list[str] = []
    spans: list[tuple[int, int]] = []
    position = 0
    length = 0
    while True:
        start = text.find("**", position)
        end = text.find("**", start + 2) if start != -1 else -1
        if start == -1 or end == -1 or end == start + 2:
            out.append(text[position:])
            break
        out.append(text[position:start])
        length += start - position
        inner = text[start + 2 : end]
        out.append(inner)
        spans.append((length, length + len(inner)))
        length += len(inner)
        position = end + 2
    return "".join(out), spans


def plain_text(markdown: str) -> list[Block]:
    """The body as blocks: `#` and `##` headings, paragraphs (lines joined), `- ` bullets, **bold**.

    Everything else — links, HTML, numbered lists, `###` — is shown as the characters written.
    """
    blocks: list[Block] = []
    pending: tuple[BlockKind, list[str]] | None = None

    def flush() -> None:
        nonlocal pending
        if pending is not None:
            text, spans = _inline(" ".join(pending[1]))
            if text:
                blocks.append(Block(pending[0], text, spans))
        pending = None

    for line in markdown.splitlines():
        if not line.strip():
            flush()
            continue
        heading = _HEADING.match(line)
        if heading:
            flush()
            kind: BlockKind = "heading1" if len(heading.group(1)) == 1 else "heading2"
            pending = (kind, [heading.group(2)])
            flush()
            continue
        bullet = _BULLET.match(line)
        if bullet:
            flush()
            pending = ("bullet", [bullet.group(1)])
            continue
        if pending is not None and (pending[0] == "paragraph" or _CONTINUATION.match(line)):
            pending[1].append(line)
            continue
        flush()
        pending = ("paragraph", [line])
    flush()
    return blocks


# --- readability ----------------------------------------------------------------------

_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)|\n+")
_VOWEL_GROUPS = re.compile(r"[aeiouy]+")


def count_syllables(word: str) -> int:
    """A common estimate: vowel groups, less a silent final e or -es/-ed; never below one."""
    letters = re.sub(r"[^a-z]", "", word.lower())
    if not letters:
        return 0
    if len(letters) <= 3:
        return 1
    stem = letters
    if stem.endswith("e") and not (stem.endswith("le") and stem[-3] not in "aeiouy"):
        stem = stem[:-1]
    elif (
        stem.endswith(("es", "ed"))
        and stem[-3] not in "aeiouytd"
        and not stem.endswith(("ses", "zes", "ces"))
    ):
        stem = stem[:-2]
    return max(1, len(_VOWEL_GROUPS.findall(stem)))


def _word_syllables(word: str) -> int:
    """Hyphenated parts counted apart; an apostrophe's tail (it's, don't, I'll) adds nothing."""
    bare = re.sub(r"['’].*$", "", word)
    return max(1, sum(count_syllables(part) for part in bare.split("-") if part))


def flesch_kincaid_grade(text: str) -> float:
    """Flesch-Kincaid grade level: 0.39 × words per sentence + 11.8 × syllables per word − 15.59.

    A sentence ends at . ! or ? before a space, and at a line break: headings and list
    items are read as sentences, so pass `"\\n".join(block.text for block in plain_text(body))`.
    Hyphenated words count as one word with the syllables of all their parts.
    """
    sentences = [part for part in _SENTENCE_END.split(text) if _WORD.search(part)]
    words = _WORD.findall(text)
    if not sentences or not words:
        return 0.0
    syllables = sum(_word_syllables(word) for word in words)
    return 0.39 * len(words) / len(sentences) + 11.8 * syllables / len(words) - 15.59


def readable_text(markdown: str) -> str:
    """The words a reader reads, one block per line: what `flesch_kincaid_grade` should be given."""
    return "\n".join(block.text for block in plain_text(markdown))


# --- what the sign-off dialog shows ---------------------------------------------------------
# The laptop's dialog (agent/desktop/consent/dialog.py) and the console's preview of a policy
# (server/console/policies_page.py) both build their words from here, so what IT previews before
# publishing is what a student reads.

DIALOG_WINDOW_PREFIX = "Homeroom — "
DIALOG_HOW_TO = "Read everything below, all the way to the end. Then type your name and choose."
DIALOG_ASK_AGAIN_AT_LOGIN = "Homeroom will ask you again the next time you sign in."
# Why the person is asked; "{title}" is the document's own title ("My School Laptop Promise"): a
# child reads the name on the paper they were given, not "Acceptable Use Policy".
DIALOG_OPENINGS: dict[str, str] = {
    "first": "Welcome! Before you start, please read “{title}” and sign it with your name.",
    "changed": "“{title}” has changed. Please read the new version and sign it again.",
    "renewal": "It is time to sign “{title}” again. Please read it and sign it with your name.",
    "declined": (
        "You have not agreed to “{title}” yet. Please read it again. If you have questions, the "
        "person named at the end is happy to help."
    ),
}


def dialog_version_label(document: PolicyDocument) -> str:
    """The header's second half: for staff, which version they sign; for students, nothing.

    A hash means nothing to a child; the exact version is in the record that reaches IT.
    """
    if document.audience == "student":
        return ""
    return f"{document.id}, version {document.version[:12]}, effective {document.effective:%d %B %Y}"


def dialog_signed_in_line(user_account: str, version_label: str) -> str:
    return f"Signed in as {user_account}" + (f" · {version_label}" if version_label else "")


def dialog_how_to(message: str | None) -> str:
    return f"{message}\n{DIALOG_HOW_TO}" if message else DIALOG_HOW_TO


def dialog_declined_text(contact: str, ask_again: str = DIALOG_ASK_AGAIN_AT_LOGIN) -> str:
    """What "I do not agree" shows, in the same window: whom to contact, and when it asks again."""
    return (
        "Thank you for reading the policy. If you have questions about it or want to talk it "
        f"through, please contact {contact}.\n\n"
        f"{ask_again}"
    )


def dialog_blocks(document: PolicyDocument) -> list[tuple[BlockKind, str]]:
    """The text as the dialog lays it out: kind and words (bold runs are not drawn by the dialog)."""
    return [(block.kind, block.text) for block in plain_text(document.body)]


def reading_grade(document: PolicyDocument) -> float:
    """Flesch-Kincaid grade of the words the dialog shows (headings and bullets read as sentences)."""
    return flesch_kincaid_grade(readable_text(document.body))
