"""Console users: created, listed, given a role and schools, disabled. Used by
`homeroom-server users …` and by the pages; every change is audited."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Connection, delete, func, insert, select, update

from server.auth import hash_password
from server.console import audit_log
from server.console.roles import DISTRICT_ADMIN, ROLES, TECHNICIAN, VIEWER, Person, scope_for
from server.console.tables import ADMIN_SCHOOLS, ADMINS, API_TOKENS, SESSIONS
from server.errors import CommandError

# One "@", something on each side, no blanks: enough to catch a typo without refusing real addresses.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
MIN_PASSWORD_LENGTH = 12


def normalised_email(text: str) -> str:
    email = text.strip().lower()
    if len(email) > 100 or not _EMAIL.match(email):
        raise CommandError(f"{text!r} is not an e-mail address (name@school.example)")
    return email


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise CommandError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters")


def check_role(role: str, schools: list[str], district_wide: bool) -> None:
    if role not in ROLES:
        raise CommandError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    if role == TECHNICIAN and district_wide:
        raise CommandError("a school technician acts on assigned schools only: give --school, not --district")
    if role == TECHNICIAN and not schools:
        raise CommandError("a school technician needs at least one --school")
    if role == VIEWER and not schools and not district_wide:
        raise CommandError("a viewer reads either some schools (--school NAME) or the district (--district)")
    if role == VIEWER and schools and district_wide:
        raise CommandError("a viewer is either district-wide (--district) or per school (--school), not both")
    if role == DISTRICT_ADMIN and (schools or district_wide):
        raise CommandError("a district administrator reads every school: give no --school or --district")


@dataclass(frozen=True)
class UserRow:
    email: str
    role: str
    schools: tuple[str, ...]
    district_wide: bool
    disabled: bool
    created_at: str


def find_id(connection: Connection, email: str) -> int:
    """The user's id, or a CommandError naming how to list users."""
    return _find(connection, email)


def _find(connection: Connection, email: str) -> int:
    found = connection.execute(
        select(ADMINS.c.id).where(func.lower(ADMINS.c.username) == email.lower())
    ).scalar_one_or_none()
    if found is None:
        raise CommandError(f"no console user {email!r}: `homeroom-server users list` lists them")
    return int(found)


def _set_schools(connection: Connection, admin_id: int, schools: list[str]) -> None:
    connection.execute(delete(ADMIN_SCHOOLS).where(ADMIN_SCHOOLS.c.admin_id == admin_id))
    for school in sorted(set(schools)):
        connection.execute(insert(ADMIN_SCHOOLS).values(admin_id=admin_id, group_name=school))


def add_user(
    connection: Connection,
    email_text: str,
    password: str,
    role: str,
    schools: list[str],
    district_wide: bool,
    actor: str,
    address: str | None = None,
) -> str:
    email = normalised_email(email_text)
    check_password(password)
    check_role(role, schools, district_wide)
    exists = connection.execute(select(ADMINS.c.id).where(func.lower(ADMINS.c.username) == email)).first()
    if exists is not None:
        raise CommandError(f"{email} already has an account")
    admin_id = connection.execute(
        insert(ADMINS)
        .values(
            username=email,
            password_hash=hash_password(password),
            created_at=datetime.now(timezone.utc),
            role=role,
            district_wide=district_wide,
        )
        .returning(ADMINS.c.id)
    ).scalar_one()
    _set_schools(connection, admin_id, schools)
    audit_log.record(
        connection,
        actor,
        "user.created",
        {"user": email, "role": role, "schools": sorted(set(schools)), "district_wide": district_wide},
        address,
    )
    return email


def set_role(
    connection: Connection,
    email: str,
    role: str,
    schools: list[str],
    district_wide: bool,
    actor: str,
    address: str | None = None,
) -> None:
    check_role(role, schools, district_wide)
    admin_id = _find(connection, email)
    connection.execute(
        update(ADMINS).where(ADMINS.c.id == admin_id).values(role=role, district_wide=district_wide)
    )
    _set_schools(connection, admin_id, schools)
    # What a session may see changes with the role: sign in again to pick it up.
    revoke_sessions(connection, admin_id)
    audit_log.record(
        connection,
        actor,
        "user.role_changed",
        {
            "user": email.lower(),
            "role": role,
            "schools": sorted(set(schools)),
            "district_wide": district_wide,
        },
        address,
    )


def revoke_sessions(connection: Connection, admin_id: int) -> int:
    done = connection.execute(
        update(SESSIONS)
        .where(SESSIONS.c.admin_id == admin_id, SESSIONS.c.revoked_at.is_(None))
        .values(revoked_at=datetime.now(timezone.utc))
    )
    return int(done.rowcount or 0)


def set_disabled(
    connection: Connection, email: str, disabled: bool, actor: str, address: str | None = None
) -> int:
    """Disabling also ends every session the user has open and revokes their API tokens (enabling
    them again brings neither back); returns how many sessions were ended."""
    admin_id = _find(connection, email)
    connection.execute(
        update(ADMINS)
        .where(ADMINS.c.id == admin_id)
        .values(disabled_at=datetime.now(timezone.utc) if disabled else None)
    )
    ended = revoke_sessions(connection, admin_id) if disabled else 0
    detail: dict[str, object] = {"user": email.lower(), "sessions_ended": ended}
    if disabled:
        detail["api_tokens_revoked"] = revoke_api_tokens(connection, admin_id)
    action = "user.disabled" if disabled else "user.enabled"
    audit_log.record(connection, actor, action, detail, address)
    return ended


def revoke_api_tokens(connection: Connection, admin_id: int) -> int:
    done = connection.execute(
        update(API_TOKENS)
        .where(API_TOKENS.c.admin_id == admin_id, API_TOKENS.c.revoked_at.is_(None))
        .values(revoked_at=datetime.now(timezone.utc))
    )
    return int(done.rowcount or 0)


def end_sessions(connection: Connection, email: str, actor: str, address: str | None = None) -> int:
    admin_id = _find(connection, email)
    ended = revoke_sessions(connection, admin_id)
    audit_log.record(
        connection, actor, "user.sessions_revoked", {"user": email.lower(), "sessions_ended": ended}, address
    )
    return ended


def list_users(connection: Connection) -> list[UserRow]:
    schools: dict[int, list[str]] = {}
    for row in connection.execute(select(ADMIN_SCHOOLS).order_by(ADMIN_SCHOOLS.c.group_name)):
        schools.setdefault(row.admin_id, []).append(row.group_name)
    return [
        UserRow(
            email=row.username,
            role=row.role,
            schools=tuple(schools.get(row.id, ())),
            district_wide=bool(row.district_wide),
            disabled=row.disabled_at is not None,
            created_at=(
                row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=timezone.utc)
            ).isoformat(timespec="seconds"),
        )
        for row in connection.execute(select(ADMINS).order_by(ADMINS.c.username))
    ]


def person(connection: Connection, admin_id: int) -> Person | None:
    """The user behind a session, or None once disabled."""
    row = connection.execute(select(ADMINS).where(ADMINS.c.id == admin_id)).first()
    if row is None or row.disabled_at is not None:
        return None
    schools = connection.execute(
        select(ADMIN_SCHOOLS.c.group_name).where(ADMIN_SCHOOLS.c.admin_id == admin_id)
    ).scalars()
    return Person(row.id, row.username, row.role, scope_for(row.role, bool(row.district_wide), schools))
