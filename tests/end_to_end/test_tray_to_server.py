"""The tray's screen-lock reading reaches the server within one service cycle, not at the next hourly check.

All real: a server process (SQLite), `homeroom-agent run` as the service, and the tray
(`python -m agent.desktop.tray`, pystray's GTK backend) on its own Xvfb with trayer, in an
XFCE session whose screensaver settings lock the screen after 12 minutes.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.helpers.agent_process import agent
from tests.helpers.desktop import desktop, missing_tools, stop, wait_for
from tests.helpers.need import need
from tests.helpers.paths import ROOT
from tests.helpers.servers import ServerProcess

XFCE_SETTINGS = ".config/xfce4/xfconf/xfce-perchannel-xml/xfce4-screensaver.xml"


def screen_lock(server: ServerProcess) -> dict[str, Any] | None:
    """The device's screen-lock status as `homeroom-server devices --json` shows it."""
    listed = json.loads(server.cli("devices", "--json").stdout)["devices"]
    return {"status": listed[0]["checks"].get("screen_lock")} if listed else None


def test_the_trays_reading_reaches_the_server_within_one_service_cycle(tmp_path: Path) -> None:
    missing = missing_tools()
    need(
        not missing, f"needs {', '.join(missing)}: apt-get install xvfb trayer xdotool imagemagick x11-utils"
    )
    need(importlib.util.find_spec("gi") is not None, "pystray's gtk backend needs PyGObject<3.51")
    server = ServerProcess(f"sqlite:///{tmp_path / 'var' / 'homeroom.db'}", tmp_path)
    server.init()
    server.start()
    state = tmp_path / "state"
    processes: list[subprocess.Popen[bytes]] = []
    try:
        enrolled = agent(
            "enroll", "--server", server.url, "--token", server.token(), "--state-dir", str(state)
        )
        assert enrolled.returncode == 0, enrolled.stderr
        # The service as root with no desktop session: it runs the system checks only.
        service_env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "XDG_CURRENT_DESKTOP")}
        service_log = (tmp_path / "service.log").open("wb")
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "agent.cli", "run", "--state-dir", str(state)],
                cwd=ROOT,
                env=service_env,
                stdout=service_log,
                stderr=subprocess.STDOUT,
            )
        )
        # Listed from enrolment; the status is there once the first report is.
        wait_for(
            lambda: (screen_lock(server) or {}).get("status") is not None, 90, "the service's first report"
        )
        assert screen_lock(server) == {"status": "unknown"}, "no tray yet: screen lock is unknown"

        home = tmp_path / "home"
        (home / XFCE_SETTINGS).parent.mkdir(parents=True)
        shutil.copy(ROOT / "tests" / "fixtures" / "linux" / "xfce4-screensaver.xml", home / XFCE_SETTINGS)
        with desktop(tmp_path / "desktop") as session:
            env = {
                **session.env,
                "PYSTRAY_BACKEND": "gtk",
                "HOME": str(home),
                "XDG_STATE_HOME": str(home / "state"),
                "XDG_CURRENT_DESKTOP": "XFCE",
            }
            tray_log = tmp_path / "tray.log"
            started = time.monotonic()
            with tray_log.open("wb") as out:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "agent.desktop.tray", "--state-dir", str(state)],
                        cwd=ROOT,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
            wait_for(
                lambda: screen_lock(server) == {"status": "pass"},
                30,
                f"the tray's reading at the server; tray log:\n{tray_log.read_text(errors='replace')}",
                step=0.5,
            )
            took = time.monotonic() - started
        assert "user results: screen_lock=pass" in tray_log.read_text()
        # One service cycle is 5 s; the tray's checks and the server's answer take a few more.
        assert took < 30, f"took {took:.1f} s"
        assert "Traceback" not in (tmp_path / "service.log").read_text(errors="replace")
    finally:
        for process in reversed(processes):
            stop(process, timeout=15)
        server.stop()
