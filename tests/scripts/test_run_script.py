"""`./scripts/run` for real, in a copy of the tree whose .venv borrows the shared environment's packages.

The copy's .venv has its own bin/ (python and the two commands, running this worktree's code) and
an install stamp, so the script installs nothing; everything else (server, agent, ports) is real.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers.paths import ROOT
from tests.helpers.servers import free_port

SHARED_VENV = Path(sys.prefix)


def tree(root: Path, with_venv: bool = True) -> Path:
    (root / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "run", root / "scripts" / "run")
    if with_venv:
        venv = root / ".venv"
        (venv / "bin").mkdir(parents=True)
        shutil.copy(SHARED_VENV / "pyvenv.cfg", venv / "pyvenv.cfg")
        (venv / "lib").symlink_to(SHARED_VENV / "lib")
        (venv / "bin" / "python").symlink_to(Path(sys.executable).resolve())
        for command, module in (("homeroom-server", "server.cli"), ("homeroom-agent", "agent.cli")):
            wrapper = venv / "bin" / command
            wrapper.write_text(f'#!/bin/sh\nexec "{venv}/bin/python" -m {module} "$@"\n')
            wrapper.chmod(0o755)
        (venv / ".homeroom-installed").touch()
    return root


def env(port: int) -> dict[str, str]:
    return {**os.environ, "HOMEROOM_PORT": str(port), "PYTHONPATH": str(ROOT), "PYTHON": sys.executable}


def test_a_busy_port_is_refused_before_anything_is_installed(tmp_path: Path) -> None:
    root = tree(tmp_path / "tree", with_venv=False)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            ["bash", str(root / "scripts" / "run")], env=env(port), capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 2
    assert f"Port {port} on 127.0.0.1 is in use" in done.stderr
    assert not (root / ".venv").exists() and "Installing" not in done.stdout


def start(root: Path, port: int, log: Path) -> tuple[subprocess.Popen[str], str]:
    """Runs the script until it says it is running; returns it and what it printed."""
    process = subprocess.Popen(
        ["bash", str(root / "scripts" / "run")],
        env=env(port), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("Press Ctrl-C to stop."):
            break
    log.write_text("".join(lines))
    return process, "".join(lines)


def ctrl_c(process: subprocess.Popen[str]) -> None:
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()


def test_the_first_cycle_is_shown_and_a_new_port_is_followed(tmp_path: Path) -> None:
    root = tree(tmp_path / "tree")
    first_port, second_port = free_port(), free_port()
    process, printed = start(root, first_port, tmp_path / "first.txt")
    try:
        assert "Homeroom is running." in printed, printed
        assert "STATUS" in printed and "Firewall" in printed and "Screen lock" in printed, printed
    finally:
        ctrl_c(process)
    process, printed = start(root, second_port, tmp_path / "second.txt")
    try:
        assert "Homeroom is running." in printed, printed
        enrolment = json.loads((root / "var" / "agent" / "enrolment.json").read_text())
        assert enrolment["server_url"] == f"http://127.0.0.1:{second_port}"
        assert "sent: 0" not in printed and "still queued: 0" in printed, printed
        status = subprocess.run(
            [str(root / ".venv" / "bin" / "homeroom-agent"), "status", "--state-dir", "var/agent"],
            cwd=root, env=env(second_port), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert "Last problem" not in status.stdout, status.stdout
        devices = subprocess.run(
            [str(root / ".venv" / "bin" / "homeroom-server"), "devices", "--json", "--data-dir", "."],
            cwd=root, env=env(second_port), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert len(json.loads(devices.stdout)["devices"]) == 1, "the same machine, one device record"
    finally:
        ctrl_c(process)
