"""Two `homeroom-server serve` processes on one PostgreSQL behind a real nginx terminating TLS.

The deployment docs/deployment.md describes, on loopback: nginx (Debian's) with a self-signed
certificate and the district's own proxy snippet, round-robin over two server processes that
share one database. Real agents enrol and report through it; whichever process answers, a laptop
is known, a published change reaches it, and a revoked token is refused. The client address
nginx passes on is used because nginx is a trusted proxy (it connects from 127.0.0.2); the same
header sent by anyone else (127.0.0.1, straight to a process) is ignored.

Everything is per worker (ports from the worker's band, nginx's files in the test's folder), so
nothing here is machine-wide. The second laptop is a second real agent in a private mount
namespace with its own /etc/machine-id, so the server sees two machines.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter
from sqlalchemy import func, select

from contract.wire import API_PREFIX, signed_headers
from server.db.engine import make_engine
from server.db.models import AuditEntry
from server.db.tables import REPORTS
from tests.helpers.console import csrf_of
from tests.helpers.need import need
from tests.helpers.nginx import NGINX_ADDRESS, UPSTREAM_HEADER, Nginx, nginx_binary
from tests.helpers.paths import ROOT
from tests.helpers.servers import InitialisedDatabases, PostgresCluster, ServerProcess
from tests.helpers.signed_device import IDENTITY, Device, heartbeat, report

ONE_CHECK = Path(__file__).with_name("one_check_requirements.toml")
# The address the test's "browser" connects to nginx from, and one it pretends to be.
CLIENT_ADDRESS = "127.0.0.5"
FORGED = "203.0.113.77"


@dataclass
class Site:
    nginx: Nginx
    servers: list[ServerProcess]

    @property
    def url(self) -> str:
        return self.nginx.url

    @property
    def upstreams(self) -> set[str]:
        return {f"127.0.0.1:{server.port}" for server in self.servers}

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = self.servers[0].cli(*args)
        assert done.returncode == 0, done.stderr
        return done


@pytest.fixture(scope="module")
def site(
    postgres: PostgresCluster,
    tmp_path_factory: pytest.TempPathFactory,
    initialised_databases: InitialisedDatabases,
) -> Iterator[Site]:
    need(nginx_binary() is not None, "install nginx (apt-get install -y nginx)")
    need(shutil.which("unshare") is not None, "util-linux's unshare is needed for the second laptop")
    folder = tmp_path_factory.mktemp("behind-nginx")
    url = postgres.new_database()
    initialised_databases.copy_into(url, postgres)
    servers = [
        ServerProcess(url, folder / name, serve_args=("--trusted-proxy", NGINX_ADDRESS)) for name in "ab"
    ]
    nginx = Nginx(folder / "nginx", [])
    try:
        for server in servers:
            server.data_dir.mkdir()
            server.start()
        nginx.upstreams = [server.port for server in servers]
        nginx.start()
        yield Site(nginx, servers)
    finally:
        nginx.stop()
        for server in servers:
            server.stop()


@pytest.fixture(autouse=True)
def trust_the_site(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test's own requests trust the site's certificate, as the agents are told to."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(site.nginx.certificate.cert))


class ThroughSite:
    """What signed_device.Device needs of a server: where to send requests."""

    def __init__(self, url: str) -> None:
        self.url = url


def hand_signed_laptop(site: Site, token: str) -> Device:
    identity = dict(IDENTITY, hostname=f"lt-{uuid.uuid4().hex[:6]}", serial=uuid.uuid4().hex[:10])
    identity["hardware_uuid"], identity["machine_id"] = str(uuid.uuid4()), uuid.uuid4().hex
    device = Device(ThroughSite(site.url), identity)  # type: ignore[arg-type]
    assert device.enrol(token).status_code == 200
    return device


def real_agent(
    site: Site, state: Path, machine_id: Path | None, *args: str
) -> subprocess.CompletedProcess[str]:
    """`homeroom-agent ARGS` as a real process trusting the site's certificate; with `machine_id`,
    in a private mount namespace where that file is /etc/machine-id (another laptop)."""
    argv = [sys.executable, "-m", "agent.cli", *args, "--state-dir", str(state)]
    if args[0] == "run":  # until the server's copy arrives: one quick check (the transport is under test)
        argv += ["--requirements", str(ONE_CHECK)]
    if machine_id is not None:
        argv = [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            'mount --bind "$0" /etc/machine-id && exec "$@"',
            str(machine_id),
            *argv,
        ]
    return subprocess.run(
        argv,
        cwd=ROOT,
        env={**os.environ, "REQUESTS_CA_BUNDLE": str(site.nginx.certificate.cert)},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def until_every_process_answered(site: Site, send: Any, attempts: int = 12) -> dict[str, requests.Response]:
    """Sends until each server process has answered at least once; the last answer of each."""
    answered: dict[str, requests.Response] = {}
    for _ in range(attempts):
        response = send()
        answered[response.headers[UPSTREAM_HEADER]] = response
        if set(answered) == site.upstreams:
            return answered
    raise AssertionError(f"only {sorted(answered)} answered of {sorted(site.upstreams)}")


def make_due(state: Path, *fields: str) -> None:
    schedule = json.loads((state / "schedule.json").read_text())
    schedule.update(dict.fromkeys(fields, 0))
    (state / "schedule.json").write_text(json.dumps(schedule))


GROUP = "Behind nginx"


@dataclass
class Laptop:
    state: Path
    machine_id: Path | None  # None: this machine's own /etc/machine-id

    def agent(self, site: Site, *args: str) -> subprocess.CompletedProcess[str]:
        return real_agent(site, self.state, self.machine_id, *args)


@pytest.fixture(scope="module")
def laptops(site: Site, tmp_path_factory: pytest.TempPathFactory) -> list[Laptop]:
    """Two real agents enrolled through nginx, each having sent its first report."""
    folder = tmp_path_factory.mktemp("laptops")
    token = site.cli("token", "create", "--group", GROUP).stdout.strip()
    other_machine = folder / "machine-id"
    other_machine.write_text(uuid.uuid4().hex + "\n")
    enrolled = [Laptop(folder / "first", None), Laptop(folder / "second", other_machine)]
    for laptop in enrolled:
        done = laptop.agent(site, "enroll", "--server", site.url, "--token", token)
        assert done.returncode == 0, (laptop, done.stdout, done.stderr)
        ran = laptop.agent(site, "run", "--once")
        assert ran.returncode == 0 and "still queued: 0" in ran.stdout, (laptop, ran.stdout, ran.stderr)
    return enrolled


def test_real_agents_enrol_and_report_through_nginx_whichever_process_answers(
    site: Site, laptops: list[Laptop]
) -> None:
    ids = {json.loads((laptop.state / "enrolment.json").read_text())["device_id"] for laptop in laptops}
    assert len(ids) == 2, "two laptops, two records"
    devices = json.loads(site.cli("devices", "--json").stdout)["devices"]
    assert {d["device_id"] for d in devices if d["group"] == GROUP and d["checks"]} == ids

    # A laptop enrolled through one process is known to the other: its signed requests are
    # accepted whichever answers.
    device = hand_signed_laptop(site, site.cli("token", "create", "--group", GROUP).stdout.strip())
    assert device.post("/reports", report()).status_code == 200
    answered = until_every_process_answered(site, lambda: device.post("/heartbeat", heartbeat()))
    assert {response.status_code for response in answered.values()} == {200}


def test_a_full_report_passes_nginx_in_memory_not_through_a_temporary_file(site: Site) -> None:
    """A report the size a laptop sends (here 1,200 packages, about 150 KB) is held in nginx's
    memory on its way: the proxy snippet's `client_body_buffer_size`. With nginx's default each one
    went through a temporary file (logged at warn), and reports at 32 connections fell to a sixth."""
    device = hand_signed_laptop(site, site.cli("token", "create", "--group", GROUP).stdout.strip())
    full = report()
    full["software"] = [
        {
            "name": f"package-{number:04d}",
            "version": f"1.{number}.0-1",
            "publisher": "Debian",
            "source": "dpkg",
        }
        for number in range(1200)
    ]
    assert 100_000 < len(json.dumps(full)) < 256 * 1024
    log = site.nginx.folder / "error.log"
    before = log.read_text(errors="replace") if log.exists() else ""
    assert device.post("/reports", full).status_code == 200
    written = (log.read_text(errors="replace") if log.exists() else "")[len(before) :]
    assert "buffered to a temporary file" not in written, written


def test_a_requirements_publish_reaches_every_laptop_through_either_process(
    site: Site, laptops: list[Laptop], tmp_path: Path
) -> None:
    device = hand_signed_laptop(site, site.cli("token", "create", "--group", GROUP).stdout.strip())
    # Both processes have the group's requirements cached (each heartbeat asks for nothing new).
    first = until_every_process_answered(site, lambda: device.post("/heartbeat", heartbeat()))
    etag = next(iter(first.values())).json()["requirements"]["etag"]

    stricter = tmp_path / "publish.toml"
    stricter.write_text("[screen_lock]\nmax_idle_minutes = 7\n", encoding="utf-8")
    site.cli("requirements", "publish", str(stricter), "--group", GROUP)
    # Each process's cache lasts a few seconds (Settings.requirements_cache_seconds): within that,
    # every process answers with the new copy.
    seen_new: set[str] = set()
    deadline = time.monotonic() + 15
    while seen_new != site.upstreams and time.monotonic() < deadline:
        answer = device.post("/heartbeat", heartbeat(etag))
        assert answer.status_code == 200, answer.text
        if (answer.json().get("requirements") or {}).get("content") == stricter.read_text():
            seen_new.add(answer.headers[UPSTREAM_HEADER])
        time.sleep(0.2)
    assert seen_new == site.upstreams, f"the new requirements came only from {sorted(seen_new)}"

    # And each real laptop, at its next heartbeat through nginx, applies them.
    for laptop in laptops:
        make_due(laptop.state, "last_heartbeat_at")
        ran = laptop.agent(site, "run", "--once")
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert (laptop.state / "server-requirements.toml").read_text() == stricter.read_text()


def sent_to_each_at_once(
    servers: list[ServerProcess], path: str, body: bytes, headers: dict[str, str]
) -> list[int]:
    """The same request to every server process, released together: each answer's status."""
    gate = threading.Barrier(len(servers))

    def send(server: ServerProcess) -> int:
        gate.wait(10)
        return requests.post(f"{server.url}{path}", data=body, headers=headers, timeout=30).status_code

    with ThreadPoolExecutor(len(servers)) as pool:
        return list(pool.map(send, servers))


