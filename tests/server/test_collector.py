"""Each server process settles the garbage collector when it starts serving (server/collector.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.collector import YOUNG_COLLECTION_EVERY
from tests.helpers.app_lifespan import seen_while_serving
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
    gc.unfreeze()
    threshold, frozen = seen_while_serving(
        tmp_path / "homeroom.db",
        initialised_databases,
        lambda: (gc.get_threshold()[0], gc.get_freeze_count()),
    )
    assert threshold == YOUNG_COLLECTION_EVERY
    # What start-up made (the app's routes, tables, modules) is out of the collector's walks.
    assert frozen > 10_000
