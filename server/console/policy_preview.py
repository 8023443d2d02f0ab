"""A policy as the laptop's sign-off dialog shows it, for the console's preview: the same words
and blocks (contract/policy.py builds both), laid out in HTML, with its reading grade.

Pure: text in, preview out. The preview never interprets the body as HTML either: each block's
text is escaped by the template like any other value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from contract.policy import (
    DIALOG_OPENINGS,
    DIALOG_WINDOW_PREFIX,
    PolicyDocument,
    dialog_blocks,
    dialog_declined_text,
    dialog_how_to,
    dialog_signed_in_line,
    dialog_version_label,
    reading_grade,
)

EXAMPLE_ACCOUNT = "the user's account"  # the dialog names the account signed in; a preview has none


@dataclass(frozen=True)
class Group:
    """Consecutive bullets become one list; every other block stands alone."""

    kind: str  # "heading1" | "heading2" | "paragraph" | "bullets"
    texts: tuple[str, ...]


@dataclass(frozen=True)
class DialogPreview:
    window_title: str
    title: str
    signed_in: str
    how_to: tuple[str, ...]  # the opening sentence, then how to read and sign (one line each)
    groups: tuple[Group, ...]
    declined: tuple[str, ...]  # what "I do not agree" shows, paragraph by paragraph
    grade: float
    reading_level: str
    audience: str
    policy_id: str
    version: str


def grouped(blocks: Sequence[tuple[str, str]]) -> tuple[Group, ...]:
    groups: list[Group] = []
    for kind, text in blocks:
        if kind == "bullet":
            if groups and groups[-1].kind == "bullets":
                groups[-1] = Group("bullets", (*groups[-1].texts, text))
            else:
                groups.append(Group("bullets", (text,)))
        else:
            groups.append(Group(kind, (text,)))
    return tuple(groups)


def preview(document: PolicyDocument, account: str = EXAMPLE_ACCOUNT) -> DialogPreview:
    """What a user sees the first time they are asked to sign `document`."""
    opening = DIALOG_OPENINGS["first"].format(title=document.title)
    return DialogPreview(
        window_title=DIALOG_WINDOW_PREFIX + document.title,
        title=document.title,
        signed_in=dialog_signed_in_line(account, dialog_version_label(document)),
        how_to=tuple(dialog_how_to(opening).split("\n")),
        groups=grouped(dialog_blocks(document)),
        declined=tuple(part for part in dialog_declined_text(document.contact).split("\n\n") if part),
        grade=round(reading_grade(document), 1),
        reading_level=document.reading_level,
        audience=document.audience,
        policy_id=document.id,
        version=document.version,
    )