def test_one_signed_request_sent_to_both_processes_at_once_is_kept_once(site: Site) -> None:
    """Replay protection across processes: the very same bytes (one request id), sent straight to
    each server process at the same moment, are answered 200 once and 409 once, and the report is
    stored once. Each process batches its requests and records their ids in its own transaction;
    the database's unique request id decides between them."""
    device = hand_signed_laptop(site, site.cli("token", "create", "--group", GROUP).stdout.strip())
    for _ in range(5):
        body = json.dumps(report()).encode()
        path = f"{API_PREFIX}/reports"
        headers = {
            **signed_headers(device.key, device.device_id, "POST", path, body, time.time()),
            "Content-Type": "application/json",
        }
        statuses = sorted(sent_to_each_at_once(site.servers, path, body, headers))
        assert statuses == [200, 409], statuses
    engine = make_engine(site.servers[0].database_url)
    try:
        with engine.connect() as connection:
            stored = connection.execute(
                select(func.count()).select_from(REPORTS).where(REPORTS.c.device_id == device.device_id)
            ).scalar_one()
    finally:
        engine.dispose()
    assert stored == 5


def test_a_revoked_token_is_refused_by_both_processes(site: Site) -> None:
    token = site.cli("token", "create", "--group", "Revoked").stdout.strip()
    hand_signed_laptop(site, token)  # it works until IT revokes it
    site.cli("token", "revoke", token)

    def enrol() -> requests.Response:
        identity = dict(IDENTITY, serial=uuid.uuid4().hex[:10], hardware_uuid=str(uuid.uuid4()))
        identity["machine_id"] = uuid.uuid4().hex
        return Device(ThroughSite(site.url), identity).enrol(token)  # type: ignore[arg-type]

    answered = until_every_process_answered(site, enrol)
    for upstream, response in answered.items():
        assert response.status_code == 403, (upstream, response.text)
        assert "revoked" in response.json()["detail"]


