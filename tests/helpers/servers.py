"""Real servers for tests: a throwaway PostgreSQL cluster and Homeroom server processes on loopback."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.helpers.paths import ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_bin() -> Path | None:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return versions[-1].parent if versions else None


@dataclass
class PostgresCluster:
    bindir: Path
    datadir: Path
    port: int

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        name = f"hr_{uuid.uuid4().hex[:10]}"
        subprocess.run(
            [
                str(self.bindir / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-q",
                "-c",
                f"CREATE DATABASE {name}",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return self.url(name)


def _as_postgres(command: str) -> list[str]:
    return ["su", "postgres", "-s", "/bin/sh", "-c", command]


def start_postgres() -> Iterator[PostgresCluster]:
    """initdb refuses to run as root: the cluster belongs to the postgres user, in its own temp directory
    (pytest's are private to root, so the postgres user could not enter them)."""
    bindir = postgres_bin()
    assert bindir is not None
    base = Path(tempfile.mkdtemp(prefix="homeroom-pg-"))
    shutil.chown(base, "postgres")
    datadir = base / "data"
    port = free_port()
    subprocess.run(
        _as_postgres(f"{bindir}/initdb -D {datadir} -A trust -U postgres >/dev/null"), check=True, timeout=120
    )
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300"
    subprocess.run(
        _as_postgres(f'{bindir}/pg_ctl -D {datadir} -o "{options}" -l {base}/log -w start >/dev/null'),
        check=True,
        timeout=120,
    )
    try:
        yield PostgresCluster(bindir, datadir, port)
    finally:
        subprocess.run(
            _as_postgres(f"{bindir}/pg_ctl -D {datadir} -m immediate stop >/dev/null"),
            check=False,
            timeout=120,
        )


class ServerProcess:
    """`homeroom-server serve` as a real process; `kill()` is kill -9, `start()` starts it again."""

    def __init__(
        self,
        database_url: str,
        data_dir: Path,
        workers: int = 1,
        port: int | None = None,
        serve_args: tuple[str, ...] = (),
    ) -> None:
        self.serve_args = serve_args
        self.database_url = database_url
        self.data_dir = data_dir
        self.workers = workers
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "server.cli",
                *args,
                "--database",
                self.database_url,
                "--data-dir",
                str(self.data_dir),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def init(self) -> str:
        done = self.cli("init")
        assert done.returncode == 0, done.stderr
        return done.stdout

    def token(self, group: str = "Lincoln High", *extra: str) -> str:
        done = self.cli("token", "create", "--group", group, *extra)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def start(self, timeout: float = 60) -> None:
        log = open(self.data_dir / f"server-{self.port}.log", "ab")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "server.cli",
                "serve",
                "--port",
                str(self.port),
                "--database",
                self.database_url,
                "--data-dir",
                str(self.data_dir),
                "--workers",
                str(self.workers),
                *self.serve_args,
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (self.data_dir / f"server-{self.port}.log").read_text()
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.1)
        raise AssertionError(f"server did not answer on {self.url} within {timeout} s")

    def kill(self) -> None:
        """kill -9 the whole process group (uvicorn's workers too)."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
