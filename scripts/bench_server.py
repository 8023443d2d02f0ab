#!/usr/bin/env python3
"""Homeroom under a signed fleet's load, as ratios to the floor: a bare endpoint on the same machine.

N devices enrol, each with its own Ed25519 key. Every request is then signed ahead of time by its
device (unique request ids, current timestamps) so the load generator, wrk, only sends bytes.
In the same run, with the same uvicorn options and worker count, a bare ASGI app
(`scripts/bench_floor_app.py`: read the body, find the device's key, verify one signature with
the server's own libsodium key type, answer 200) takes the very same requests first: Homeroom's
throughput and p99 are printed as ratios to it, for heartbeats and for full reports (a realistic
laptop: six results with evidence, a few hundred packages), at each connection count. Ratios from
one run are what count on a shared machine; absolute figures move with whatever else runs.

The benchmark does not flatter: the server's device-key cache is off (HOMEROOM_DEVICE_CACHE_SECONDS=0)
unless --device-cache says otherwise, because a real laptop heartbeats every 15 minutes and its key
has long left the 30-second cache; the hit rate printed is the one the server counted
(HOMEROOM_BENCH_CACHE_COUNTS, `server.cache_counts`). PostgreSQL runs with Debian's defaults
(fsync on), not the test suite's fsync=off, unless --fsync off. Heartbeats carry the requirements'
and policies' ETags a laptop holds after its first answer, as the agent sends them, so an answer
carries neither unless it changed.

    .venv/bin/python scripts/bench_server.py --quick              # SQLite, both kinds, 32 connections
    .venv/bin/python scripts/bench_server.py --database both --repeat 2   # as root: PostgreSQL too
    .venv/bin/python scripts/bench_server.py --database postgresql --stored 1000000
    .venv/bin/python scripts/bench_server.py --database postgresql --servers 2    # two servers, one database
    .venv/bin/python scripts/bench_server.py --database postgresql --servers 1,2 --behind-nginx  # adding up?
    PY_SPY=/path/to/py-spy .venv/bin/python scripts/bench_server.py --quick --profile /tmp/stacks

Besides throughput, p99 and the server's CPU per request, it prints what barely moves when other
work shares the machine: SQL statements per request (counted by the server itself,
`server.db.statement_counts`) and, on PostgreSQL, the database's own CPU per request.

Targets (issue 14) on 2 cores, load generator included: heartbeats >= 0.5 of the floor on SQLite and
>= 0.35 on PostgreSQL, p99 <= 100 ms at 128 connections; reports >= 0.2 of the floor, p99 <= 250 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import psutil
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contract.wire import API_PREFIX, public_key_text, signed_headers  # noqa: E402
from tests.helpers.nginx import NGINX_ADDRESS, Nginx, nginx_binary  # noqa: E402
from tests.helpers.servers import PostgresCluster, ServerProcess, start_postgres  # noqa: E402

WRK_SCRIPT = """
-- Each wrk thread keeps only its own share of the lines (a report file is hundreds of MB) and
-- sends them in order, once each, then from the start again (the floor checks no request ids).
local requests = {}
count = 0  -- globals, so that done() can read each thread's own
thread_index = 0
local threads = %(threads)d
counter = 0

function init(args)
  local number = 0
  for line in io.lines("%(file)s") do
    if number %% threads == thread_index then
      count = count + 1
      local sep1 = string.find(line, "\\t", 1, true)
      local sep2 = string.find(line, "\\t", sep1 + 1, true)
      local sep3 = string.find(line, "\\t", sep2 + 1, true)
      local sep4 = string.find(line, "\\t", sep3 + 1, true)
      local sep5 = string.find(line, "\\t", sep4 + 1, true)
      local headers = {}
      headers["X-Homeroom-Device"] = string.sub(line, 1, sep1 - 1)
      headers["X-Homeroom-Timestamp"] = string.sub(line, sep1 + 1, sep2 - 1)
      headers["X-Homeroom-Request-Id"] = string.sub(line, sep2 + 1, sep3 - 1)
      headers["X-Homeroom-Signature"] = string.sub(line, sep3 + 1, sep4 - 1)
      headers["Content-Type"] = "application/json"
      local path = string.sub(line, sep4 + 1, sep5 - 1)
      requests[count] = wrk.format("POST", path, headers, string.sub(line, sep5 + 1))
    end
    number = number + 1
  end
end

local threads_started = {}

function setup(thread)
  thread:set("thread_index", thread_index)
  thread_index = thread_index + 1
  table.insert(threads_started, thread)
end

function request()
  local index = (counter %% count) + 1
  counter = counter + 1
  return requests[index]
end

-- How many requests went out a second time (a thread came to the end of its share): to Homeroom
-- each is a replay, answered 409, so the run measured fewer unique requests than it sent.
function done(summary, latency, requests)
  local resent = 0
  for _, thread in ipairs(threads_started) do
    local sent = thread:get("counter")
    local own = thread:get("count")
    if sent > own then
      resent = resent + (sent - own)
    end
  end
  io.write(string.format("Requests sent again: %%d\\n", resent))
