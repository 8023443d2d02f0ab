"""Fixtures the console's database-level tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from server.db.engine import make_engine


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on the test's database (both databases, through `database_url`), not yet migrated:
    each test upgrades it as far as it needs."""
    made = make_engine(database_url)
    try:
        yield made
    finally:
        made.dispose()
