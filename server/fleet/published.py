"""What IT publishes to a group (requirements, policies), as heartbeats hand it out, with a short cache."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Generic, TypeVar

from sqlalchemy import Connection, insert, select, update

from server.api.schemas import (
    PoliciesOut,
    PolicyOut,
    RequirementsOut,
)
from server.db.tables import (
    POLICIES,
    REQUIREMENTS,
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


def store_requirements(connection: Connection, content: str, group: str) -> str:
    """Publish `content` as the group's requirements ("" for every group); returns the new ETag.

    Heartbeats see it once the short cache expires (GroupCache), and the ETag change sends it on.
    The caller has validated the content and writes the audit entry.
    """
    etag = requirements_etag(content)
    values = {"content": content, "etag": etag, "updated_at": datetime.now(timezone.utc)}
    changed = connection.execute(
        update(REQUIREMENTS).where(REQUIREMENTS.c.group_name == group).values(**values)
    ).rowcount
    if not changed:
        connection.execute(insert(REQUIREMENTS).values(group_name=group, **values))
    return etag
