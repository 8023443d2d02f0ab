"""The signed hot path at its edges, against a real server process: a body too large that arrives in
chunks, a database restarted under load, and the benchmark's cache counter."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, select
from sqlalchemy.engine import make_url

from contract.wire import API_PREFIX, MAX_BODY_BYTES, signed_headers
from server.cache_counts import COUNTS_VARIABLE, read_counts
from server.db.tables import DEVICE_STATUS, DEVICE_USERS, DEVICES
from server.settings import DEVICE_CACHE_VARIABLE
from tests.helpers.servers import InitialisedDatabases, PostgresCluster, ServerProcess
from tests.helpers.signed_device import IDENTITY, Device, heartbeat, report


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    yield b'{"heartbeat_id":"'
    sent = 0
    while sent < total:
        yield b"a" * size
        sent += size


def test_a_chunked_body_over_the_limit_gets_413(server: ServerProcess) -> None:
    device = Device(server)
    assert device.enrol(server.token()).status_code == 200
    path = f"{API_PREFIX}/heartbeat"
    # Signed over an empty body: the server must refuse on size before it reads or checks anything.
    headers = signed_headers(device.key, device.device_id, "POST", path, b"", time.time())
    headers["Content-Type"] = "application/json"
    # A generator makes requests send `Transfer-Encoding: chunked`, with no Content-Length to refuse.
    answer = requests.post(f"{server.url}{path}", data=_chunks(5 * 1024 * 1024), headers=headers, timeout=60)
    assert answer.status_code == 413, answer.text
    assert f"{MAX_BODY_BYTES} byte limit" in answer.json()["detail"]
    # The same for a route that reads no signature (enrolment reads its body as JSON itself).
    enrol = requests.post(f"{server.url}{API_PREFIX}/enrol", data=_chunks(5 * 1024 * 1024), timeout=60)
    assert enrol.status_code == 413, enrol.text
    # And for a form FastAPI parses itself (it turns any error while parsing a form into a 400).
    sign_in = requests.post(
        f"{server.url}/sign-in",
        data=_chunks(5 * 1024 * 1024),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=60,
    )
    assert sign_in.status_code == 413, sign_in.text
    assert device.post("/heartbeat", heartbeat()).status_code == 200


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_postgresql_restarted_under_load_gets_503_or_success_never_500(
    server: ServerProcess, postgres: PostgresCluster
) -> None:
    """Every pooled connection is cut by the restart; no ping runs before each use (a round trip per
    request), so the requests that meet a dead connection or a database still starting get 503 +
    Retry-After (the agent resends), and the ones after are served on new connections."""
    devices = [Device(server) for _ in range(4)]
    token = server.token()
    for number, device in enumerate(devices):
        device.identity = {**device.identity, "serial": f"RESTART{number}", "machine_id": f"{number:032x}"}
        device.identity["hardware_uuid"] = f"00000000-0000-0000-0000-{number:012x}"
        assert device.enrol(token).status_code == 200
    statuses: list[tuple[float, int, str | None]] = []
    stop = threading.Event()

    def send(device: Device) -> None:
        while not stop.is_set():
            answer = device.post("/heartbeat", heartbeat())
            statuses.append((time.monotonic(), answer.status_code, answer.headers.get("Retry-After")))

    senders = [threading.Thread(target=send, args=(device,)) for device in devices]
    for sender in senders:
        sender.start()
    try:
        time.sleep(1.0)
        postgres.restart()
        restarted = time.monotonic()
        time.sleep(3.0)
    finally:
        stop.set()
        for sender in senders:
            sender.join(60)
    counted = Counter(status for _, status, _ in statuses)
    assert set(counted) <= {200, 503}, counted
    assert all(retry for _, status, retry in statuses if status == 503)
    after = [status for at, status, _ in statuses if at > restarted + 1.0]
    assert after and set(after) == {200}, Counter(after)
    assert any(status == 200 for at, status, _ in statuses if at < restarted), "load ran before the restart"


def test_the_benchmark_counts_cache_hits_the_server_made(
    tmp_path: Path, initialised_databases: InitialisedDatabases, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HOMEROOM_BENCH_CACHE_COUNTS: what scripts/bench_server.py prints is the server's own count;
    HOMEROOM_DEVICE_CACHE_SECONDS=0 makes every request look its device up, as a real fleet's do."""
    url = f"sqlite:///{tmp_path / 'var' / 'homeroom.db'}"
    initialised_databases.copy_into(url)
    for cache, expected in (("30", (2, 1)), ("0", (0, 3))):
        counts = tmp_path / f"counts-{cache}"
        monkeypatch.setenv(COUNTS_VARIABLE, str(counts))
        monkeypatch.setenv(DEVICE_CACHE_VARIABLE, cache)
        server = ServerProcess(url, tmp_path)
        server.start()
        try:
            device = Device(
                server, identity={**IDENTITY, "serial": f"CACHE{cache}", "machine_id": cache * 16}
            )
            device.identity["hardware_uuid"] = f"00000000-0000-0000-0000-{int(cache):012x}"
            assert device.enrol(server.token()).status_code == 200
            for _ in range(3):
                assert device.post("/heartbeat", heartbeat()).status_code == 200
            assert read_counts(counts) == expected
        finally:
            server.stop()


def test_a_report_s_device_writes_in_fewer_statements_keep_their_meaning(server: ServerProcess) -> None:
    """The device row in one UPDATE (identity, audience, empty facts filled in), the status and the users
    as upserts: what each wrote before still holds, on both databases."""
    unprivileged = {**IDENTITY, "manufacturer": None, "model": None, "serial": None, "hardware_uuid": None}
    device = Device(server, identity=unprivileged)
    assert device.enrol(server.token()).status_code == 200
    newer = {**report(status="fail"), "users": ["ana"], "audience": "staff"}
    assert device.post("/reports", newer).status_code == 200
    older = {
        **report(status="pass"),
        "reported_at": (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat(),
        "users": ["ana", "ben"],
        "identity": {**IDENTITY, "hostname": "renamed-lt042"},
    }
    assert device.post("/reports", older).status_code == 200
    engine = create_engine(make_url(server.database_url).set(drivername=_driver(server.database_url)))
    try:
        with engine.connect() as connection:
            row = connection.execute(select(DEVICES).where(DEVICES.c.id == device.device_id)).one()
            status = connection.execute(
                select(DEVICE_STATUS).where(DEVICE_STATUS.c.device_id == device.device_id)
            ).one()
            users = connection.execute(
                select(DEVICE_USERS.c.user).where(DEVICE_USERS.c.device_id == device.device_id)
            ).all()
    finally:
        engine.dispose()
    # Filled in from the service's report, never overwritten; identifying facts checked, then filled.
    assert (row.manufacturer, row.model) == (IDENTITY["manufacturer"], IDENTITY["model"])
    assert (row.serial, row.hardware_uuid) == (IDENTITY["serial"], IDENTITY["hardware_uuid"])
    assert row.hostname == "renamed-lt042"  # what the device says of itself now
    assert row.audience == "staff"  # a report that names no audience leaves it
    assert status.report_id == newer["report_id"] and status.overall == "fail"  # not moved back
    assert sorted(user for (user,) in users) == ["ana", "ben"]


def _driver(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql+psycopg"
