"""Text from devices made safe to print on an administrator's terminal.

A hostname, a user name or a typed full name comes from a laptop a student may control. Printed
raw, an escape sequence clears the screen or retitles the window, a carriage return overwrites
the line, and a newline forges a whole table row. Every control character (C0, DEL, C1), every
line or paragraph separator and every bidirectional override is shown as a visible escape
instead (`\\x1b`, `\\n`, `\\u202e`), so what IT reads is what the device sent.
"""

from __future__ import annotations

import unicodedata

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Format characters that reorder or hide text on screen (bidi embeddings, overrides, isolates, marks).
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _escaped(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _unsafe(char: str) -> bool:
    return char in _BIDI or unicodedata.category(char) in ("Cc", "Zl", "Zp")


def printable(value: object) -> str:
    """`value` as text with nothing in it that a terminal would act on."""
    text = "" if value is None else str(value)
    if text.isprintable():  # the common case: isprintable is False for every Cc, Cf, Zl and Zp character
        return text
    return "".join(_escaped(char) if _unsafe(char) else char for char in text)


def cell(value: object, width: int) -> str:
    """A fixed-width table cell: escaped first, then cut, so an escape never straddles the cut unseen."""
    return f"{printable(value)[:width]:<{width}}"
