"""What IT publishes to a group (requirements, policies), as heartbeats hand it out, with a short cache."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, insert, select, update

from contract.errors import ConfigError
from contract.policy import PolicyDocument, PolicyError, parse_policy
from contract.requirements import requirements_from_text
from server.api.schemas import (
    PoliciesOut,
    PolicyOut,
    RequirementsOut,
)
from server.db.tables import (
    AUDIT,
    POLICIES,
    POLICY_VERSIONS,
    REQUIREMENTS,
    REQUIREMENTS_VERSIONS,
)

T = TypeVar("T")


class GroupCache(Generic[T]):
    """Something every heartbeat asks for per group (requirements, policies), cached for a few seconds.

    Publishing reaches devices at most `seconds` later; in exchange a heartbeat costs no query for it.
    """

    def __init__(self, seconds: float, load: Callable[[Connection, str], T | None]) -> None:
        self.seconds = seconds
        self.load = load
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, T | None]] = {}

    def get(self, connection: Connection, group: str) -> T | None:
        with self._lock:
            entry = self._cache.get(group)
        if entry and time.monotonic() - entry[0] < self.seconds:
            return entry[1]
        found = self.load(connection, group)
        with self._lock:
            self._cache[group] = (time.monotonic(), found)
        return found


def load_requirements(connection: Connection, group: str) -> RequirementsOut | None:
    """The group's own requirements, else the district-wide ones (group "")."""
    docs = {
        row.group_name: row
        for row in connection.execute(
            select(REQUIREMENTS.c.group_name, REQUIREMENTS.c.etag, REQUIREMENTS.c.content).where(
                REQUIREMENTS.c.group_name.in_([group, ""])
            )
        )
    }
    doc = docs.get(group) or docs.get("")
    return RequirementsOut(etag=doc.etag, content=doc.content) if doc else None


def load_policies(connection: Connection, group: str) -> PoliciesOut | None:
    """Per audience, the group's own policy, else the district-wide one; the ETag covers all of them."""
    rows = connection.execute(
        select(POLICIES).where(POLICIES.c.group_name.in_([group, ""])).order_by(POLICIES.c.group_name)
    ).all()
    chosen: dict[str, PolicyOut] = {}
    for row in rows:  # "" sorts first, so a group's own policy replaces the district-wide one
        chosen[row.audience] = PolicyOut(
            audience=row.audience, policy_id=row.policy_id, version=row.version, content=row.content
        )
    if not chosen:
        return None
    documents = [chosen[audience] for audience in sorted(chosen)]
    etag = hashlib.sha256("".join(f"{d.audience}:{d.version};" for d in documents).encode()).hexdigest()
    return PoliciesOut(etag=etag, documents=documents)


RequirementsCache = GroupCache[RequirementsOut]


PoliciesCache = GroupCache[PoliciesOut]


def requirements_etag(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


def store_requirements(connection: Connection, content: str, group: str, by: str = "cli") -> str:
    """Publish `content` as the group's requirements ("" for every group); returns the new ETag.

    Heartbeats see it once the short cache expires (GroupCache), and the ETag change sends it on.
    Each publication is also kept as a version (`requirements_versions`, `by` names who). The
    caller has validated the content and writes the audit entry.
    """
    etag = requirements_etag(content)
    now = datetime.now(timezone.utc)
    values = {"content": content, "etag": etag, "updated_at": now}
    changed = connection.execute(
        update(REQUIREMENTS).where(REQUIREMENTS.c.group_name == group).values(**values)
    ).rowcount
    if not changed:
        connection.execute(insert(REQUIREMENTS).values(group_name=group, **values))
    connection.execute(
        insert(REQUIREMENTS_VERSIONS).values(
            group_name=group, etag=etag, content=content, published_at=now, published_by=by[:100]
        )
    )
    return etag


# ---- publishing: the one path the CLI and the console share ----

TITLE_MAX = 300  # policies.title


def _audit(connection: Connection, actor: str, action: str, detail: dict[str, Any], address: str) -> None:
    connection.execute(
        insert(AUDIT).values(
            at=datetime.now(timezone.utc), actor=actor, action=action, detail=detail, address=address[:64]
        )
    )


def publish_requirements(
    connection: Connection, source: str, content: str, group: str, actor: str, address: str
) -> str:
    """Validate (as agents will: `requirements_from_text`, a ConfigError naming `source`, the line
    and the fix), store, keep the version and audit; returns the new ETag. Nothing is written when
    the content is refused."""
    if "\x00" in content:
        raise ConfigError(source, None, "holds a NUL character", "remove it: TOML text has none")
    requirements_from_text(source, content)
    etag = store_requirements(connection, content, group, actor)
    _audit(connection, actor, "requirements.published", {"group": group, "etag": etag}, address)
    return etag


def check_policy(source: str, content: str) -> PolicyDocument:
    """The policy as agents will read it (`parse_policy`), plus what the database can hold."""
    if "\x00" in content:
        raise PolicyError(source, None, "holds a NUL character", "remove it: a policy is plain text")
    document = parse_policy(content, source)
    if len(document.title) > TITLE_MAX:
        raise PolicyError(
            source, None, f"its title is {len(document.title)} characters long", f"keep it to {TITLE_MAX}"
        )
    return document


def publish_policy(
    connection: Connection, source: str, content: str, group: str, actor: str, address: str
) -> PolicyDocument:
    """Validate, store as the group's policy for its audience (its version is the SHA-256 of
    `content`), keep the version and audit. Raises PolicyError, with nothing written, when refused."""
    document = check_policy(source, content)
    now = datetime.now(timezone.utc)
    values = {
        "policy_id": document.id,
        "title": document.title,
        "version": document.version,
        "content": content,
        "published_at": now,
    }
    changed = connection.execute(
        update(POLICIES)
        .where(POLICIES.c.group_name == group, POLICIES.c.audience == document.audience)
        .values(**values)
    ).rowcount
    if not changed:
        connection.execute(insert(POLICIES).values(group_name=group, audience=document.audience, **values))
    connection.execute(
        insert(POLICY_VERSIONS).values(
            group_name=group, audience=document.audience, published_by=actor[:100], **values
        )
    )
    _audit(
        connection,
        actor,
        "policy.published",
        {"group": group, "audience": document.audience, "id": document.id, "version": document.version},
        address,
    )
    return document
