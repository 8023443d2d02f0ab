"""CSV that a spreadsheet opens safely.

A hostname or a typed name that starts with "=", "+", "-", "@", a tab or a carriage
return would otherwise run as a formula when the file is opened in a spreadsheet.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text
