"""What the Policies and Requirements pages read: the documents in force and every version kept,
narrowed by the reader's `Scope` (a school's own copies, and the district-wide ones, group "")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, or_, select

from contract.errors import ConfigError
from contract.policy import parse_policy, reading_grade
from server.console.roles import Scope
from server.db.tables import POLICIES, POLICY_VERSIONS, REQUIREMENTS, REQUIREMENTS_VERSIONS

VERSIONS_SHOWN = 200


def _when(moment: datetime) -> str:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return moment.isoformat(timespec="minutes")


def _visible(scope: Scope, column: Any) -> Any:
    """A school's own documents and the district-wide ones ("" applies to every school)."""
    return or_(column == "", scope.where(column))


def _grade(content: str) -> str:
    try:
        return f"{reading_grade(parse_policy(content, 'stored policy')):.1f}"
    except ConfigError:  # checked when published; a stored copy that no longer parses shows no grade
        return "—"


@dataclass(frozen=True)
class PolicyEntry:
    id: int  # the version's id (policy_versions), 0 for a policy from before versions were kept
    school: str  # "" = every school
    audience: str
    policy_id: str
    title: str
    version: str
    published_at: str
    published_by: str
    grade: str


def current_policies(connection: Connection, scope: Scope) -> list[PolicyEntry]:
    rows = connection.execute(
        select(POLICIES)
        .where(_visible(scope, POLICIES.c.group_name))
        .order_by(POLICIES.c.group_name, POLICIES.c.audience)
    )
    return [
        PolicyEntry(
            0,
            row.group_name,
            row.audience,
            row.policy_id,
            row.title,
            row.version,
            _when(row.published_at),
            "",
            _grade(row.content),
        )
        for row in rows
    ]


def policy_versions(connection: Connection, scope: Scope) -> list[PolicyEntry]:
    rows = connection.execute(
        select(POLICY_VERSIONS)
        .where(_visible(scope, POLICY_VERSIONS.c.group_name))
        .order_by(POLICY_VERSIONS.c.id.desc())
        .limit(VERSIONS_SHOWN)
    )
    return [
        PolicyEntry(
            row.id,
            row.group_name,
            row.audience,
            row.policy_id,
            row.title,
            row.version,
            _when(row.published_at),
            row.published_by,
            _grade(row.content),
        )
        for row in rows
    ]


def policy_content(connection: Connection, scope: Scope, version_id: int) -> tuple[str, str] | None:
    """(school, content) of one kept version; None when it does not exist or is another school's."""
    row = connection.execute(
        select(POLICY_VERSIONS.c.group_name, POLICY_VERSIONS.c.content).where(
            POLICY_VERSIONS.c.id == version_id, _visible(scope, POLICY_VERSIONS.c.group_name)
        )
    ).first()
    return (row.group_name, row.content) if row else None


@dataclass(frozen=True)
class RequirementsEntry:
    id: int
    school: str
    etag: str
    published_at: str
    published_by: str
    content: str


def requirements_versions(connection: Connection, scope: Scope, school: str) -> list[RequirementsEntry]:
    """The versions of one school's own copy (or of the district-wide one, ""), newest first."""
    if school and not scope.allows(school):
        return []
    rows = connection.execute(
        select(REQUIREMENTS_VERSIONS)
        .where(REQUIREMENTS_VERSIONS.c.group_name == school)
        .order_by(REQUIREMENTS_VERSIONS.c.id.desc())
        .limit(VERSIONS_SHOWN)
    )
    return [
        RequirementsEntry(
            row.id, row.group_name, row.etag, _when(row.published_at), row.published_by, row.content
        )
        for row in rows
    ]


def schools_with_own_requirements(connection: Connection, scope: Scope) -> list[str]:
    query = select(REQUIREMENTS.c.group_name).where(
        REQUIREMENTS.c.group_name != "", scope.where(REQUIREMENTS.c.group_name)
    )
    return sorted(connection.execute(query).scalars())


def schools_with_policies(connection: Connection, scope: Scope) -> list[str]:
    query = (
        select(POLICIES.c.group_name)
        .where(POLICIES.c.group_name != "", scope.where(POLICIES.c.group_name))
        .distinct()
    )
    return sorted(connection.execute(query).scalars())


def has_own_requirements(connection: Connection, school: str) -> bool:
    query = select(REQUIREMENTS.c.group_name).where(REQUIREMENTS.c.group_name == school)
    return connection.execute(query).first() is not None
