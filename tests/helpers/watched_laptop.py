"""A laptop with its install watch on: a real server process, `homeroom-agent run` as a real
process enrolled with it, and what reached the server read from the server's database."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import select

from server.db.engine import make_engine
from server.db.models import Report
from tests.helpers.agent_process import agent
from tests.helpers.paths import ROOT
from tests.helpers.servers import ServerProcess

WATCH_LINE = re.compile(r"install watch: watching (?P<what>.*) \(threads (?P<threads>[\d ]+|none)\)")


@dataclass
class WatchedLaptop:
    server: ServerProcess
    state: Path
    service: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> None:
        assert self.service.poll() is None, self.log_text()

    def watch_threads(self) -> list[int]:
        found = WATCH_LINE.search(self.log_text())
        assert found, self.log_text()
        return [int(tid) for tid in found["threads"].split()] if found["threads"] != "none" else []

    def reports(self, after: datetime | None = None) -> list[tuple[datetime, dict[str, Any]]]:
        engine = make_engine(self.server.database_url)
        try:
            with engine.connect() as connection:
                query = select(Report.received_at, Report.body).order_by(Report.id)
                if after is not None:
                    query = query.where(Report.received_at >= after.replace(tzinfo=None))
                return [(utc(row[0]), dict(row[1])) for row in connection.execute(query).all()]
        finally:
            engine.dispose()

    def change_received(self, name: str, side: str, after: datetime) -> datetime | None:
        """When the server received the first report saying `name` was `side` ("added"/"removed")."""
        for received_at, body in self.reports(after):
            listed = (body.get("software_changes") or {}).get(side) or []
            if any(item.get("name") == name for item in listed):
                return received_at
        return None

    def wait_for_change(self, name: str, side: str, after: datetime, timeout: float = 15) -> datetime:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.alive()
            received = self.change_received(name, side, after)
            if received is not None:
                return received
            time.sleep(0.05)
        raise AssertionError(f"the server never heard that {name} was {side}:\n{self.log_text()[-4000:]}")


def utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def wait_for_first_report(laptop: WatchedLaptop, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        laptop.alive()
        if laptop.reports() and "install watch:" in laptop.log_text():
            return
        time.sleep(0.1)
    raise AssertionError(f"no first report within {timeout} s:\n{laptop.log_text()}")


@contextmanager
def watched_laptop(base: Path, launcher: tuple[str, ...] = ()) -> Iterator[WatchedLaptop]:
    """`base` holds the server's data, the agent's state and the service's log; `launcher` is put
    before the service's command line (to start it in a user namespace of its own)."""
    (base / "server").mkdir(parents=True, exist_ok=True)
    server = ServerProcess(f"sqlite:///{base / 'server' / 'homeroom.db'}", base / "server")
    server.init()
    server.start()
    state = base / "state"
    service: subprocess.Popen[bytes] | None = None
    try:
        enrolled = agent(
            "enroll", "--server", server.url, "--token", server.token(), "--state-dir", str(state)
        )
        assert enrolled.returncode == 0, enrolled.stderr
        log = base / "service.log"
        with open(log, "wb") as out:
            service = subprocess.Popen(
                [*launcher, sys.executable, "-m", "agent.cli", "run", "--state-dir", str(state)],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        laptop = WatchedLaptop(server, state, service, log)
        wait_for_first_report(laptop)
        yield laptop
    finally:
        if service is not None and service.poll() is None:
            service.terminate()
            try:
                service.wait(20)
            except subprocess.TimeoutExpired:
                service.kill()
                service.wait(10)
        server.stop()
