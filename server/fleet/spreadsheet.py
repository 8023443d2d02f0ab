"""CSV cells that a spreadsheet opens safely (OWASP's "CSV Injection" forms).

A hostname or a typed name that starts with "=", "+", "-", "@", a tab or a carriage return
would otherwise run as a formula when the file is opened in a spreadsheet. Spreadsheets also skip
leading blanks and line breaks before a formula, and read the full-width and small forms of those
signs (`＝`, `﹦`, …) as the ASCII ones, so the check looks past them; such a cell gets a leading
apostrophe, which spreadsheets show as text. NUL and ESC are removed outright: NUL truncates a
cell in some readers and ESC starts a terminal escape when the file is viewed with `cat`.
"""

from __future__ import annotations

FORMULA_STARTS = frozenset(
    "=+-@\t\r"
    "\uff1d\uff0b\uff0d\uff20"  # full-width ＝ ＋ － ＠
    "\ufe66\ufe62\ufe63\ufe6b"  # small ﹦ ﹢ ﹣ ﹫
    "\u2212"  # the minus sign −
)
# What a spreadsheet passes over before it looks for a formula sign.
LEADING_BLANKS = " \t\r\n\u00a0\u3000\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\ufeff"
REMOVED = str.maketrans({"\x00": None, "\x1b": None})
_BLANK_STARTS = frozenset(LEADING_BLANKS)


def spreadsheet_safe(value: object) -> str:
    """Called for every cell of a 100,000-laptop export: the common cell (no NUL or ESC, not starting
    with a blank or a sign) costs two searches and a set lookup, never a copy."""
    text = "" if value is None else str(value)
    if "\x00" in text or "\x1b" in text:
        text = text.translate(REMOVED)
    first = text[:1]
    if first in FORMULA_STARTS:
        return "'" + text
    if first in _BLANK_STARTS:
        rest = text.lstrip(LEADING_BLANKS)
        if rest and rest[0] in FORMULA_STARTS:
            return "'" + text
    return text
