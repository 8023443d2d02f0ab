"""Real servers for tests: a throwaway PostgreSQL cluster and Homeroom server processes on loopback."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

from tests.helpers.cli_forks import ForkedProcess, fork_server, forks_enabled
from tests.helpers.paths import ROOT
from tests.helpers.workers import band

# Below Linux's ephemeral range (32768-60999), so no outgoing connection is ever given one of these
# as its local port between the moment a test picks it and the moment its server binds it.
PORTS_FIRST, PORTS_LAST = 20000, 32767
_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback port nobody listens on, from this xdist worker's own band (tests.helpers.workers).

    Each port is handed out once per process, so two servers of one test (or of two tests in a
    row) never get the same number before either has bound it; the bind check (without
    SO_REUSEADDR) passes over ports in use or still in TIME_WAIT.
    """
    for _ in range(2):
        ports = [port for port in band(PORTS_FIRST, PORTS_LAST) if port not in _handed_out]
        random.shuffle(ports)  # spreading, not security
        for port in ports:
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
            _handed_out.add(port)
            return port
        _handed_out.clear()  # the band is used up: ports from tests long finished are free again
    raise RuntimeError(f"no free port in {band(PORTS_FIRST, PORTS_LAST)}")


@contextmanager
def serving_http(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """`handler` answering on a free loopback port, in a thread of its own, until the block ends;
    yields its base URL (a fake server, a proxy, a web filter standing in the server's place)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _lost_the_port(log: Path) -> bool:
    """Whether a server exited because someone else bound its port first (another engineer's run)."""
    return log.exists() and "address already in use" in log.read_text(errors="replace").lower()


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
        self.sql(f"CREATE DATABASE {name}")
        return self.url(name)

    def sql(self, *commands: str) -> None:
        """Each command on its own (CREATE and DROP DATABASE cannot run inside a transaction)."""
        argv = [str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-q"]
        for command in commands:
            argv += ["-c", command]
        subprocess.run([*argv, "-v", "ON_ERROR_STOP=1"], check=True, capture_output=True, timeout=60)

    def restart(self) -> None:
        """pg_ctl restart (fast: open connections are cut, as a database restart for an upgrade cuts them),
        on the same port with the same options."""
        subprocess.run(
            _as_postgres(
                f"{self.bindir}/pg_ctl -D {self.datadir} -m fast -l {self.datadir.parent / 'log'} "
                "-w restart >/dev/null"
            ),
            check=True,
            timeout=120,
        )

    def replace_with_copy(self, database: str, template: str) -> None:
        """`database` becomes a copy of `template` (PostgreSQL copies the files: no SQL is replayed)."""
        for attempt in range(50):
            try:
                self.sql(
                    f"DROP DATABASE IF EXISTS {database}", f"CREATE DATABASE {database} TEMPLATE {template}"
                )
                return
            except subprocess.CalledProcessError as exc:
                # The backend of the process that made the template may take a moment to go away.
                if b"is being accessed by other users" not in exc.stderr or attempt == 49:
                    raise AssertionError(exc.stderr.decode(errors="replace")) from None
                time.sleep(0.1)


class InitialisedDatabases:
    """A database set up by a real `homeroom-server init`, made once per kind on each xdist worker;
    each `server` fixture gets a fresh copy of it instead of running init again.

    init is a Python process that imports the server and runs every migration: about a second of
    CPU, for each of the suite's hundreds of servers. The copy is the very database init made (its
    tables, its administrator, its default requirements, its signing key); tests of init itself
    run init on an empty database (`database_url`). Each copy is a file copy on SQLite and
    `CREATE DATABASE ... TEMPLATE` on PostgreSQL, whose template takes no connections (so
    autovacuum never holds it open).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._sqlite: Path | None = None
        self._postgres: str | None = None

    def copy_into(self, url: str, cluster: PostgresCluster | None = None) -> None:
        """Makes the (SQLite file or PostgreSQL database) at `url` a fresh copy of the initialised one."""
        if url.startswith("sqlite:///"):
            target = Path(url.removeprefix("sqlite:///"))
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self._sqlite_template(), target)
        else:
            assert cluster is not None, "a PostgreSQL copy needs its cluster"
            cluster.replace_with_copy(url.rsplit("/", 1)[1], self._postgres_template(cluster))

    def _sqlite_template(self) -> Path:
        if self._sqlite is None:
            path = self.folder / "sqlite" / "var" / "homeroom.db"
            ServerProcess(f"sqlite:///{path}", path.parent.parent).init()
            # WAL mode: the last connection to close folds the log back in, so the file is whole.
            assert not path.with_name(path.name + "-wal").exists(), "init left a write-ahead log behind"
            self._sqlite = path
        return self._sqlite

    def _postgres_template(self, cluster: PostgresCluster) -> str:
        if self._postgres is None:
            name = cluster.new_database().rsplit("/", 1)[1]
            data_dir = self.folder / "postgresql"
            data_dir.mkdir(parents=True)
            ServerProcess(cluster.url(name), data_dir).init()
            cluster.sql(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false")
            self._postgres = name
        return self._postgres


def _as_postgres(command: str) -> list[str]:
    return ["su", "postgres", "-s", "/bin/sh", "-c", command]


def start_postgres(fsync: bool = False) -> Iterator[PostgresCluster]:
    """initdb refuses to run as root: the cluster belongs to the postgres user, in its own temp directory
    (pytest's are private to root, so the postgres user could not enter them). Each xdist worker
    starts its own (the fixture is session-scoped, and each worker is a session), on its own port.

    Tests run with `fsync=off` (nothing they check survives a power cut anyway, and it is faster);
    `fsync=True` keeps Debian's defaults, which is what a district runs and what benchmarks measure."""
    bindir = postgres_bin()
    assert bindir is not None
    base = Path(tempfile.mkdtemp(prefix="homeroom-pg-"))
    shutil.chown(base, "postgres")
    datadir = base / "data"
    try:
        subprocess.run(
            _as_postgres(f"{bindir}/initdb -D {datadir} -A trust -U postgres >/dev/null"),
            check=True,
            timeout=120,
        )
        port = _start_cluster(bindir, datadir, base, fsync=fsync)
        try:
            yield PostgresCluster(bindir, datadir, port)
        finally:
            subprocess.run(
                _as_postgres(f"{bindir}/pg_ctl -D {datadir} -m immediate stop >/dev/null"),
                check=False,
                timeout=120,
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _start_cluster(bindir: Path, datadir: Path, base: Path, attempts: int = 3, fsync: bool = False) -> int:
    """pg_ctl start on a free port; if another process took the port first, on the next one."""
    log = base / "log"
    for _ in range(attempts):
        port = free_port()
        options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c max_connections=300"
        if not fsync:
            options += " -c fsync=off"
        started = subprocess.run(
            _as_postgres(f'{bindir}/pg_ctl -D {datadir} -o "{options}" -l {log} -w start >/dev/null'),
            check=False,
            timeout=120,
        )
        if started.returncode == 0:
            return port
        if not _lost_the_port(log):
            break
    raise AssertionError(
        f"PostgreSQL did not start:\n{log.read_text(errors='replace') if log.exists() else ''}"
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
        self._port_is_ours = port is None  # chosen here, so another may be chosen if it is taken
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | ForkedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A `homeroom-server` command on this server's database: its own process, forked from one
        that has imported the CLI already (tests/helpers/cli_forks.py), `serve` a plain one."""
        argv = [*args, "--database", self.database_url, "--data-dir", str(self.data_dir)]
        if forks_enabled() and args[:1] != ("serve",):
            return fork_server().run(argv, ROOT, timeout=120)
        return subprocess.run(
            [sys.executable, "-m", "server.cli", *argv],
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
        first_start = self.process is None
        for _ in range(3):
            if self._launch(timeout):
                return
            # Only a first start may move: a restarted server must come back where agents know it.
            if not (first_start and self._port_is_ours and _lost_the_port(self._log_path())):
                break
            self.port = free_port()
        raise AssertionError(self._log_path().read_text(errors="replace"))

    def _log_path(self) -> Path:
        return self.data_dir / f"server-{self.port}.log"

    def _launch(self, timeout: float) -> bool:
        """Starts `serve` and waits for /healthz: True once it answers, False if the process exited.
        The process is forked from the CLI fork server (tests/helpers/cli_forks.py: the imports are
        done once per worker), in a session of its own as start_new_session gives, its output to
        the log."""
        argv = [
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
        ]
        if forks_enabled():
            log_path = self._log_path()
            self.process = fork_server().start(argv, ROOT, log_path, log_path, append=True)
        else:
            with open(self._log_path(), "ab") as log:  # the child keeps its own copy of the descriptor
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "server.cli", *argv],
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return True
            except requests.RequestException:
                time.sleep(0.05)
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
