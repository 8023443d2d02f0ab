#!/usr/bin/env python3
"""Fleet simulation against a real server process: sustained signed heartbeats per second, p50/p99 latency.

N devices enrol, each with its own Ed25519 key. Every heartbeat is then signed
ahead of time by its device (unique request ids, current timestamps, realistic
body size) so the load generator, wrk, only sends bytes: the 2-core machine's
CPU goes to the server, as it would in production. Run it for SQLite and for
PostgreSQL:

    .venv/bin/python scripts/bench_server.py --database sqlite
    .venv/bin/python scripts/bench_server.py --database postgresql   # as root: starts a throwaway cluster

Targets on 2 cores, load generator included: >= 1,000 heartbeats/s with p99 <= 100 ms on PostgreSQL,
>= 500/s on SQLite.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import psutil
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contract.wire import API_PREFIX, public_key_text, signed_headers  # noqa: E402
from tests.helpers.servers import ServerProcess, start_postgres  # noqa: E402

WRK_SCRIPT = """
local requests = {}
local count = 0
thread_index = 0
local threads = %(threads)d
local counter = 0

function init(args)
  for line in io.lines("%(file)s") do
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
end

function setup(thread)
  thread:set("thread_index", thread_index)
  thread_index = thread_index + 1
end

function request()
  local index = thread_index + counter * threads + 1
  counter = counter + 1
  if index > count then
    index = ((index - 1) %% count) + 1
  end
  return requests[index]
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


def heartbeat_lines(fleet: list[tuple[str, Ed25519PrivateKey]], count: int) -> list[str]:
    """One signed heartbeat per line: device, timestamp, request id, signature, path, body (tab-separated)."""
    path = f"{API_PREFIX}/heartbeat"
    now = time.time()
    lines = []
    for index in range(count):
        device_id, key = fleet[index % len(fleet)]
        body = json.dumps(
            {
                "heartbeat_id": uuid.uuid4().hex,
                "sent_at": datetime.now(timezone.utc).isoformat(),
                "agent_version": "0.1.0",
                "overall": "pass",
                "requirements_etag": None,
                "dropped": {},
            },
            separators=(",", ":"),
        )
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


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU of the server and its worker processes: a figure that, unlike throughput,
    barely moves when other work shares the machine."""
    root = psutil.Process(pid)
    total = 0.0
    for process in (root, *root.children(recursive=True)):
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
    return {
        "rate": float(rate.group(1)) if rate else 0.0,
        "requests": float(total.group(1)) if total else 0.0,
        "p50": latency_ms("50"),
        "p99": latency_ms("99"),
        "non_2xx": float(non_2xx.group(1)) if non_2xx else 0.0,
        "socket_errors": 1.0 if errors else 0.0,
    }


def run(
    database: str, devices: int, seconds: int, connections: int, workers: int, storage_reports: int = 50
) -> int:
    if shutil.which("wrk") is None:
        print("needs wrk: apt-get install wrk", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        scratch_dir = Path(scratch)
        cluster = None
        if database == "postgresql":
            cluster_iter = start_postgres()
            cluster = next(cluster_iter)
            url = cluster.new_database()
        else:
            url = f"sqlite:///{scratch_dir / 'var' / 'homeroom.db'}"
        server = ServerProcess(url, scratch_dir, workers=workers)
        try:
            server.init()
            server.start()
            began = time.perf_counter()
            fleet = enrol_fleet(server, devices)
            print(f"enrolled {devices} devices in {time.perf_counter() - began:.1f} s", file=sys.stderr)
            needed = int(seconds * 4000) + 10_000  # more unique requests than the server can take in time
            began = time.perf_counter()
            lines = heartbeat_lines(fleet, needed)
            print(f"signed {needed} heartbeats in {time.perf_counter() - began:.1f} s", file=sys.stderr)
            requests_file = scratch_dir / "heartbeats.tsv"
            requests_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
            script = scratch_dir / "heartbeats.lua"
            threads = 2
            script.write_text(WRK_SCRIPT % {"file": requests_file, "threads": threads}, encoding="utf-8")
            assert server.process is not None
            cpu_before = server_cpu_seconds(server.process.pid)
            done = subprocess.run(
                [
                    "wrk",
                    "-t",
                    str(threads),
                    "-c",
                    str(connections),
                    "-d",
                    f"{seconds}s",
                    "--latency",
                    "-s",
                    str(script),
                    f"{server.url}{API_PREFIX}/heartbeat",
                ],
                capture_output=True,
                text=True,
                timeout=seconds + 120,
                check=True,
            )
            figures = parse_wrk(done.stdout)
            figures["cpu_ms"] = (
                1000 * (server_cpu_seconds(server.process.pid) - cpu_before) / max(figures["requests"], 1)
            )

            storage = bytes_per_report(server, storage_reports) if storage_reports else None
        finally:
            server.stop()
            if cluster is not None:
                next(cluster_iter, None)
    target = 1000 if database == "postgresql" else 500
    print(
        f"database: {database}, server workers: {workers}, devices: {devices}, connections: {connections}, "
        f"duration: {seconds} s"
    )
    print(
        f"signed heartbeats: {figures['requests']:.0f} in {seconds} s = {figures['rate']:.0f}/s "
        f"(target >= {target}/s)"
    )
    print(
        f"latency: p50 {figures['p50']:.1f} ms, p99 {figures['p99']:.1f} ms"
        + (" (target p99 <= 100 ms)" if database == "postgresql" else "")
    )
    print(f"server CPU per request: {figures['cpu_ms']:.2f} ms (all server processes, user + system)")
    print(f"non-2xx answers: {figures['non_2xx']:.0f}")
    if storage is not None:
        print_bytes_per_report(storage, storage_reports)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--workers",
        type=int,
        help="server processes (default: 1 for SQLite, whose writes are serial; 2 else)",
    )
    parser.add_argument(
        "--storage-reports",
        type=int,
        default=50,
        help="reports sent to measure bytes stored per report (0: skip)",
    )
    args = parser.parse_args()
    workers = args.workers or (1 if args.database == "sqlite" else 2)
    return run(args.database, args.devices, args.seconds, args.connections, workers, args.storage_reports)


if __name__ == "__main__":
    sys.exit(main())
