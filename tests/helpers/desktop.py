"""A throwaway desktop for display tests: its own Xvfb, D-Bus session and trayer, and ways to look at it.

Each test module starts its own on a display number nobody uses (never :99), chosen and
checked by tests.helpers.xdisplay.launch_xvfb (a band per xdist worker; a number counts as
ours only once our Xvfb holds its lock and answers there).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from PIL import Image

from tests.helpers.xdisplay import launch_xvfb

SCREEN = (1024, 768)
TRAY_WIDTH, TRAY_HEIGHT = 200, 32
TRAY_BOX = (SCREEN[0] - TRAY_WIDTH, 0, SCREEN[0], TRAY_HEIGHT)
TOOLS = ("Xvfb", "trayer", "xdotool", "import", "xwininfo", "xdpyinfo", "dbus-daemon")
WINDOW_LINE = re.compile(r"^\s+(0x[0-9a-f]+) .*\s(\d+)x(\d+)\+(-?\d+)\+(-?\d+)\s")


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def wait_for(
    condition: Callable[[], object], timeout: float, what: str | Callable[[], str], step: float = 0.2
) -> object:
    """`what` may be a function, so a log it quotes is read when the wait fails, not when it starts."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    said = what() if callable(what) else what
    raise AssertionError(f"timed out after {timeout:g} s waiting for {said}")


def tray_owned(display: str) -> bool:
    """Whether a tray manager holds the display's system-tray selection.

    trayer's window being there does not say so, and pystray's xorg backend looks for the owner
    once, when its icon is first shown: a tray started before the selection is held never docks.
    """
    from Xlib import X
    from Xlib.display import Display

    connection = Display(display)
    try:
        owner = connection.get_selection_owner(connection.intern_atom("_NET_SYSTEM_TRAY_S0"))
        return bool(owner != X.NONE)
    finally:
        connection.close()


@dataclass
class Desktop:
    display: str
    bus_address: str
    folder: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DISPLAY": self.display,
            "DBUS_SESSION_BUS_ADDRESS": self.bus_address,
            "NO_AT_BRIDGE": "1",  # no accessibility bus to launch in a bare session
        }

    def run(self, *argv: str) -> str:
        done = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=30, check=False)
        return done.stdout

    def screenshot(self, path: Path) -> Image.Image:
        """This desktop's screen, kept at `path` for a person to look at.

        Taken into the desktop's own folder and read from there: `path` is shared by every run of
        the test (other xdist workers, other engineers), so reading it back could read theirs.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        own = self.folder / f"screenshot-{os.getpid()}-{path.name}"
        subprocess.run(["import", "-window", "root", str(own)], env=self.env, check=True, timeout=30)
        image = Image.open(own).convert("RGB")
        shutil.copyfile(own, path.with_name(f".{path.name}.{os.getpid()}"))
        os.replace(path.with_name(f".{path.name}.{os.getpid()}"), path)
        return image

    def windows(self) -> dict[str, tuple[int, int, int, int]]:
        """Top-level windows: id -> (width, height, x, y)."""
        found = {}
        for line in self.run("xwininfo", "-root", "-children").splitlines():
            match = WINDOW_LINE.match(line)
            if match:
                wid, w, h, x, y = match.groups()
                found[wid] = (int(w), int(h), int(x), int(y))
        return found

    def find_window(self, name: str) -> list[str]:
        return self.run("xdotool", "search", "--name", name).split()


def _start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)


def _start_xvfb(folder: Path) -> tuple[int, subprocess.Popen[bytes]]:
    # launch_xvfb adds -noreset (trayer connecting during a reset was refused: "cannot open display").
    screen = ["-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24", "-nolisten", "tcp"]
    try:
        return launch_xvfb(screen, folder / "xvfb.log")
    except RuntimeError as exc:
        raise AssertionError(str(exc)) from None


@contextmanager
def desktop(folder: Path) -> Iterator[Desktop]:
    """Xvfb + a D-Bus session + trayer at the top right, all stopped afterwards (also when one of
    them fails to start: a desktop left behind would hold its display for the rest of the run)."""
    folder.mkdir(parents=True, exist_ok=True)
    number, xvfb = _start_xvfb(folder)
    bus = f"unix:path={folder / 'bus'}"
    session = Desktop(f":{number}", bus, folder, [xvfb])
    try:
        session.processes.append(
            _start(
                ["dbus-daemon", "--session", "--nofork", f"--address={bus}"],
                dict(os.environ),
                folder / "dbus.log",
            )
        )
        wait_for(lambda: (folder / "bus").exists(), 30, "the D-Bus session")
        size = [
            "--widthtype",
            "pixel",
            "--width",
            str(TRAY_WIDTH),
            "--heighttype",
            "pixel",
            "--height",
            str(TRAY_HEIGHT),
        ]
        look = ["--edge", "top", "--align", "right", "--transparent", "false", "--SetDockType", "true"]
        _start_trayer(session, [*look, *size])
        wait_for(lambda: tray_owned(session.display), 30, "trayer to take the system-tray selection")
        yield session
    finally:
        for process in reversed(session.processes):
            stop(process)


def _start_trayer(session: Desktop, options: list[str], attempts: int = 3) -> None:
    """trayer with its window up; one that exits before showing it is started again (and the
    reason is in trayer.log), rather than waited on for the whole timeout."""
    log = session.folder / "trayer.log"
    for _attempt in range(attempts):
        trayer = _start(["trayer", *options], session.env, log)
        session.processes.append(trayer)
        if wait_for(partial(_trayer_shown_or_gone, session, trayer), 30, "trayer") != "gone":
            return
    tail = log.read_text()[-2000:]
    raise AssertionError(f"trayer exited {attempts} times before showing its window:\n{tail}")


def _trayer_shown_or_gone(session: Desktop, trayer: subprocess.Popen[bytes]) -> str:
    if session.run("xdotool", "search", "--class", "trayer").strip():
        return "shown"
    return "gone" if trayer.poll() is not None else ""


def stop(process: subprocess.Popen[Any], timeout: float = 5) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


def colour_pixels(
    image: Image.Image,
    rgb: tuple[int, int, int],
    box: tuple[int, int, int, int] = TRAY_BOX,
    tolerance: int = 12,
) -> list[tuple[int, int]]:
    """Where in `box` the image shows this colour (give or take scaling's blending)."""
    region = image.crop(box)
    left, top = box[0], box[1]
    hits = []
    for y in range(region.height):
        for x in range(region.width):
            pixel = region.getpixel((x, y))
            assert isinstance(pixel, tuple)
            if all(abs(int(a) - b) <= tolerance for a, b in zip(pixel[:3], rgb, strict=True)):
                hits.append((left + x, top + y))
    return hits
