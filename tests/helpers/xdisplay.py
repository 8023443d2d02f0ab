"""A private X display for one test module: Xvfb on a display number nobody else uses.

Other tests (the tray's) start their own Xvfb at the same time, so the number is chosen by a
lock-free scan of /tmp/.X11-unix and /tmp/.X*-lock, starting at a random point above 99 (99
is the developers' interactive display); if another process wins the race for a number, Xvfb
exits and the next free one is tried.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SOCKETS = Path("/tmp/.X11-unix")
FIRST, LAST = 100, 999


@dataclass
class XDisplay:
    number: int
    process: subprocess.Popen[bytes]

    @property
    def name(self) -> str:
        return f":{self.number}"

    def env(self) -> dict[str, str]:
        return {**os.environ, "DISPLAY": self.name}

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def tools_missing() -> list[str]:
    return [tool for tool in ("Xvfb", "xdotool", "xdpyinfo", "import") if shutil.which(tool) is None]


def _in_use(number: int) -> bool:
    return (SOCKETS / f"X{number}").exists() or Path(f"/tmp/.X{number}-lock").exists()


def free_numbers() -> list[int]:
    start = random.randint(FIRST, LAST)
    ordered = list(range(start, LAST + 1)) + list(range(FIRST, start))
    return [n for n in ordered if n != 99 and not _in_use(n)]


def _ready(number: int) -> bool:
    probe = subprocess.run(
        ["xdpyinfo", "-display", f":{number}"], capture_output=True, timeout=10, check=False
    )
    return probe.returncode == 0


def start_xvfb(width: int = 1024, height: int = 768, attempts: int = 5) -> XDisplay:
    for number in free_numbers()[:attempts]:
        process = subprocess.Popen(
            ["Xvfb", f":{number}", "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp", "-dpi", "96"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and process.poll() is None:
            if (SOCKETS / f"X{number}").exists() and _ready(number):
                return XDisplay(number, process)
            time.sleep(0.05)
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    raise RuntimeError("could not start Xvfb on a free display")
