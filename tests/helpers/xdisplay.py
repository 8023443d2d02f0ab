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