class FromAddress(HTTPAdapter):
    """Connections from a chosen loopback address (a browser elsewhere on the network)."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def failed_sign_in(base: str, source: str, headers: dict[str, str]) -> tuple[requests.Response, str]:
    """A wrong password for a made-up e-mail (so its audit entry is this attempt's alone)."""
    browser = requests.Session()
    browser.mount(base, FromAddress(source))
    browser.headers.update(headers)
    form = browser.get(f"{base}/sign-in", timeout=30)
    assert form.status_code == 200, form.text
    email = f"nobody-{uuid.uuid4().hex[:8]}@example.org"
    answer = browser.post(
        f"{base}/sign-in",
        data={"email": email, "password": "wrong", "csrf_token": csrf_of(form.text), "next": "/"},
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 401, answer.text
    return answer, email


def recorded_address(site: Site, email: str) -> str | None:
    engine = make_engine(site.servers[0].database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(AuditEntry.address, AuditEntry.detail).where(
                    AuditEntry.action == "console.sign_in_failed"
                )
            ).all()
    finally:
        engine.dispose()
    (address,) = [row.address for row in rows if row.detail.get("email") == email]
    return str(address) if address is not None else None


def test_the_client_address_nginx_passes_on_is_used_and_a_forged_one_is_not(site: Site) -> None:
    # A browser names the page its form came from (Origin): through nginx the console must see the
    # site's own address, or it refuses the form as cross-site.
    forged = {"X-Forwarded-For": FORGED, "X-Forwarded-Proto": "https", "Origin": site.url}
    # Through nginx (trusted): the browser's own address, whatever the browser claims to be; tried
    # until each process has answered.
    seen: dict[str, str | None] = {}
    for attempt in range(12):
        if attempt % 2:  # each attempt is two requests (the form, then the post): shift the rotation
            requests.get(f"{site.url}/healthz", timeout=30)
        answer, email = failed_sign_in(site.url, CLIENT_ADDRESS, forged)
        seen[answer.headers[UPSTREAM_HEADER]] = recorded_address(site, email)
        assert "strict-transport-security" in answer.headers, "nginx says it came over https: HSTS"
        if set(seen) == site.upstreams:
            break
    assert seen == dict.fromkeys(site.upstreams, CLIENT_ADDRESS), seen

    # Straight to a server process from an untrusted peer: the forged headers count for nothing.
    for server in site.servers:
        direct, email = failed_sign_in(server.url, "127.0.0.1", {**forged, "Origin": server.url})
        assert recorded_address(site, email) == "127.0.0.1"
        assert "strict-transport-security" not in direct.headers, "plain http stays plain http"


def test_a_process_that_trusts_no_proxy_records_nginx_itself(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The list is what decides: the same request through nginx to a process trusting nobody."""
    untrusting = ServerProcess(
        site.servers[0].database_url, tmp_path / "untrusting", serve_args=("--trusted-proxy", "none")
    )
    untrusting.data_dir.mkdir()
    untrusting.start()
    alone = Nginx(tmp_path / "nginx", [untrusting.port])
    try:
        alone.start()
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(alone.certificate.cert))
        _answer, email = failed_sign_in(alone.url, CLIENT_ADDRESS, {"X-Forwarded-For": FORGED})
        assert recorded_address(site, email) == NGINX_ADDRESS
    finally:
        alone.stop()
        untrusting.stop()
