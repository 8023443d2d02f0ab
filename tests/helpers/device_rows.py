"""A device row written straight into the database, and an engine on a fresh initialised copy:
for tests that drive the server's database code without enrolling through HTTP."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, insert

from server.db.engine import make_engine
from server.db.tables import DEVICES
from tests.helpers.servers import InitialisedDatabases


def insert_device(connection: Connection, device_id: str, **overrides: Any) -> None:
    """A Lincoln High Linux laptop with `device_id`; `overrides` replace any column."""
    values = {
        "id": device_id,
        "group_name": "Lincoln High",
        "hostname": "lt1",
        "os": "linux",
        "os_version": "Debian 12",
        "macs": [],
        "identity_unreadable": {},
        "public_key": "AAAA",
        "agent_version": "0.1.0",
        "enrolled_at": datetime.now(timezone.utc),
        **overrides,
    }
    connection.execute(insert(DEVICES).values(values))


def engine_on_copy(
    database_url: str, initialised_databases: InitialisedDatabases, request: pytest.FixtureRequest
) -> Engine:
    """A server engine on a fresh copy of the initialised database at `database_url`."""
    cluster = None if database_url.startswith("sqlite") else request.getfixturevalue("postgres")
    initialised_databases.copy_into(database_url, cluster)
    return make_engine(database_url, for_server=True)
