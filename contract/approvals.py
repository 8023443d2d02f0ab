"""Asking IT to approve an app: the limits both ends hold a request to, and the answer's words.

A request is typed by a person in the tray (which app, why it is needed for school work, their
name), checked there so they get a clear message, checked again by the service as hostile input
(anyone on the laptop can write to the inbox), and checked a third time by the server's schema.
All three use these rules, so nothing the tray lets through is refused further on.
"""

from __future__ import annotations

import unicodedata
from typing import Literal

APP_MAX = 200
PUBLISHER_MAX = 300
REASON_MAX = 1000
NAME_MAX = 200
MESSAGE_MAX = 1000  # IT's words when it declines

Decision = Literal["approved", "declined"]
DECISIONS: tuple[Decision, ...] = ("approved", "declined")

# Characters that reorder or hide text: a request that shows one thing to IT and means another.
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# A pattern for schemas: no C0/C1 control characters and no bidirectional controls.
ONE_LINE_PATTERN = r"^[^\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]*$"
# The reason may run over several lines (newline and tab allowed), nothing else.
LINES_PATTERN = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]*$"


def control_character(text: str, allow_lines: bool = False) -> str | None:
    """The first character a request may not hold, named for people (U+0007), or None."""
    for character in text:
        if allow_lines and character in "\n\t":
            continue
        if unicodedata.category(character) == "Cc" or character in _BIDI_CONTROLS:
            return f"U+{ord(character):04X}"
        if 0xD800 <= ord(character) <= 0xDFFF:
            return f"U+{ord(character):04X}"
    return None


def text_problem(value: str, what: str, maximum: int, allow_lines: bool = False) -> str | None:
    """Why `value` cannot be sent (too long, a control character), in words for the person who typed it."""
    if len(value) > maximum:
        return f"{what} is {len(value)} characters long: please keep it to {maximum}."
    found = control_character(value, allow_lines)
    if found:
        return f"{what} holds a control character ({found}) that cannot be sent: please retype it."
    return None