end
"""


def enrol_fleet(server: ServerProcess, size: int) -> list[tuple[str, Ed25519PrivateKey]]:
    token = server.token("Benchmark District")

    def enrol(number: int) -> tuple[str, Ed25519PrivateKey]:
        key = Ed25519PrivateKey.generate()
        identity = {
            "serial": f"BENCH{number:07d}",
            "hardware_uuid": str(uuid.uuid4()).upper(),
            "hostname": f"student-lt{number:05d}",
            "manufacturer": "Dell Inc.",
            "model": "Latitude 3440",
            "os": "windows",
            "os_version": "10.0.22631",
            "machine_id": uuid.uuid4().hex,
            "macs": [f"3c:52:82:{number >> 16 & 255:02x}:{number >> 8 & 255:02x}:{number & 255:02x}"],
            "unreadable": {},
        }
        body = {
            "token": token,
            "public_key": public_key_text(key),
            "identity": identity,
            "agent_version": "0.1.0",
        }
        response = requests.post(f"{server.url}{API_PREFIX}/enrol", json=body, timeout=60)
        response.raise_for_status()
        return response.json()["device_id"], key

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(enrol, range(size)))


Fleet = list[tuple[str, Ed25519PrivateKey]]


def heartbeat_body(requirements_etag: str | None = None, policies_etag: str | None = None) -> str:
    """A heartbeat as the agent sends it: with the ETags of the requirements and policies it holds,
    so the answer carries them only when they changed (`agent.service`)."""
    return json.dumps(
        {
            "heartbeat_id": uuid.uuid4().hex,
            "sent_at": datetime.now(timezone.utc).isoformat(),
            "agent_version": "0.1.0",
            "overall": "pass",
            "requirements_etag": requirements_etag,
            "policies_etag": policies_etag,
            "dropped": {},
        },
        separators=(",", ":"),
    )


def learn_etags(server: ServerProcess, fleet: Fleet) -> tuple[str | None, str | None]:
    """The ETags a laptop holds after its first heartbeat: every bench device is in the one school."""
    device_id, key = fleet[0]
    path = f"{API_PREFIX}/heartbeat"
    body = heartbeat_body().encode()
    headers = {
        **signed_headers(key, device_id, "POST", path, body, time.time()),
        "Content-Type": "application/json",
    }
    answer = requests.post(f"{server.url}{path}", data=body, headers=headers, timeout=60)
    answer.raise_for_status()
    held = answer.json()
    return (
        (held.get("requirements") or {}).get("etag"),
        (held.get("policies") or {}).get("etag"),
    )


def laptop_results() -> list[dict[str, object]]:
    """Six results with evidence, as a Windows laptop's service reports them."""
    return [
        {
            "id": "disk_encryption",
            "title": "Disk encryption",
            "status": "pass",
            "summary": "BitLocker is on for C: (XTS-AES 128, fully encrypted)",
            "evidence": {
                "volumes": [
                    {"mount": "C:", "protection": "On", "method": "XtsAes128", "percent": 100.0},
                    {"mount": "D:", "protection": "Off", "method": "None", "percent": 0.0},
                ],
                "tpm": {"present": True, "ready": True, "version": "2.0"},
            },
            "duration_ms": 412,
        },
        {
            "id": "firewall",
            "title": "Firewall",
            "status": "pass",
            "summary": "Windows Defender Firewall is on for the Domain, Private and Public profiles",
            "evidence": {"profiles": {"Domain": "on", "Private": "on", "Public": "on"}, "source": "netsh"},
            "duration_ms": 96,
        },
        {
            "id": "power_on_password",
            "title": "Power-on password",
            "status": "unknown",
            "summary": "the firmware does not say whether a power-on password is set",
            "evidence": {"wmi_class": "Win32_SystemEnclosure", "admin_password_status": 3},
            "remediation": "check the BIOS setup of this model for a power-on password",
            "duration_ms": 230,
        },
        {
            "id": "antivirus",
            "title": "Antivirus",
            "status": "pass",
            "summary": "Microsoft Defender Antivirus is on and its signatures are 1 day old",
            "evidence": {
                "products": [{"name": "Windows Defender", "state": 397568, "up_to_date": True}],
                "signature_age_days": 1,
                "real_time_protection": True,
            },
            "duration_ms": 188,
        },
        {
            "id": "screen_lock",
            "title": "Screen lock",
            "status": "fail",
            "summary": "the screen locks after 30 minutes; the district requires 10 or less",
            "evidence": {"timeout_seconds": 1800, "requires_password": True, "source": "powercfg"},
            "remediation": "Settings > Accounts > Sign-in options: lock after 10 minutes",
            "duration_ms": 71,
        },
        {
            "id": "software",
            "title": "Required and banned software",
            "status": "pass",
            "summary": "all 3 required apps are installed; none of the 12 banned apps is",
            "evidence": {
                "required": ["Google Chrome", "GoGuardian", "Microsoft Teams"],
                "banned_found": [],
                "items_checked": 300,
            },
            "duration_ms": 35,
        },
    ]


