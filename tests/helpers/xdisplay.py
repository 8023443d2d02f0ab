"""A private X display for one test module: Xvfb on a display number nobody else uses.

Other tests (the tray's, other xdist workers, other engineers' runs) start their own Xvfb at the
same time, so each worker scans its own band of numbers (tests.helpers.workers) above 99 (the
developers' interactive display), from a random point, passing over numbers with a socket or lock
file. A display counts as ours only once the lock file names our Xvfb's pid and `xdpyinfo` answers
on it within a few seconds: if another process won the race, or something stale answers (or
hangs) at that address, our Xvfb is stopped and the next number is tried, never waited on.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.workers import band

SOCKETS = Path("/tmp/.X11-unix")
FIRST, LAST = 100, 999
ANSWER_WITHIN = 3.0  # seconds for xdpyinfo: a live Xvfb answers in milliseconds


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
        stop_xvfb(self.process)


def tools_missing() -> list[str]:
    return [tool for tool in ("Xvfb", "xdotool", "xdpyinfo", "import") if shutil.which(tool) is None]


def _in_use(number: int) -> bool:
    return (SOCKETS / f"X{number}").exists() or Path(f"/tmp/.X{number}-lock").exists()


def free_numbers() -> list[int]:
    """This worker's display numbers, from a random point, without those something already holds."""
    numbers = [n for n in band(FIRST, LAST) if n != 99]
    start = random.randrange(len(numbers))  # spreading, not security
    ordered = numbers[start:] + numbers[:start]
    return [n for n in ordered if not _in_use(n)]


def _lock_owner(number: int) -> int | None:
    """The pid written in /tmp/.X<number>-lock (an X server writes its own there), if any."""
    try:
        return int(Path(f"/tmp/.X{number}-lock").read_text().strip())
    except (OSError, ValueError):
        return None


def answers(number: int, within: float = ANSWER_WITHIN) -> bool:
    """Whether an X server answers on :number; one that hangs counts as no answer, after `within` s."""
    try:
        probe = subprocess.run(
            ["xdpyinfo", "-display", f":{number}"], capture_output=True, timeout=within, check=False
        )
    except subprocess.TimeoutExpired:
        return False
    return probe.returncode == 0


def _is_ours(number: int, process: subprocess.Popen[bytes], timeout: float = 15) -> bool:
    """Waits until our Xvfb holds :number (its pid in the lock, its socket made) and answers there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False  # another server holds the number: Xvfb refuses to share it
        if _lock_owner(number) == process.pid and (SOCKETS / f"X{number}").exists():
            return answers(number)
        time.sleep(0.02)
    return False


def launch_xvfb(
    extra: list[str], log: Path | None = None, attempts: int = 8
) -> tuple[int, subprocess.Popen[bytes]]:
    """Xvfb on the first number of this worker's band that turns out to be ours (see the module's doc).

    Always with -noreset: an X server otherwise resets as its last client leaves, and a client
    connecting during the reset is refused. Our own xdpyinfo probe is such a last client, so without
    it the display refused about one connection in thirty on a loaded machine (trayer's, a test's).
    """
    options = [*extra, *([] if "-noreset" in extra else ["-noreset"])]
    for number in free_numbers()[:attempts]:
        with open(log, "ab") if log else open(os.devnull, "wb") as out:
            process = subprocess.Popen(["Xvfb", f":{number}", *options], stdout=out, stderr=subprocess.STDOUT)
        if _is_ours(number, process):
            return number, process
        stop_xvfb(process)
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    raise RuntimeError(f"could not start Xvfb on a free display after {attempts} tries\n{tail}")


def stop_xvfb(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def start_xvfb(width: int = 1024, height: int = 768, attempts: int = 8) -> XDisplay:
    # launch_xvfb adds -noreset: a reset would also drop what a test set up on the display before
    # its client connects (map_keysyms' keys were lost that way).
    screen = ["-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp", "-dpi", "96"]
    number, process = launch_xvfb(screen, attempts=attempts)
    return XDisplay(number, process)


def map_keysyms(display: str, characters: str) -> None:
    """Give each character a keycode of its own for the rest of the display's life.

    `xdotool type` sends a character the keymap lacks (é, ñ on Xvfb's US map) by binding it to a
    spare keycode, pressing it and unbinding it at once; a client that refreshes its keymap after
    the unbinding sees a key with no symbol and drops the character ("José" arrives as "Jos").
    Mapped before the client starts, the characters are ordinary keys and xdotool uses them as such.
    Done with libX11 itself (XChangeKeyboardMapping) because xmodmap is not installed here.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("X11")
    if name is None:
        raise RuntimeError("libX11 is not installed")
    x11 = ctypes.CDLL(name)
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    x11.XDisplayKeycodes.argtypes = [
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_int),
        ctypes.POINTER(ctypes.c_int),
    ]
    x11.XGetKeyboardMapping.restype = ctypes.POINTER(ctypes.c_ulong)
    x11.XGetKeyboardMapping.argtypes = [
        ctypes.c_void_p,
        ctypes.c_ubyte,
        ctypes.c_int,
        ctypes.POINTER(ctypes.c_int),
    ]
    x11.XChangeKeyboardMapping.argtypes = [
        ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_ulong), ctypes.c_int,
    ]  # fmt: skip
    x11.XFree.argtypes = [ctypes.c_void_p]
    x11.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
    handle = x11.XOpenDisplay(display.encode())
    if not handle:
        raise RuntimeError(f"cannot open display {display}")
    try:
        low, high = ctypes.c_int(), ctypes.c_int()
        x11.XDisplayKeycodes(handle, ctypes.byref(low), ctypes.byref(high))
        per = ctypes.c_int()
        count = high.value - low.value + 1
        table = x11.XGetKeyboardMapping(handle, low.value, count, ctypes.byref(per))
        try:
            spare = [
                low.value + index
                for index in range(count)
                if all(table[index * per.value + column] == 0 for column in range(per.value))
            ]
        finally:
            x11.XFree(table)
        wanted = [c for c in dict.fromkeys(characters) if not c.isascii()]
        if len(spare) < len(wanted):
            raise RuntimeError("not enough spare keycodes")
        for keycode, character in zip(spare, wanted, strict=False):
            # Latin-1 keysyms equal their code points; the rest are 0x01000000 + code point.
            code = ord(character)
            keysym = code if code <= 0xFF else 0x01000000 + code
            symbols = (ctypes.c_ulong * 2)(keysym, keysym)
            x11.XChangeKeyboardMapping(handle, keycode, 2, symbols, 1)
        x11.XSync(handle, 0)
    finally:
        x11.XCloseDisplay(handle)
