"""Each server process settles the garbage collector when it starts serving (server/collector.py)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.app import create_app
from server.collector import YOUNG_COLLECTION_EVERY
from server.settings import Settings
from tests.helpers.servers import InitialisedDatabases


@pytest.fixture
def collector_restored() -> Iterator[None]:
    """The test process's collector as it was, whatever the test did to it."""
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def test_the_app_freezes_start_up_and_collects_young_objects_less_often(
    tmp_path: Path, initialised_databases: InitialisedDatabases, collector_restored: None
) -> None:
    url = f"sqlite:///{tmp_path / 'homeroom.db'}"
    initialised_databases.copy_into(url)
    app = create_app(Settings(database_url=url, data_dir=tmp_path))
    gc.unfreeze()
    seen: dict[str, object] = {}

    async def serve_a_moment() -> None:
        async with app.router.lifespan_context(app):
            seen["threshold"] = gc.get_threshold()[0]
            seen["frozen"] = gc.get_freeze_count()

    try:
        asyncio.run(serve_a_moment())
    finally:
        app.state.services.engine.dispose()
    assert seen["threshold"] == YOUNG_COLLECTION_EVERY
    # What start-up made (the app's routes, tables, modules) is out of the collector's walks.
    assert isinstance(seen["frozen"], int) and seen["frozen"] > 10_000
