#!/usr/bin/env python3
"""The database side of heartbeats and reports alone: CPU per request, in this process, on a loaded
machine too.

`scripts/bench_server.py` measures the whole server over HTTP, where the HTTP stack is most of a
heartbeat's time and throughput moves with whatever else runs. This drives the same code the
server's database threads run (`server.group_commit.GroupCommitter`, the authenticator and its
batched device reads, `fleet.ingest.record_heartbeat` / `store_report`) with pre-signed requests,
in batches as a loaded server makes them (all queued behind one held database thread), and prints
the CPU this process spent per request and, on PostgreSQL (fsync on), the CPU its backends spent:
figures that barely move with the machine's load, to compare two trees of the code in turn.

    .venv/bin/python scripts/bench_database.py --kind report --database postgresql
    .venv/bin/python /other/tree/scripts/bench_database.py ...   # the same on another tree
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, insert

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import bench_server  # noqa: E402

from contract.wire import API_PREFIX, public_key_text, signed_headers  # noqa: E402
from server.api.bodies import parse  # noqa: E402
from server.api.schemas import HeartbeatIn  # noqa: E402
from server.auth import DeviceAuthenticator, DeviceReader, SignedRequest  # noqa: E402
from server.db.engine import make_engine  # noqa: E402
from server.db.tables import DEVICES  # noqa: E402
from server.fleet.ingest import record_heartbeat, store_report  # noqa: E402
from server.fleet.published import GroupCache, load_policies, load_requirements  # noqa: E402
from server.group_commit import GroupCommitter  # noqa: E402
from tests.helpers.servers import PostgresCluster, ServerProcess, start_postgres  # noqa: E402


class Fleet:
    """Devices inserted straight into an initialised database, and their requests signed ahead."""

    def __init__(self, url: str, devices: int, kind: str) -> None:
        self.kind = kind
        self.engine = make_engine(url, for_server=True)
        self.keys = [
            (f"bench-{n:05}-{uuid.uuid4().hex[:6]}", Ed25519PrivateKey.generate()) for n in range(devices)
        ]
        with self.engine.begin() as connection:
            connection.execute(
                insert(DEVICES),
                [
                    {
                        "id": device_id,
                        "group_name": "Benchmark District",
                        "hostname": f"student-lt{number:05d}",
                        "os": "windows",
                        "os_version": "10.0.22631",
                        "macs": [],
                        "identity_unreadable": {},
                        "public_key": public_key_text(key),
                        "agent_version": "0.1.0",
                        "enrolled_at": datetime.now(timezone.utc),
                    }
                    for number, (device_id, key) in enumerate(self.keys)
                ],
            )
        self.reader = DeviceReader(self.engine)
        threads = 1 if url.startswith("sqlite") else 2
        self.committer = GroupCommitter(self.engine, threads=threads, prepare_scope=self.reader.batch)
        self.authenticator = DeviceAuthenticator(300, 0)  # no key cache: as a real fleet
        self.requirements = GroupCache(60, load_requirements)
        self.policies = GroupCache(60, load_policies)
        with self.engine.connect() as connection:  # what a laptop holds after its first answer
            held = (
                load_requirements(connection, "Benchmark District"),
                load_policies(connection, "Benchmark District"),
            )
        self.etags = tuple(None if document is None else document.etag for document in held)
        self.laptops = bench_server.Laptops(self.keys, 300)
        self.path = f"{API_PREFIX}/{'heartbeat' if kind == 'heartbeat' else 'reports'}"

    def signed(self, number: int) -> SignedRequest:
        device_id, key = self.keys[number % len(self.keys)]
        body = (
            bench_server.heartbeat_body(*self.etags)
            if self.kind == "heartbeat"
            else self.laptops.report_body(number)
        )
        raw = body.encode()
        headers = signed_headers(key, device_id, "POST", self.path, raw, time.time())
        return SignedRequest.from_headers(headers, "POST", self.path, raw)

    async def _submit(self, signed: SignedRequest) -> str:
        def prepare() -> tuple[Any, Any]:
            device = self.authenticator.verify(signed, self.reader)
            return device, parse(HeartbeatIn, signed.body) if self.kind == "heartbeat" else signed.body

        def work(connection: Connection, prepared: tuple[Any, Any]) -> Any:
            device, body = prepared
            self.authenticator.apply(connection, device)
            if self.kind == "heartbeat":
                return record_heartbeat(connection, device, body, self.requirements, self.policies)
            return store_report(connection, device, body, timedelta(minutes=5), self.requirements)

        return await self.committer.run(
            prepare,
            work,
            lambda answer: answer.model_dump_json(),
            signed.device_id,
            self.authenticator.once_key(signed),
            heavy=self.kind == "report",
        )

    def send(self, requests: list[SignedRequest]) -> None:
        """All of `requests` queued while the database thread is held, as a busy server queues them."""

        async def main() -> None:
            gate = threading.Event()
            held = asyncio.ensure_future(self.committer.call(lambda: gate.wait(30)))
            await asyncio.sleep(0.01)
            jobs = [asyncio.ensure_future(self._submit(signed)) for signed in requests]
            await asyncio.sleep(0.01)
            gate.set()
            await held
            answers = await asyncio.gather(*jobs, return_exceptions=True)
            failed = [answer for answer in answers if isinstance(answer, BaseException)]
            if failed:
                raise RuntimeError(f"{len(failed)} requests failed, the first: {failed[0]!r}")

        asyncio.run(main())


def database(kind: str, folder: Path) -> Iterator[tuple[str, PostgresCluster | None]]:
    if kind == "sqlite":
        url = f"sqlite:///{folder / 'var' / 'homeroom.db'}"
        ServerProcess(url, folder).init()
        yield url, None
        return
    clusters = start_postgres(fsync=True)
    cluster = next(clusters)
    try:
        url = cluster.new_database()
        ServerProcess(url, folder).init()
        yield url, cluster
    finally:
        next(clusters, None)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kind", choices=("heartbeat", "report"), default="heartbeat")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--devices", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=6, help="each round: one request from every device")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="homeroom-bench-db-"))
    try:
        for url, cluster in database(args.database, folder):
            fleet = Fleet(url, args.devices, args.kind)
            if (
                args.kind == "report"
            ):  # every device's first report stores its list; the measured ones repeat it
                for start in range(0, args.devices, 64):
                    fleet.send([fleet.signed(n) for n in range(start, min(start + 64, args.devices))])
            rounds = [
                [fleet.signed(n) for n in range(r * args.devices, (r + 1) * args.devices)]
                for r in range(args.rounds)
            ]  # signed before the clock starts: the agent's work, not the server's
            postmaster = int((cluster.datadir / "postmaster.pid").read_text().split()[0]) if cluster else None
            # This process alone: the database threads measured run in it.
            me = os.getpid()
            mine, theirs, began = (
                bench_server.server_cpu_seconds(me, children=False),
                bench_server.server_cpu_seconds(postmaster) if postmaster else 0.0,
                time.perf_counter(),
            )
            for requests in rounds:
                fleet.send(requests)
            count = args.rounds * args.devices
            mine = bench_server.server_cpu_seconds(me, children=False) - mine
            theirs = (bench_server.server_cpu_seconds(postmaster) - theirs) if postmaster else float("nan")
            wall = time.perf_counter() - began
            fleet.engine.dispose()
            print(
                f"{args.database} {args.kind}: {1000 * mine / count:.3f} ms server CPU a request, "
                f"{1000 * theirs / count:.3f} ms PostgreSQL CPU a request, {count / wall:.0f} requests/s "
                f"({count} requests in batches; load average {Path('/proc/loadavg').read_text().split()[0]})"
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
