"""Fixtures the server's database tests share (`tests/server/console` has its own `engine`: not yet
migrated, as its migration tests need)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from tests.helpers.device_rows import engine_on_copy
from tests.helpers.servers import InitialisedDatabases


@pytest.fixture
def engine(
    database_url: str, initialised_databases: InitialisedDatabases, request: pytest.FixtureRequest
) -> Iterator[Engine]:
    """A server engine on a fresh copy of the initialised database (both databases, through
    `database_url`), disposed after the test."""
    made = engine_on_copy(database_url, initialised_databases, request)
    try:
        yield made
    finally:
        made.dispose()
