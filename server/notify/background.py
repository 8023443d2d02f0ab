"""The server's own background work, started with each server process: sending notifications
every few seconds and deleting expired lost-mode evidence every hour.

Every worker process runs it; the outbox's leases keep two processes from sending one row, and the
evidence purge deletes what is due whoever runs it. It has its own database engine (one more
connection), so it never waits for the connection the agent requests use on SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any

from server.db.engine import make_engine
from server.lost.evidence import purge_expired_evidence
from server.notify.sender import NotificationSender
from server.settings import Settings

log = logging.getLogger("homeroom.background")
PURGE_EVERY_SECONDS = 3600.0


async def run_background(settings: Settings, stop: asyncio.Event) -> None:
    engine = make_engine(settings.database_url, for_server=True)
    sender = NotificationSender(engine, settings.config)
    poll = settings.config.notify.poll_seconds
    next_purge = 0.0
    loop = asyncio.get_running_loop()
    try:
        while not stop.is_set():
            try:
                await asyncio.to_thread(sender.run_once)
                if loop.time() >= next_purge:
                    next_purge = loop.time() + PURGE_EVERY_SECONDS
                    await asyncio.to_thread(
                        purge_expired_evidence,
                        engine,
                        settings.config.lost.evidence_keep_days,
                        datetime.now(timezone.utc),
                        "server",
                    )
            except Exception:
                log.exception("background work failed; trying again in %s s", poll)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=poll)
    finally:
        engine.dispose()


def background_lifespan(settings: Settings) -> Callable[[Any], Any]:
    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(run_background(settings, stop))
        try:
            yield
        finally:
            stop.set()
            try:
                await asyncio.wait_for(task, timeout=35)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                task.cancel()

    return lifespan
