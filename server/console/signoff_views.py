"""What the Sign-offs page shows: coverage per school and audience, and the rows a filter keeps.

The filters are SQL clauses over the one judgement (`server.fleet.signoff_state.judged`, which the
report `homeroom-server signoffs` prints too), so the console and the CLI never disagree about who
has signed; the reader's `Scope` is one of the clauses, so a technician's coverage, list and export
only ever hold their own schools. The rest is pure: a row's state, the totals, the CSV lines.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, true

from server.console.roles import Scope
from server.fleet import signoff_state
from server.fleet.signoffs import SignOffRow
from server.fleet.spreadsheet import spreadsheet_safe

SIGNED, DECLINED, MUST_SIGN = "signed", "declined", "must sign"
STATES = (SIGNED, DECLINED, MUST_SIGN)
# Each state the page offers, as the judgement's states it gathers.
JUDGED = {
    SIGNED: (signoff_state.SIGNED,),
    DECLINED: (signoff_state.DECLINED,),
    MUST_SIGN: signoff_state.MUST_SIGN,
}
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

    def where(self, people: Any, scope: Scope) -> ColumnElement[bool]:
        """The rows of `people` (a `judged()` subquery) this filter keeps, among the reader's schools."""
        clauses = [scope.where(people.c.group_name), *self.devices_where(people.c, scope=None)]
        if self.state:
            clauses.append(people.c.standing.in_(signoff_state.standings(JUDGED[self.state])))
        if self.search:
            needle = self.search.lower()
            clauses.append(
                or_(
                    *(
                        func.lower(column).contains(needle, autoescape=True)
                        for column in (people.c.user, people.c.full_name, people.c.hostname)
                    )
                )
            )
        return and_(true(), *clauses)

    def devices_where(self, columns: Any, scope: Scope | None) -> list[ColumnElement[bool]]:
        """The clauses on a laptop alone (school, audience, and the reader's schools when given), on
        `columns` that have group_name and audience: the export walks the laptops with them."""
        clauses = [scope.where(columns.group_name)] if scope is not None else []
        if self.school:
            clauses.append(columns.group_name == self.school)
        if self.audience:
            clauses.append(columns.audience == self.audience)
        return clauses


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


def shown(lines: Iterable[Coverage], state: str) -> int:
    """How many people the coverage lines hold in `state` (one of STATES, or "" for everyone)."""
    return sum(
        {"": line.people, SIGNED: line.signed, DECLINED: line.declined, MUST_SIGN: line.must_sign}[state]
        for line in lines
    )


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