class Laptops:
    """What each device sends, signed one request at a time; the parts that never change are made once."""

    def __init__(self, fleet: Fleet, packages: int) -> None:
        self.fleet = fleet
        self.etags: tuple[str | None, str | None] = (None, None)
        software = laptop_inventory()[:packages]
        self.packages = len(software)
        shared = json.dumps(
            {"results": laptop_results(), "software": software, "users": ["student"], "audience": "student"},
            separators=(",", ":"),
        )
        self._report_tail = shared[1:]  # after the report's own fields
        self._identity = [
            json.dumps(
                {"hostname": f"student-lt{number:05d}", "os": "windows", "os_version": "10.0.22631"},
                separators=(",", ":"),
            )
            for number in range(len(fleet))
        ]

    def report_body(self, number: int) -> str:
        head = json.dumps(
            {
                "report_id": uuid.uuid4().hex,
                "reported_at": datetime.now(timezone.utc).isoformat(),
                "agent_version": "0.1.0",
            },
            separators=(",", ":"),
        )
        return f'{head[:-1]},"identity":{self._identity[number % len(self.fleet)]},{self._report_tail}'

    def lines(self, kind: str, count: int, first: int = 0) -> list[str]:
        """`count` signed requests, one per line: device, timestamp, request id, signature, path, body."""
        path = f"{API_PREFIX}/{'heartbeat' if kind == 'heartbeat' else 'reports'}"
        now = time.time()
        lines = []
        for index in range(first, first + count):
            device_id, key = self.fleet[index % len(self.fleet)]
            body = heartbeat_body(*self.etags) if kind == "heartbeat" else self.report_body(index)
            headers = signed_headers(key, device_id, "POST", path, body.encode(), now)
            lines.append(
                "\t".join(
                    (
                        device_id,
                        headers["X-Homeroom-Timestamp"],
                        headers["X-Homeroom-Request-Id"],
                        headers["X-Homeroom-Signature"],
                        path,
                        body,
                    )
                )
            )
        return lines


def server_cpu_seconds(pid: int, children: bool = True) -> float:
    """User + system CPU of the server and its worker processes (`children`): a figure that, unlike
    throughput, barely moves when other work shares the machine."""
    root = psutil.Process(pid)
    total = 0.0
    for process in (root, *(root.children(recursive=True) if children else ())):
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def laptop_inventory() -> list[dict[str, object]]:
    """This machine's dpkg inventory, read as the agent reads it (a real Debian list), else a made-up one."""
    from agent.checks.software_linux import DPKG_QUERY, parse_dpkg

    try:
        listed = subprocess.run(DPKG_QUERY, capture_output=True, text=True, timeout=60, check=True).stdout
        items: list[dict[str, object]] = [dict(item.to_json()) for item in parse_dpkg(listed)]
    except (OSError, subprocess.SubprocessError):
        items = []
    if len(items) < 100:
        items = [
            {
                "name": f"lib{uuid.uuid4().hex[:12]}",
                "version": "1.0-1",
                "publisher": "Debian",
                "source": "dpkg",
            }
            for _ in range(2000)
        ]
    return items


def bytes_per_report(server: ServerProcess, reports: int) -> dict[str, float]:
    """How much the database grows per stored report: `reports` with the laptop's inventory unchanged,
    then `reports` that each upgrade one package (what the history must keep)."""
    from tests.helpers.database_size import stored_bytes

    ((device_id, key),) = enrol_fleet(server, 1)
    software = laptop_inventory()
    path = f"{API_PREFIX}/reports"
    result = {
        "id": "firewall",
        "title": "Firewall",
        "status": "pass",
        "summary": "firewall is on (ufw)",
        "evidence": {"ufw": "on"},
        "duration_ms": 12,
    }

    def send(items: list[dict[str, object]]) -> None:
        body = {
            "report_id": uuid.uuid4().hex,
            "reported_at": datetime.now(timezone.utc).isoformat(),
            "agent_version": "0.1.0",
            "identity": {"hostname": "student-lt00000", "os": "linux", "os_version": "Debian GNU/Linux 12"},
            "results": [result],
            "software": items,
        }
        payload = json.dumps(body).encode()
        headers = signed_headers(key, device_id, "POST", path, payload, time.time())
        headers["Content-Type"] = "application/json"
        requests.post(f"{server.url}{path}", data=payload, headers=headers, timeout=60).raise_for_status()

    send(software)
    before = stored_bytes(server.database_url)
    for _ in range(reports):
        send(software)
    unchanged = stored_bytes(server.database_url)
    for number in range(reports):
        upgraded = dict(software[number % len(software)])
        upgraded["version"] = f"{upgraded['version']}+bench{number}"
        software[number % len(software)] = upgraded
        send(software)
    changed = stored_bytes(server.database_url)
    return {
        "items": len(software),
        "list_bytes": len(json.dumps(software)),
        "unchanged": (unchanged - before) / reports,
        "one_upgrade": (changed - unchanged) / reports,
    }


def print_bytes_per_report(figures: dict[str, float], reports: int) -> None:
    print(
        f"bytes stored per report: {figures['unchanged']:.0f} with the inventory unchanged, "
        f"{figures['one_upgrade']:.0f} with one package upgraded ({reports} reports each; the inventory is "
        f"{figures['items']:.0f} items, {figures['list_bytes'] / 1024:.0f} KB as sent)"
    )


def parse_wrk(output: str) -> dict[str, float]:
    def latency_ms(label: str) -> float:
        match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)", output, re.M)
        if not match:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors:.*", output)
    resent = re.search(r"Requests sent again:\s+(\d+)", output)
    return {
        "resent": float(resent.group(1)) if resent else 0.0,
        "rate": float(rate.group(1)) if rate else 0.0,
        "requests": float(total.group(1)) if total else 0.0,
        "p50": latency_ms("50"),
        "p99": latency_ms("99"),
        "non_2xx": float(non_2xx.group(1)) if non_2xx else 0.0,
        "socket_errors": 1.0 if errors else 0.0,
    }


KINDS = ("heartbeat", "report")
# Unique signed requests to make per second of a Homeroom run: more than it can take in time (a
# request sent twice is a replay, answered 409 and counted as non-2xx). The floor reuses them.
CEILING_PER_SECOND = {"heartbeat": 8000, "report": 2500}


def peak_rss_bytes(pid: int) -> int:
    """The most resident memory each server process ever held (VmHWM), summed over its processes."""
    total = 0
    root = psutil.Process(pid)
    for process in (root, *root.children(recursive=True)):
        try:
            status = Path(f"/proc/{process.pid}/status").read_text()
        except OSError:
            continue
        found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
        total += int(found.group(1)) * 1024 if found else 0
    return total


