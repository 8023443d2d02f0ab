"""The real app's lifespan run in this process, for a look at what it sets up while it serves."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from server.app import create_app
from server.settings import Settings
from tests.helpers.servers import InitialisedDatabases

Seen = TypeVar("Seen")


def seen_while_serving(
    database: Path, initialised_databases: InitialisedDatabases, look: Callable[[], Seen]
) -> Seen:
    """`look()` called inside the lifespan of an app built on a fresh SQLite copy at `database`;
    the lifespan has ended when this returns."""
    url = f"sqlite:///{database}"
    initialised_databases.copy_into(url)
    app = create_app(Settings(database_url=url, data_dir=database.parent))
    seen: list[Seen] = []

    async def serve_a_moment() -> None:
        async with app.router.lifespan_context(app):
            seen.append(look())

    try:
        asyncio.run(serve_a_moment())
    finally:
        app.state.services.engine.dispose()
    return seen[0]
