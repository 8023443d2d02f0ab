"""What the Sign-offs page shows: coverage per school and audience, and the rows a filter keeps.

Pure functions over `server.fleet.signoffs.signoff_rows` (the report `homeroom-server signoffs`
prints, judged with contract/renewal.py), so the console and the CLI never disagree about who
has signed. The reader's `Scope` is applied here too: a technician's coverage, list and export
only ever hold their own schools.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from server.console.roles import Scope
from server.fleet.signoffs import SignOffRow
from server.fleet.spreadsheet import spreadsheet_safe

SIGNED, DECLINED, MUST_SIGN = "signed", "declined", "must sign"
STATES = (SIGNED, DECLINED, MUST_SIGN)
PAGE_SIZE = 100


def state_of(row: SignOffRow) -> str:
    """Signed, declined, or must sign (never signed, the version changed, past renewal, no policy)."""
    if row.status == "signed":
        return SIGNED
    if row.status == "declined":
        return DECLINED
    return MUST_SIGN


@dataclass(frozen=True)
class SignOffFilters:
    school: str = ""
    audience: str = ""
    state: str = ""  # one of STATES, or "" for all
    search: str = ""  # user, full name or hostname contains (any case)

    def keeps(self, row: SignOffRow, scope: Scope) -> bool:
        if not scope.allows(row.group):
            return False
        if self.school and row.group != self.school:
            return False
        if self.audience and row.audience != self.audience:
            return False
        if self.state and state_of(row) != self.state:
            return False
        if self.search:
            needle = self.search.lower()
            haystack = (row.user, row.full_name or "", row.hostname)
            return any(needle in text.lower() for text in haystack)
        return True


@dataclass
class Coverage:
    school: str
    audience: str
    people: int = 0  # users seen, counted once per device they were seen on
    signed: int = 0
    declined: int = 0
    must_sign: int = 0

    @property
    def share(self) -> float:
        return self.signed / self.people if self.people else 0.0


def coverage(rows: Iterable[SignOffRow]) -> list[Coverage]:
    """One line per (school, audience), sorted; plus nothing else (the page adds the total)."""
    found: dict[tuple[str, str], Coverage] = {}
    for row in rows:
        line = found.setdefault((row.group, row.audience), Coverage(row.group, row.audience))
        line.people += 1
        state = state_of(row)
        line.signed += state == SIGNED
        line.declined += state == DECLINED
        line.must_sign += state == MUST_SIGN
    return [found[key] for key in sorted(found)]


def total(lines: Iterable[Coverage]) -> Coverage:
    whole = Coverage("all", "all")
    for line in lines:
        whole.people += line.people
        whole.signed += line.signed
        whole.declined += line.declined
        whole.must_sign += line.must_sign
    return whole


CSV_FIELDS = (
    "school",
    "audience",
    "hostname",
    "serial",
    "user",
    "state",
    "must_sign_because",
    "full_name",
    "policy_id",
    "policy_version",
    "decided_at",
)


def _csv_values(row: SignOffRow) -> list[str]:
    values = (
        row.group,
        row.audience,
        row.hostname,
        row.serial,
        row.user,
        state_of(row),
        row.must_sign,
        row.full_name,
        row.policy_id,
        row.policy_version,
        row.decided_at,
    )
    return [spreadsheet_safe(value) for value in values]


def as_csv(rows: Iterable[SignOffRow], batch: int = 1000) -> Iterator[str]:
    """Streamed in pieces of `batch` rows; every cell spreadsheet-safe (names and hostnames are typed
    on laptops: `=HYPERLINK(…)` must stay text)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_FIELDS)
    for written, row in enumerate(rows, start=1):
        writer.writerow(_csv_values(row))
        if written % batch == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()
