"""`homeroom-server` and `homeroom-agent` commands as real processes, forked from one that has
already imported the CLI.

A `python -m server.cli …` process spends one to several seconds (on a loaded 2-core machine)
importing SQLAlchemy, FastAPI and the server's modules before the command starts, `agent.cli` one to
two, and the suite runs hundreds of commands. Each worker therefore starts one fork server per CLI
module (`python -m tests.helpers.cli_forks SOCKET MODULE`) that imports it once; every command is a
fresh `os.fork()` of it that takes the caller's arguments, working folder and environment, its
stdout and stderr to files, stdin from /dev/null, a session of its own, runs the module's `main`
and exits through the interpreter's normal exit (atexit handlers, buffered output flushed), with
main's code as its exit status. So each command is still its own process against the real database
or state folder, with its own exit status and output, as `subprocess.run` would give; only the
imports are shared. HOMEROOM_TEST_CLI_FORKS=0 runs every command as a plain subprocess.

The protocol on the Unix socket is one JSON line from the client (argv, cwd, env, the two output
files), then two lines back: the child's pid (from the child, once it is in its own session), then
its exit status (from the fork server, once it has reaped it).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.helpers.paths import ROOT

ENABLED_VARIABLE = "HOMEROOM_TEST_CLI_FORKS"


class ForkedProcess:
    """What a test needs of a `subprocess.Popen` for a forked command: its pid (also its process
    group's id), `poll()` and `wait()`; the exit status comes over the connection once reaped."""

    def __init__(self, connection: socket.socket, argv: list[str]) -> None:
        self._connection = connection
        self._argv = argv
        self._buffer = b""
        self.returncode: int | None = None
        self.pid = int(self._read_line(60.0) or b"0")
        if not self.pid:
            raise AssertionError(f"the CLI fork server did not start {argv}")

    def _read_line(self, timeout: float | None) -> bytes | None:
        """The next line, or None if none arrived within `timeout` (None: wait as long as it takes)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self._connection], [], [], left)
            if not ready:
                return None
            chunk = self._connection.recv(4096)
            if not chunk:
                raise AssertionError(f"the CLI fork server lost command {self._argv}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def poll(self) -> int | None:
        if self.returncode is None:
            line = self._read_line(0.0)
            if line is not None:
                self._finish(int(line))
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            line = self._read_line(timeout)
            if line is None:
                raise subprocess.TimeoutExpired(self._argv, timeout or 0)
            self._finish(int(line))
        assert self.returncode is not None
        return self.returncode

    def _finish(self, returncode: int) -> None:
        self.returncode = returncode
        self._connection.close()


class ForkServer:
    """The client side: starts the fork server on first use and asks it for one command at a time
    per connection (several connections may run at once: each is its own child)."""

    def __init__(self, module: str) -> None:
        self.module = module
        self._folder = Path(tempfile.mkdtemp(prefix="homeroom-cli-forks-"))
        self._socket = self._folder / "socket"
        self._process: subprocess.Popen[bytes] | None = None

    def _ensure_started(self) -> None:
        if self._process is not None and self._process.poll() is None:
            return
        self._socket.unlink(missing_ok=True)
        log = (self._folder / "fork-server.log").open("ab")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.helpers.cli_forks", str(self._socket), self.module],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a test's killpg of its own processes never reaches it
        )
        log.close()
        deadline = time.monotonic() + 120
        while not self._socket.exists():
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    "the CLI fork server did not start:\n"
                    + (self._folder / "fork-server.log").read_text(errors="replace")
                )
            time.sleep(0.02)

    def start(
        self,
        argv: list[str],
        cwd: Path,
        stdout: Path,
        stderr: Path,
        append: bool = False,
        env: dict[str, str] | None = None,
    ) -> ForkedProcess:
        """Forks one command with its output to these files (the same file twice: both to it), in
        `env` (by default this process's environment as it is now)."""
        self._ensure_started()
        request = {
            "argv": argv,
            "cwd": str(cwd),
            "env": dict(os.environ) if env is None else env,
            "stdout": str(stdout),
            "stderr": str(stderr),
            "append": append,
        }
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            connection.settimeout(60)
            connection.connect(str(self._socket))
            connection.sendall(json.dumps(request).encode() + b"\n")
            handle = ForkedProcess(connection, [sys.executable, "-m", self.module, *argv])
        except BaseException:
            connection.close()
            raise
        return handle

    def run(
        self, argv: list[str], cwd: Path, timeout: float, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        with tempfile.TemporaryDirectory(dir=self._folder) as outputs:
            stdout, stderr = Path(outputs) / "stdout", Path(outputs) / "stderr"
            process = self.start(argv, cwd, stdout, stderr, env=env)
            try:
                returncode = process.wait(timeout)
            except subprocess.TimeoutExpired:
                _kill(process.pid)
                process.wait(30)
                raise
            return subprocess.CompletedProcess(
                [sys.executable, "-m", self.module, *argv],
                returncode,
                stdout.read_text(errors="replace") if stdout.exists() else "",
                stderr.read_text(errors="replace") if stderr.exists() else "",
            )

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)
        shutil.rmtree(self._folder, ignore_errors=True)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


_FORK_SERVERS: dict[str, ForkServer] = {}


def forks_enabled() -> bool:
    return os.environ.get(ENABLED_VARIABLE, "1") != "0"


def fork_server(module: str = "server.cli") -> ForkServer:
    """This worker's fork server for `module` (a CLI module with a `main(argv) -> int`)."""
    if module not in _FORK_SERVERS:
        _FORK_SERVERS[module] = ForkServer(module)
        atexit.register(_FORK_SERVERS[module].stop)
    return _FORK_SERVERS[module]


# --- the fork server ------------------------------------------------------------------------------


def _child(module: str, request: dict[str, Any], connection: socket.socket) -> int:
    """In the forked child: become the command's process, then run it."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.setsid()  # its own session and process group (pgid = pid), as start_new_session gives
    # The pid is told only now, so a killpg(pid) the moment the caller has it reaches the command.
    connection.sendall(f"{os.getpid()}\n".encode())
    connection.close()
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    mode = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if request["append"] else os.O_TRUNC)
    out = os.open(request["stdout"], mode, 0o600)
    os.dup2(out, 1)
    if request["stderr"] == request["stdout"]:
        os.dup2(out, 2)
    else:
        err = os.open(request["stderr"], mode, 0o600)
        os.dup2(err, 2)
        os.close(err)
    os.close(out)
    sys.argv = [str(ROOT / (module.replace(".", "/") + ".py")), *request["argv"]]
    returned: int = importlib.import_module(module).main(request["argv"])
    return returned


def _serve(socket_path: str, module: str) -> None:
    importlib.import_module(module)  # the import every command would otherwise pay for

    # A child's exit wakes the loop (SIGCHLD through the wakeup fd), so it sleeps until there is work.
    woken, wakeup = socket.socketpair()
    woken.setblocking(False)
    wakeup.setblocking(False)
    signal.set_wakeup_fd(wakeup.fileno())
    signal.signal(signal.SIGCHLD, lambda _signal, _frame: None)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path + ".new")
    listener.listen(64)
    os.rename(socket_path + ".new", socket_path)  # the client waits for the name: bound and listening
    waiting: dict[int, socket.socket] = {}
    parent = os.getppid()
    while os.getppid() == parent:  # a worker that dies without stopping it leaves no fork server
        ready, _, _ = select.select([listener, woken], [], [], 2.0)
        if woken in ready:
            with contextlib.suppress(BlockingIOError):
                while woken.recv(4096):
                    pass
        if listener in ready:
            connection, _ = listener.accept()
            request = json.loads(connection.makefile("rb").readline())
            pid = os.fork()
            if pid == 0:
                signal.set_wakeup_fd(-1)
                for unused in (listener, woken, wakeup, *waiting.values()):
                    unused.close()
                # SystemExit leaves through the interpreter's normal exit, as `python -m` would.
                raise SystemExit(_child(module, request, connection))
            waiting[pid] = connection  # the child tells its pid; its exit status is sent from here
        _reap(waiting)


def _reap(waiting: dict[int, socket.socket]) -> None:
    """Every child that has exited: its exit status to the client that started it."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        connection = waiting.pop(pid, None)
        if connection is not None:
            with contextlib.suppress(OSError):  # the caller gave up (its timeout)
                connection.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
            connection.close()


if __name__ == "__main__":
    _serve(sys.argv[1], sys.argv[2])
