"""What one requirement's cell says about a laptop: a status and, when it was never checked, why.

The device list, the device page, their CSV export and `homeroom-server devices` all show a cell per
requirement; a blank would read as "fine" or as "broken", so every cell says something. A laptop
that has not reported yet says so; a requirement the laptop could not check carries the laptop's own
reason (the service reports "no user has signed in since enrolment" for the user's screen lock); a
requirement left out of the device record is one the school's requirements do not ask for (the
server fills in every enabled one the report left out, `server.fleet.completeness`). Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from contract.requirements import CHECK_IDS

TITLES = {
    "disk_encryption": "Disk encryption",
    "firewall": "Firewall",
    "power_on_password": "Power-on password",
    "antivirus": "Antivirus",
    "screen_lock": "Screen lock",
    "software": "Authorised software",
}
NOT_REPORTED = "not reported yet"
NOT_REQUIRED = "not checked: not among this school's requirements"
NO_REASON = "the laptop gave no reason"


@dataclass(frozen=True)
class Cell:
    status: str  # pass | fail | unknown | error | not-reported | not-required
    text: str  # what the cell shows (and the CSV holds)
    summary: str  # the laptop's one-line summary, "" when there is none


def results_by_id(results: Iterable[Any] | None) -> dict[str, Mapping[str, Any]]:
    """The stored results keyed by requirement id; anything malformed is left out, not trusted."""
    return {
        str(result["id"]): result
        for result in results or ()
        if isinstance(result, Mapping) and isinstance(result.get("id"), str)
    }


def cell(found: Mapping[str, Mapping[str, Any]] | None, check_id: str) -> Cell:
    """`found` is None for a laptop with no report yet."""
    if found is None:
        return Cell("not-reported", NOT_REPORTED, "")
    result = found.get(check_id)
    if result is None:
        return Cell("not-required", NOT_REQUIRED, "")
    status = str(result.get("status") or "unknown")
    summary = str(result.get("summary") or "")
    if status in ("pass", "fail"):
        return Cell(status, status, summary)
    return Cell(status, f"{status}: {summary or NO_REASON}", summary)


def cells(results: Iterable[Any] | None, reported: bool) -> dict[str, Cell]:
    """One cell per requirement, in the order of `CHECK_IDS`."""
    found = results_by_id(results) if reported else None
    return {check_id: cell(found, check_id) for check_id in CHECK_IDS}


QUICK_STATUSES = ("pass", "fail")
# The cells an export gives most, made once: immutable, so every row may share them.
_QUICK_CELLS = {status: Cell(status, status, "") for status in QUICK_STATUSES}
_NOT_REQUIRED_CELL = Cell("not-required", NOT_REQUIRED, "")


def cells_from_statuses(statuses: Mapping[str, Any] | None, reported: bool) -> dict[str, Cell] | None:
    """The cells from each requirement's status alone (`device_status.checks`, which ingest writes
    beside the results), or None when one of them must say the laptop's reason (unknown, error) and
    so needs the results. Their `text` is the text `cells` gives; their summary is left empty: for
    a 100,000-row export, which shows the text only and would otherwise parse every result's
    evidence."""
    if not reported:
        return cells(None, False)
    if not isinstance(statuses, Mapping):
        return None
    shown: dict[str, Cell] = {}
    for check_id in CHECK_IDS:
        if check_id not in statuses:
            shown[check_id] = _NOT_REQUIRED_CELL
            continue
        status = statuses[check_id]
        if isinstance(status, str) and status in _QUICK_CELLS:
            shown[check_id] = _QUICK_CELLS[status]
        else:
            return None
    return shown


def failing(results: Iterable[Any] | None) -> list[tuple[str, str]]:
    """(requirement id, summary) of each failing requirement, in the order of `CHECK_IDS`."""
    found = results_by_id(results)
    return [
        (check_id, str(found[check_id].get("summary") or ""))
        for check_id in CHECK_IDS
        if check_id in found and found[check_id].get("status") == "fail"
    ]
