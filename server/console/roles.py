"""Who may see and do what in the console: three roles, and the schools each person reads.

A school is a device group (`devices.group_name`, the group an enrolment token enrols into).
Every fleet query in the console is narrowed by a `Scope` built here, in one place, so a
technician's pages, searches and exports can only ever name their own schools' devices.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, false, true
from sqlalchemy.sql.elements import ColumnClause

DISTRICT_ADMIN = "district_admin"
TECHNICIAN = "technician"
VIEWER = "viewer"
ROLES = (DISTRICT_ADMIN, TECHNICIAN, VIEWER)
ROLE_NAMES = {
    DISTRICT_ADMIN: "district administrator",
    TECHNICIAN: "school technician",
    VIEWER: "viewer",
}


@dataclass(frozen=True)
class Scope:
    """The schools a person reads: `None` means every school."""

    schools: frozenset[str] | None

    @property
    def district_wide(self) -> bool:
        return self.schools is None

    def allows(self, school: str) -> bool:
        return self.schools is None or school in self.schools

    def where(self, group_column: ColumnClause[str] | ColumnElement[str]) -> ColumnElement[bool]:
        """A WHERE clause on a group column: true for every school, or `IN` the assigned ones."""
        if self.schools is None:
            return true()
        if not self.schools:
            return false()
        return group_column.in_(sorted(self.schools))


@dataclass(frozen=True)
class Person:
    """A signed-in console user, as every page sees them."""

    id: int
    email: str
    role: str
    scope: Scope

    @property
    def role_name(self) -> str:
        return ROLE_NAMES.get(self.role, self.role)

    @property
    def manages_users(self) -> bool:
        return self.role == DISTRICT_ADMIN

    @property
    def reads_audit(self) -> bool:
        """The audit log names devices and people of every school: district-wide readers only."""
        return self.role == DISTRICT_ADMIN or (self.role == VIEWER and self.scope.district_wide)

    @property
    def acts_on_devices(self) -> bool:
        return self.role in (DISTRICT_ADMIN, TECHNICIAN)


def scope_for(role: str, district_wide: bool, schools: Iterable[str]) -> Scope:
    """A district administrator reads everything; a technician only their schools; a viewer either."""
    if role == DISTRICT_ADMIN or (role == VIEWER and district_wide):
        return Scope(None)
    return Scope(frozenset(schools))