FLOOR_LIBRARIES = {"sodium": "libsodium (PyNaCl), as the server does", "openssl": "OpenSSL (cryptography)"}


class FloorProcess:
    """scripts/bench_floor_app.py on loopback: the same uvicorn options and worker count as Homeroom."""

    def __init__(self, keys: Path, workers: int, log: Path, library: str = "sodium") -> None:
        from tests.helpers.servers import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {**os.environ, "BENCH_FLOOR_KEYS": str(keys), "BENCH_FLOOR_LIBRARY": library}
        with open(log, "ab") as output:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    str(ROOT / "scripts" / "bench_floor_app.py"),
                    "--port",
                    str(self.port),
                    "--workers",
                    str(workers),
                ],
                cwd=ROOT,
                env=environment,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the floor app exited: see {log}")
            try:
                requests.get(self.url, timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError(f"the floor app did not answer: see {log}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


def load(
    url: str,
    pid: int,
    script: Path,
    connections: int,
    seconds: int,
    path: str,
    profile: Path | None = None,
    database_pid: int | None = None,
    also: tuple[int, ...] = (),
    front_pid: int | None = None,
) -> dict[str, float]:
    """wrk against `url` for `seconds`: throughput, latency, non-2xx, and the server's CPU per request
    (over `pid` and the processes `also`, with their workers; nginx's, `front_pid`, apart).
    `profile`: py-spy samples the server `pid` (and its workers) meanwhile, its raw stacks written there."""
    cpu_before = sum(server_cpu_seconds(each) for each in (pid, *also))
    database_before = server_cpu_seconds(database_pid) if database_pid else 0.0
    front_before = server_cpu_seconds(front_pid) if front_pid else 0.0
    spy = None
    if profile is not None:
        spy = subprocess.Popen(
            [
                PY_SPY,
                "record",
                "--pid",
                str(pid),
                "--subprocesses",
                "--nonblocking",
                "--gil",
                "--format",
                "raw",
                "--rate",
                "250",
                "--duration",
                str(seconds),
                "--output",
                str(profile),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    done = subprocess.run(
        [
            "wrk",
            "-t",
            str(WRK_THREADS),
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(script),
            f"{url}{path}",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 300,
        check=True,
    )
    if spy is not None:
        spy.wait(60)
    figures = parse_wrk(done.stdout)
    cpu = sum(server_cpu_seconds(each) for each in (pid, *also)) - cpu_before
    figures["cpu_ms"] = 1000 * cpu / max(figures["requests"], 1)
    figures["front_cpu_ms"] = (
        1000 * (server_cpu_seconds(front_pid) - front_before) / max(figures["requests"], 1)
        if front_pid
        else float("nan")
    )
    figures["database_cpu_ms"] = (
        1000 * (server_cpu_seconds(database_pid) - database_before) / max(figures["requests"], 1)
        if database_pid
        else float("nan")
    )
    return figures


def load_servers(
    servers: list[ServerProcess],
    scripts: list[Path],
    connections: int,
    seconds: int,
    path: str,
    profile: Path | None,
    database_pid: int | None,
    front: Nginx | None = None,
) -> dict[str, float]:
    """`load` on every server at once, each with its own requests and its share of the connections:
    throughput and requests add up, p99 is the worst server's, CPU per request is over all of them.
    With a `front` (nginx before all the servers) one load goes to it, with the first requests."""
    if front is not None or len(servers) == 1:
        pids = [each.process.pid for each in servers if each.process is not None]
        assert len(pids) == len(servers)
        return load(
            front.url if front is not None else servers[0].url,
            pids[0],
            scripts[0],
            connections,
            seconds,
            path,
            profile,
            database_pid,
            also=tuple(pids[1:]),
            front_pid=front.process.pid if front is not None and front.process is not None else None,
        )
    database_before = server_cpu_seconds(database_pid) if database_pid else 0.0
    share = max(connections // len(servers), WRK_THREADS)
    with ThreadPoolExecutor(len(servers)) as pool:
        each = list(
            pool.map(
                lambda pair: load(
                    pair[0].url,
                    pair[0].process.pid,
                    pair[1],
                    share,
                    seconds,
                    path,
                    profile.with_name(f"{profile.stem}-{pair[0].port}.txt") if profile else None,
                ),
                zip(servers, scripts, strict=True),
            )
        )
    requests_sent = sum(figures["requests"] for figures in each)
    return {
        "rate": sum(figures["rate"] for figures in each),
        "requests": requests_sent,
        "p50": max(figures["p50"] for figures in each),
        "p99": max(figures["p99"] for figures in each),
        "non_2xx": sum(figures["non_2xx"] for figures in each),
        "resent": sum(figures["resent"] for figures in each),
        "socket_errors": max(figures["socket_errors"] for figures in each),
        "cpu_ms": sum(figures["cpu_ms"] * figures["requests"] for figures in each) / max(requests_sent, 1),
        "database_cpu_ms": (
            1000 * (server_cpu_seconds(database_pid) - database_before) / max(requests_sent, 1)
            if database_pid
            else float("nan")
        ),
    }


WRK_THREADS = 2
PY_SPY = os.environ.get("PY_SPY") or shutil.which("py-spy") or "py-spy"


def write_requests(folder: Path, name: str, lines: list[str]) -> Path:
    requests_file = folder / f"{name}.tsv"
    requests_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    script = folder / f"{name}.lua"
    script.write_text(WRK_SCRIPT % {"file": requests_file, "threads": WRK_THREADS}, encoding="utf-8")
    return script


def warm_inventories(server: ServerProcess, laptops: Laptops) -> None:
    """One report per device first: a laptop's first report stores its whole inventory, every later one
    (what a fleet sends all day) only compares it. The measured reports are the later kind."""
    lines = laptops.lines("report", len(laptops.fleet))

    def send(line: str) -> None:
        device_id, timestamp, request_id, signature, path, body = line.split("\t", 5)
        headers = {
            "X-Homeroom-Device": device_id,
            "X-Homeroom-Timestamp": timestamp,
            "X-Homeroom-Request-Id": request_id,
            "X-Homeroom-Signature": signature,
            "Content-Type": "application/json",
        }
        for _ in range(20):
            answer = requests.post(f"{server.url}{path}", data=body.encode(), headers=headers, timeout=60)
            if answer.status_code != 503:
                break
            time.sleep(0.5)
        answer.raise_for_status()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, lines))


def bulk_load_reports(url: str, fleet: Fleet, count: int, laptops: Laptops) -> float:
    """`count` stored reports, spread over the fleet and the past year, loaded the fast way (COPY on
    PostgreSQL, one executemany transaction on SQLite): what a server that has run for a while holds.
    Returns the seconds it took."""
    began = time.perf_counter()
    body = json.loads(laptops.report_body(0))
    body.pop("software")
    body["software_items"] = laptops.packages
    stored = json.dumps(body, separators=(",", ":"))
    overall = "fail"
    start = datetime.now(timezone.utc).timestamp() - 365 * 86400
    step = 365 * 86400 / max(count, 1)

    on_sqlite = url.startswith("sqlite:///")

    def rows(first: int, last: int) -> Iterator[tuple[str, str, str, str, str, str]]:
        for number in range(first, last):
            when = datetime.fromtimestamp(start + number * step, timezone.utc)
            # As SQLAlchemy writes a datetime to SQLite (so the server reads these back), else ISO 8601.
            moment = when.strftime("%Y-%m-%d %H:%M:%S.%f") if on_sqlite else when.isoformat()
            yield (uuid.uuid4().hex, fleet[number % len(fleet)][0], moment, moment, overall, stored)

    if on_sqlite:
        import sqlite3

        database = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            database.execute("BEGIN IMMEDIATE")
            for first in range(0, count, 100_000):
                database.executemany(
                    "INSERT INTO reports (report_id, device_id, reported_at, received_at, overall, body) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    rows(first, min(count, first + 100_000)),
                )
            database.execute("COMMIT")
        finally:
            database.close()
    else:
        import psycopg

        with psycopg.connect(url) as postgres, postgres.cursor() as cursor:
            with cursor.copy(
                "COPY reports (report_id, device_id, reported_at, received_at, overall, body) FROM STDIN"
            ) as copy:
                for row in rows(0, count):
                    copy.write_row(row)
            cursor.execute("ANALYZE reports")
    return time.perf_counter() - began


@dataclass
class Measured:
    database: str
    kind: str
    connections: int
    run: int
    floor: dict[str, float]
    homeroom: dict[str, float]
    hit_rate: float
    servers: int = 1


@dataclass
class Site:
    """The server processes of one configuration, the floor beside them, and nginx before each if asked."""

    servers: list[ServerProcess]
    floor: FloorProcess
    front: Nginx | None
    floor_front: Nginx | None

    def floor_url(self) -> str:
        return self.floor_front.url if self.floor_front else self.floor.url

    def stop(self, keep: ServerProcess) -> None:
        """Everything but `keep` (the first server, which holds the fleet and goes on to the next)."""
        for front in (self.front, self.floor_front):
            if front is not None:
                front.stop()
        self.floor.stop()
        for each in self.servers:
            if each is not keep:
                each.stop()


def start_site(
    server: ServerProcess, count: int, workers: int, keys: Path, run_dir: Path, args: argparse.Namespace
) -> Site:
    """`count` server processes (`server` and count - 1 more on its database), the floor with as many
    worker processes in all, and with --behind-nginx an nginx before each: TLS, the district's proxy
    snippet (installer/server/homeroom-proxy.conf), a worker a core, 32 idle connections kept."""
    servers = [server]
    site: Site | None = None
    try:
        for _ in range(count - 1):
            extra = ServerProcess(server.database_url, run_dir, workers=workers, serve_args=server.serve_args)
            servers.append(extra)
            extra.start()
        floor = FloorProcess(keys, workers * count, run_dir / "floor.log", args.floor_library)
        site = Site(servers, floor, None, None)
        if args.behind_nginx:

            def nginx_before(name: str, upstreams: list[int]) -> Nginx:
                return Nginx(run_dir / f"nginx-{name}-{count}", upstreams, "auto", 4096, keepalive=32)

            # Both kept in the site before either starts, so a failed start still stops them.
            site.front = nginx_before("front", [each.port for each in servers])
            site.floor_front = nginx_before("floor", [floor.port])
            site.front.start()
            site.floor_front.start()
        return site
    except BaseException:
        if site is not None:
            site.stop(keep=server)
        else:
            for each in servers[1:]:
                each.stop()
        raise


def measure(
    database: str,
    args: argparse.Namespace,
    scratch_dir: Path,
    results: list[Measured],
) -> dict[str, float]:
    """Enrols a fleet, starts Homeroom and the floor, and loads both with the same requests for each
    server count, kind, connection count and repeat. Returns the run-wide figures (peak RSS, setup times)."""
    from server.cache_counts import COUNTS_VARIABLE, read_counts
    from server.db.statement_counts import STATEMENT_COUNTS_VARIABLE, read_statement_counts
    from server.settings import DEVICE_CACHE_VARIABLE

    workers = args.workers or (1 if database == "sqlite" else 2)
    run_dir = scratch_dir / database
    run_dir.mkdir()
    cluster_iter: Iterator[PostgresCluster] | None = None
    database_pid: int | None = None
    if database == "postgresql":
        cluster_iter = start_postgres(fsync=args.fsync == "on")
        cluster = next(cluster_iter)
        url = cluster.new_database()
        # The postmaster: its children are the backends, whose CPU is the database's share.
        database_pid = int((cluster.datadir / "postmaster.pid").read_text().split()[0])
    else:
        url = f"sqlite:///{run_dir / 'var' / 'homeroom.db'}"
    counts_dir = run_dir / "cache-counts"
    os.environ[DEVICE_CACHE_VARIABLE] = str(args.device_cache)
    os.environ[COUNTS_VARIABLE] = str(counts_dir)
    statements_dir = run_dir / "statement-counts"
    os.environ[STATEMENT_COUNTS_VARIABLE] = str(statements_dir)
    # Behind nginx each server believes X-Forwarded-For from nginx's address only, as a district's does.
    serve_args = ("--trusted-proxy", NGINX_ADDRESS) if args.behind_nginx else ()
    server = ServerProcess(url, run_dir, workers=workers, serve_args=serve_args)
    overall: dict[str, float] = {"workers": workers, "servers": max(args.servers)}
    site: Site | None = None
    try:
        server.init()
        server.start()
        began = time.perf_counter()
        fleet = enrol_fleet(server, args.devices)
        log(f"{database}: enrolled {args.devices} devices in {time.perf_counter() - began:.1f} s")
        laptops = Laptops(fleet, args.packages)
        laptops.etags = learn_etags(server, fleet)
        log(f"{database}: heartbeats carry ETags {laptops.etags}")
        overall["packages"] = laptops.packages
        overall["report_bytes"] = len(laptops.report_body(0))
        if args.stored:
            seconds = bulk_load_reports(url, fleet, args.stored, laptops)
            log(f"{database}: loaded {args.stored} stored reports in {seconds:.0f} s")
        keys = run_dir / "keys.tsv"
        keys.write_text("".join(f"{device_id}\t{public_key_text(key)}\n" for device_id, key in fleet))
        assert server.process is not None
        made = 0
        warmed = False
        for count in args.servers:
            site = start_site(server, count, workers, keys, run_dir, args)
            if count > 1 or args.behind_nginx:
                log(
                    f"{database}: {count} server(s) of {workers} worker(s)"
                    + (f", behind nginx at {site.front.url}" if site.front else "")
                )
            for kind in args.kinds:
                if kind == "report" and not warmed:
                    began = time.perf_counter()
                    warm_inventories(server, laptops)
                    warmed = True
                    took = time.perf_counter() - began
                    log(f"{database}: first report of every device stored in {took:.1f} s")
                path = f"{API_PREFIX}/{'heartbeat' if kind == 'heartbeat' else 'reports'}"
                for connections in args.connections:
                    for number in range(1, args.repeat + 1):
                        want = args.seconds * CEILING_PER_SECOND[kind] + 2000
                        lines = laptops.lines(kind, want, first=made)
                        made += want
                        label = f"{kind}-{connections}-{number}-{count}"
                        script = write_requests(run_dir, label, lines)
                        # Each further server gets requests of its own (the same ones would be
                        # replays); behind nginx, which shares the requests out, one set is enough.
                        shares = [script]
                        for other in range(1, 1 if site.front else count):
                            own = laptops.lines(kind, want, first=made)
                            made += want
                            shares.append(write_requests(run_dir, f"{label}-{other}", own))
                        del lines
                        floor_front_pid = (
                            site.floor_front.process.pid
                            if site.floor_front and site.floor_front.process
                            else None
                        )
                        floor_figures = load(
                            site.floor_url(),
                            site.floor.process.pid,
                            script,
                            connections,
                            args.seconds,
                            path,
                            front_pid=floor_front_pid,
                        )
                        hits_before, misses_before = read_counts(counts_dir)
                        profile = args.profile / f"{database}-{label}.txt" if args.profile else None
                        statements_before = read_statement_counts(statements_dir)
                        figures = load_servers(
                            site.servers,
                            shares,
                            connections,
                            args.seconds,
                            path,
                            profile,
                            database_pid,
                            site.front,
                        )
                        hits, misses = read_counts(counts_dir)
                        figures["statements"] = (
                            read_statement_counts(statements_dir) - statements_before
                        ) / max(figures["requests"], 1)
                        looked = (hits - hits_before) + (misses - misses_before)
                        results.append(
                            Measured(
                                database,
                                kind,
                                connections,
                                number,
                                floor_figures,
                                figures,
                                (hits - hits_before) / looked if looked else float("nan"),
                                count,
                            )
                        )
                        print_row(results[-1], flush=True)
                        for share in shares:
                            share.with_suffix(".tsv").unlink()
            overall["homeroom_rss"] = max(
                overall.get("homeroom_rss", 0),
                sum(peak_rss_bytes(each.process.pid) for each in site.servers if each.process),
            )
            overall["floor_rss"] = max(overall.get("floor_rss", 0), peak_rss_bytes(site.floor.process.pid))
            site.stop(keep=server)
            site = None
        if args.storage_reports:
            storage = bytes_per_report(server, args.storage_reports)
            overall.update({f"storage_{name}": value for name, value in storage.items()})
    finally:
        os.environ.pop(DEVICE_CACHE_VARIABLE, None)
        os.environ.pop(COUNTS_VARIABLE, None)
        os.environ.pop(STATEMENT_COUNTS_VARIABLE, None)
        if site is not None:
            site.stop(keep=server)
        server.stop()
        if cluster_iter is not None:
            next(cluster_iter, None)
    return overall


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


HEADER = (
    f"{'database':<10} {'srv':>3} {'kind':<9} {'conns':>5} {'run':>3} | "
    f"{'floor/s':>8} {'p99 ms':>7} {'CPU ms':>6} | "
    f"{'homeroom/s':>10} {'p99 ms':>7} {'CPU ms':>6} {'DB CPU':>6} {'stmts':>5} {'non-2xx':>7} {'hits':>5} | "
    f"{'÷ floor':>7} {'p99 ×':>6}"
)


def print_row(row: Measured, flush: bool = False) -> None:
    floor, homeroom = row.floor, row.homeroom
    ratio = homeroom["rate"] / floor["rate"] if floor["rate"] else float("nan")
    slower = homeroom["p99"] / floor["p99"] if floor["p99"] else float("nan")
    non_2xx = homeroom["non_2xx"] + (1 if homeroom["socket_errors"] else 0)
    print(
        f"{row.database:<10} {row.servers:>3} {row.kind:<9} {row.connections:>5} {row.run:>3} | "
        f"{floor['rate']:>8.0f} {floor['p99']:>7.1f} {floor['cpu_ms']:>6.2f} | "
        f"{homeroom['rate']:>10.0f} {homeroom['p99']:>7.1f} {homeroom['cpu_ms']:>6.2f} "
        f"{homeroom.get('database_cpu_ms', float('nan')):>6.2f} "
        f"{homeroom.get('statements', float('nan')):>5.2f} "
        f"{non_2xx:>7.0f} "
        f"{row.hit_rate:>5.0%} | {ratio:>7.2f} {slower:>6.1f}",
        flush=flush,
    )


TARGETS = {("heartbeat", "sqlite"): 0.5, ("heartbeat", "postgresql"): 0.35, ("report", "sqlite"): 0.2}
P99_TARGETS = {"heartbeat": 100.0, "report": 250.0}


def print_summary(
    results: list[Measured], overall: dict[str, dict[str, float]], args: argparse.Namespace
) -> None:
    print()
    print(
        f"devices: {args.devices} (device-key cache {args.device_cache:g} s), "
        f"duration: {args.seconds} s per load, "
        f"wrk {WRK_THREADS} threads on the same machine, stored reports before: {args.stored}; "
        f"the floor verifies with {FLOOR_LIBRARIES[args.floor_library]}"
    )
    for database, figures in overall.items():
        extra = f", PostgreSQL fsync {args.fsync}" if database == "postgresql" else ""
        if args.behind_nginx:
            extra += "; Homeroom and the floor each behind nginx (TLS, the district's proxy snippet)"
        counts = " then ".join(str(count) for count in args.servers)
        print(
            f"{database}: {counts} server(s) of {figures['workers']:.0f} worker(s){extra}; "
            f"report body {figures.get('report_bytes', 0) / 1024:.0f} KB "
            f"({figures.get('packages', 0):.0f} packages, six results); peak RSS homeroom "
            f"{figures.get('homeroom_rss', 0) / 2**20:.0f} MB, "
            f"floor {figures.get('floor_rss', 0) / 2**20:.0f} MB"
        )
        if "storage_unchanged" in figures:
            print_bytes_per_report(
                {
                    name.removeprefix("storage_"): value
                    for name, value in figures.items()
                    if name.startswith("storage_")
                },
                args.storage_reports,
            )
    print()
    print(HEADER)
    for row in results:
        print_row(row)
    print_adding_up(results, args.behind_nginx)
    print()
    print(
        "targets (issue 14): ÷ floor >= 0.5 heartbeats on SQLite, 0.35 on PostgreSQL, 0.2 reports; "
        "p99 <= 100 ms heartbeats and <= 250 ms reports at 128 connections; 0 non-2xx"
    )
    for row in results:
        target = TARGETS.get((row.kind, row.database), 0.2)
        ratio = row.homeroom["rate"] / row.floor["rate"] if row.floor["rate"] else 0.0
        misses = []
        if ratio < target:
            misses.append(f"{ratio:.2f} of the floor < {target}")
        if row.connections >= 128 and row.homeroom["p99"] > P99_TARGETS[row.kind]:
            misses.append(f"p99 {row.homeroom['p99']:.0f} ms > {P99_TARGETS[row.kind]:.0f}")
        if row.homeroom["non_2xx"] or row.homeroom["socket_errors"]:
            misses.append("non-2xx answers or socket errors")
        if row.homeroom.get("resent"):
            misses.append(
                f"{row.homeroom['resent']:.0f} requests sent twice, answered 409 as replays: the run "
                "ran out of unique requests (CEILING_PER_SECOND), so its figures are not Homeroom's"
            )
        if misses:
            print(
                f"  missed: {row.database} {row.kind} {row.connections} connections run {row.run}: "
                f"{'; '.join(misses)}"
            )


def adding_up(results: list[Measured]) -> list[tuple[Measured, Measured]]:
    """Each row of more than one server with the row of one server it compares with (same database,
    kind, connections and run)."""
    single = {(row.database, row.kind, row.connections, row.run): row for row in results if row.servers == 1}
    return [
        (single[key], row)
        for row in results
        if row.servers > 1 and (key := (row.database, row.kind, row.connections, row.run)) in single
    ]


def print_adding_up(results: list[Measured], behind_nginx: bool) -> None:
    """Whether throughput adds up with more servers: Homeroom's gain beside the floor's, which is what
    the machine itself gives a bare endpoint with as many more worker processes (on a machine whose
    cores one server already fills, neither can double), and CPU per request, which contention on the
    database (locks, waits, redone batches) would raise."""
    pairs = adding_up(results)
    if not pairs:
        return
    print()
    print(
        "adding servers"
        + (" (through nginx; its own CPU a request in brackets)" if behind_nginx else "")
        + ": N servers ÷ 1, Homeroom beside the floor with as many worker processes"
    )
    for one, more in pairs:
        gain = more.homeroom["rate"] / one.homeroom["rate"] if one.homeroom["rate"] else float("nan")
        floor_gain = more.floor["rate"] / one.floor["rate"] if one.floor["rate"] else float("nan")
        cpu = more.homeroom["cpu_ms"] / one.homeroom["cpu_ms"] if one.homeroom["cpu_ms"] else float("nan")
        front = (
            f" [nginx {one.homeroom['front_cpu_ms']:.2f} → {more.homeroom['front_cpu_ms']:.2f} ms]"
            if behind_nginx
            else ""
        )
        print(
            f"  {more.database} {more.kind} {more.connections} connections run {more.run}: "
            f"{more.servers} servers {more.homeroom['rate']:.0f}/s against 1 server "
            f"{one.homeroom['rate']:.0f}/s = {gain:.2f}× (floor {floor_gain:.2f}×); "
            f"server CPU a request {one.homeroom['cpu_ms']:.2f} → {more.homeroom['cpu_ms']:.2f} ms "
            f"({cpu:.2f}×){front}; non-2xx {more.homeroom['non_2xx']:.0f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument(
        "--kinds", default="heartbeat,report", help="heartbeat, report or both (comma-separated)"
    )
    parser.add_argument("--connections", default="32,128", help="comma-separated connection counts")
    parser.add_argument("--seconds", type=int, default=10, help="length of each load")
    parser.add_argument(
        "--repeat", type=int, default=1, help="loads per configuration (each against the floor)"
    )
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument(
        "--floor-library",
        choices=tuple(FLOOR_LIBRARIES),
        default="sodium",
        help="the floor's Ed25519: libsodium as the server verifies (default), or OpenSSL through "
        "cryptography, the server's library before PyNaCl, to compare with older figures",
    )
    parser.add_argument("--packages", type=int, default=300, help="packages in each report")
    parser.add_argument(
        "--workers",
        type=int,
        help="server processes (default: 1 for SQLite, whose writes are serial; 2 else)",
    )
    parser.add_argument(
        "--fsync", choices=("on", "off"), default="on", help="PostgreSQL fsync (on: Debian's default)"
    )
    parser.add_argument(
        "--device-cache",
        type=float,
        default=0.0,
        help="seconds the server caches device keys (0: off, as a real fleet sees it)",
    )
    parser.add_argument(
        "--servers",
        default="1",
        help="server processes on the one database (PostgreSQL), each with --workers workers and its "
        "share of the connections; several counts (1,2) are measured in turn and compared",
    )
    parser.add_argument(
        "--behind-nginx",
        action="store_true",
        help="Homeroom's servers and the floor each behind Debian's nginx (TLS on loopback, the district's "
        "proxy snippet), as a district runs several servers",
    )
    parser.add_argument("--stored", type=int, default=0, help="stored reports to bulk-load before measuring")
    parser.add_argument(
        "--storage-reports",
        type=int,
        default=0,
        help="reports sent to measure bytes stored per report (0: skip)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="folder for py-spy's raw stacks of the server during each load (py-spy from $PY_SPY or PATH)",
    )
    parser.add_argument("--quick", action="store_true", help="5 s loads, 32 connections, 500 devices")
    args = parser.parse_args()
    args.kinds = [kind.strip() for kind in args.kinds.split(",") if kind.strip()]
    if any(kind not in KINDS for kind in args.kinds):
        parser.error(f"--kinds: choose from {', '.join(KINDS)}")
    args.connections = [int(number) for number in args.connections.split(",")]
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    if args.quick:
        args.seconds, args.connections, args.devices = 5, [32], min(args.devices, 500)
    try:
        args.servers = [int(count) for count in args.servers.split(",")]
    except ValueError:
        parser.error("--servers: comma-separated whole numbers, such as 1,2")
    if any(count < 1 for count in args.servers):
        parser.error("--servers: at least one server")
    if max(args.servers) > 1 and args.database != "postgresql":
        parser.error("--servers: several server processes share one database on PostgreSQL only")
    if args.behind_nginx and nginx_binary() is None:
        print("--behind-nginx needs nginx: apt-get install nginx", file=sys.stderr)
        return 2
    if shutil.which("wrk") is None:
        print("needs wrk: apt-get install wrk", file=sys.stderr)
        return 2
    databases = ("sqlite", "postgresql") if args.database == "both" else (args.database,)
    results: list[Measured] = []
    overall: dict[str, dict[str, float]] = {}
    print(HEADER, flush=True)
    with tempfile.TemporaryDirectory(prefix="homeroom-bench-") as scratch:
        for database in databases:
            overall[database] = measure(database, args, Path(scratch), results)
    print_summary(results, overall, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
