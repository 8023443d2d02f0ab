"""The test plumbing that lets xdist workers share one machine (tests/helpers/): each would fail
without its fix (a shared port, a hang on a stale display, a lost port race)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import xdisplay
from tests.helpers.cli_forks import fork_server
from tests.helpers.need import need
from tests.helpers.servers import PORTS_FIRST, PORTS_LAST, ServerProcess, free_port
from tests.helpers.workers import band


def test_each_worker_has_its_own_ports_below_the_ephemeral_range(monkeypatch: pytest.MonkeyPatch) -> None:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert low > PORTS_LAST, "no outgoing connection may take a port a test picked"
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "6")
    bands = []
    for index in range(6):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", f"gw{index}")
        bands.append(set(band(PORTS_FIRST, PORTS_LAST)))
    assert all(len(b) > 1000 for b in bands)
    assert all(not (a & b) for i, a in enumerate(bands) for b in bands[i + 1 :])
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw3")
    picked = {free_port() for _ in range(50)}
    assert len(picked) == 50 and picked <= bands[3]


def test_a_display_that_hangs_is_no_answer_within_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Something listening where an X server should be, never answering: passed over, not waited on."""
    missing = xdisplay.tools_missing()
    need(not missing, f"install {' '.join(missing)} (./scripts/test installs them as root)")
    # Two numbers of this worker's own band that nothing holds: a fixed pair (990, 991) could be a
    # display another worker's Xvfb holds, and then no Xvfb of ours can start on the second.
    number, spare = xdisplay.free_numbers()[:2]
    hung = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    hung.bind(f"\0/tmp/.X11-unix/X{number}")  # the abstract socket clients try first
    hung.listen()
    try:
        began = time.monotonic()
        assert xdisplay.answers(number, within=1) is False
        assert time.monotonic() - began < 5
        monkeypatch.setattr(xdisplay, "free_numbers", lambda: [number, spare])
        chosen, process = xdisplay.launch_xvfb(["-screen", "0", "320x240x24", "-nolisten", "tcp"])
        try:
            assert chosen == spare
            # Every client after launch_xvfb's probe is answered: without -noreset the server reset
            # as each probe left and refused about one connection in thirty on a loaded machine
            # (this test failed so in CI). A dead Xvfb fails at once; a slow one has 10 s a probe.
            for probe in range(60):
                assert process.poll() is None, f"the Xvfb on :{chosen} exited ({process.returncode})"
                assert xdisplay.answers(chosen, within=10), f"probe {probe + 1} of 60 refused"
        finally:
            xdisplay.stop_xvfb(process)
    finally:
        hung.close()


def test_a_server_that_loses_its_port_to_another_process_starts_on_another(tmp_path: Path) -> None:
    server = ServerProcess(f"sqlite:///{tmp_path / 'var' / 'homeroom.db'}", tmp_path)
    server.init()
    with socket.socket() as taker:  # another run binds the port between the pick and the start
        taker.bind(("127.0.0.1", server.port))
        taker.listen()
        lost = server.port
        server.start()
        try:
            assert server.port != lost
            assert "address already in use" in (tmp_path / f"server-{lost}.log").read_text().lower()
        finally:
            server.stop()


def test_keys_mapped_before_a_client_starts_are_still_there_when_it_does() -> None:
    """map_keysyms runs before the dialog connects: the display must not reset in between."""
    import ctypes
    import ctypes.util

    missing = xdisplay.tools_missing()
    need(not missing, f"install {' '.join(missing)} (./scripts/test installs them as root)")
    screen = xdisplay.start_xvfb(320, 240)
    try:
        xdisplay.map_keysyms(screen.name, "é")  # its connection closes: the last client leaves
        x11 = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
        x11.XOpenDisplay.restype = ctypes.c_void_p
        x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
        x11.XKeysymToKeycode.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
        x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
        handle = x11.XOpenDisplay(screen.name.encode())
        try:
            assert x11.XKeysymToKeycode(handle, 0xE9) != 0, "é lost its key when the display reset"
        finally:
            x11.XCloseDisplay(handle)
    finally:
        screen.stop()


def test_a_forked_server_command_is_a_process_of_its_own_with_the_callers_folder_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tests/helpers/cli_forks.py: the command gets this test's environment and working folder as
    they are at the call, its own pid and exit status, its stdout and stderr apart; a timeout kills it."""
    server = ServerProcess(f"sqlite:///{tmp_path / 'var' / 'homeroom.db'}", tmp_path)
    server.init()
    forks = fork_server()
    settings = tmp_path / "elsewhere.toml"
    settings.write_text("[lost]\nevidence_keep_days = 12\n")
    monkeypatch.setenv("HOMEROOM_CONFIG", settings.name)  # relative: found only from tmp_path
    argv = ["lost", "purge", "--database", server.database_url, "--data-dir", str(tmp_path)]
    done = forks.run(argv, tmp_path, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        "No evidence to delete (kept 12 days after a case closes).\n",
        "",
    )
    monkeypatch.delenv("HOMEROOM_CONFIG")
    assert "kept 30 days" in forks.run(argv, tmp_path, timeout=120).stdout  # the default again

    refused = server.cli("devices", "--no-such-option")
    assert refused.returncode == 2 and refused.stdout == ""
    assert "unrecognized arguments: --no-such-option" in refused.stderr

    # Its own process, in a session of its own, with its exit status once it has gone.
    log = tmp_path / "serve.log"
    serving = forks.start(["serve", "--port", str(free_port()), *argv[2:]], tmp_path, log, log)
    try:
        assert serving.pid not in (os.getpid(), os.getppid()) and os.getsid(serving.pid) == serving.pid
        assert serving.poll() is None
    finally:
        os.killpg(serving.pid, signal.SIGKILL)
    assert serving.wait(30) == -signal.SIGKILL

    with pytest.raises(subprocess.TimeoutExpired):  # too short for any command: it is killed
        forks.run(["devices", *argv[2:]], tmp_path, timeout=0.01)
