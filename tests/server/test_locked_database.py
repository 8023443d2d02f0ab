"""Another process holds the database lock: the server stays responsive and answers 503 + Retry-After.

SQLite: a second process holds the write lock (BEGIN IMMEDIATE). PostgreSQL: a second process holds the
device's row lock (SELECT … FOR UPDATE). Meanwhile /healthz answers at once, a heartbeat gets 503 with
Retry-After after the lock wait (never a 500), and the next heartbeat after the release succeeds.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import requests

from tests.helpers.servers import ServerProcess
from tests.helpers.signed_device import Device, heartbeat

HOLD_SQLITE = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
connection.execute("ROLLBACK")
"""

HOLD_POSTGRES = """
import psycopg, sys
with psycopg.connect(sys.argv[1]) as connection:
    connection.execute("SELECT id FROM devices WHERE id = %s FOR UPDATE", (sys.argv[2],))
    print("locked", flush=True)
    sys.stdin.read()
"""


@contextmanager
def lock_held(server: ServerProcess, device_id: str) -> Iterator[None]:
    url = server.database_url
    if url.startswith("sqlite:///"):
        args = [sys.executable, "-c", textwrap.dedent(HOLD_SQLITE), url.removeprefix("sqlite:///")]
    else:
        args = [sys.executable, "-c", textwrap.dedent(HOLD_POSTGRES), url, device_id]
    holder = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(30)


def test_a_held_lock_gets_503_and_retry_after_while_healthz_answers(server: ServerProcess) -> None:
    device = Device(server)
    assert device.enrol(server.token()).status_code == 200
    assert device.post("/heartbeat", heartbeat()).status_code == 200
    answers: list[requests.Response] = []
    with lock_held(server, device.device_id):
        waiting = threading.Thread(target=lambda: answers.append(device.post("/heartbeat", heartbeat())))
        began = time.monotonic()
        waiting.start()
        time.sleep(0.5)  # the heartbeat is now waiting for the lock
        for _ in range(3):
            asked = time.monotonic()
            assert requests.get(f"{server.url}/healthz", timeout=5).status_code == 200
            assert time.monotonic() - asked < 0.5
        waiting.join(30)
        took = time.monotonic() - began
    (busy,) = answers
    assert busy.status_code == 503, busy.text
    assert int(busy.headers["Retry-After"]) > 0
    assert "busy" in busy.json()["detail"]
    assert took < 10, took  # the lock wait is a few seconds, not for ever
    assert device.post("/heartbeat", heartbeat()).status_code == 200
