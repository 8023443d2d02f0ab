"""Locking the screen with the OS's own lock, behind one small function: nothing of Homeroom's own
stands between a thief and the laptop's login, and nothing new can be got wrong.

- Linux: `loginctl lock-sessions` (systemd-logind asks every session's screen locker to lock; the
  service runs as root, which may).
- Windows: `LockWorkStation` (user32), which works only inside the user's desktop session, so the
  tray (running as the user) calls it; the service (session 0) cannot.
- macOS: `pmset displaysleepnow`, which locks when "Require password after sleep" is immediate,
  the district's screen-lock requirement; run from the user's session by the tray as well.
"""

from __future__ import annotations

import ctypes
import subprocess
from collections.abc import Callable, Sequence

Runner = Callable[[Sequence[str]], int]


def lock_command(os_name: str) -> list[str] | None:
    """Pure: the command that locks the screen, or None where it is an API call (Windows)."""
    if os_name == "linux":
        return ["loginctl", "lock-sessions"]
    if os_name == "macos":
        return ["pmset", "displaysleepnow"]
    return None


def _run(argv: Sequence[str]) -> int:
    try:
        done = subprocess.run(list(argv), stdin=subprocess.DEVNULL, capture_output=True, timeout=15)
        return done.returncode
    except (OSError, subprocess.TimeoutExpired):
        return -1


def lock_screen(os_name: str, run: Runner = _run) -> bool:
    """Lock now; True when the OS accepted. Never raises: a failed lock is logged by the caller."""
    command = lock_command(os_name)
    if command is not None:
        return run(command) == 0
    if os_name == "windows":
        try:
            user32 = ctypes.WinDLL("user32")  # type: ignore[attr-defined]
        except (AttributeError, OSError):
            return False
        return bool(user32.LockWorkStation())
    return False
