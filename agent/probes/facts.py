"""Which OS this is, and whether we run with admin rights: read once, in one place.

Every per-OS decision in the agent starts from a `PlatformFacts`. A diagnostic
bundle carries the facts of the machine it was made on, so replaying it picks
that machine's OS, not ours.
"""

from __future__ import annotations

import getpass
import os
import platform
import socket
import sys
from dataclasses import asdict, dataclass
from typing import Any, Literal

OsName = Literal["windows", "macos", "linux"]
OS_NAMES: tuple[OsName, ...] = ("windows", "macos", "linux")
SERVICE_ACCOUNTS = frozenset({"root", "system", "local system", "localsystem", "0"})


@dataclass(frozen=True)
class PlatformFacts:
    os: OsName
    os_version: str
    kernel: str
    machine: str
    hostname: str
    user: str
    is_admin: bool
    # The user's desktop (XDG_CURRENT_DESKTOP, e.g. "ubuntu:GNOME") and home: per-user
    # settings such as the screen lock live there. Empty for a service with no session.
    desktop: str = ""
    home: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def reader_is_admin(self) -> bool:
        """Whether the person who will read the advice can act on it with admin rights.

        A service account (root, SYSTEM, "HOST$") has the rights but is nobody's
        reader: what it finds is shown to a student in the tray, so it is told
        as to someone without admin rights.
        """
        name = self.user.casefold()
        return self.is_admin and name not in SERVICE_ACCOUNTS and not name.endswith("$")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PlatformFacts:
        if data.get("os") not in OS_NAMES:
            raise ValueError(f"platform.os must be one of {', '.join(OS_NAMES)}")
        return cls(
            os=data["os"],
            os_version=str(data.get("os_version", "")),
            kernel=str(data.get("kernel", "")),
            machine=str(data.get("machine", "")),
            hostname=str(data.get("hostname", "")),
            user=str(data.get("user", "")),
            is_admin=bool(data.get("is_admin", False)),
            desktop=str(data.get("desktop", "")),
            home=str(data.get("home", "")),
        )


def os_name_for(sys_platform: str) -> OsName:
    if sys_platform.startswith("win"):
        return "windows"
    if sys_platform == "darwin":
        return "macos"
    return "linux"


def _is_admin(os_name: OsName) -> bool:
    if os_name == "windows":
        try:
            import ctypes

            return bool(ctypes.windll.shell32.IsUserAnAdmin())  # type: ignore[attr-defined]
        except (AttributeError, OSError):
            return False
    return os.geteuid() == 0


def _os_version(os_name: OsName) -> str:
    if os_name == "macos":
        return platform.mac_ver()[0]
    if os_name == "windows":
        return platform.version()
    try:
        release = platform.freedesktop_os_release()
    except OSError:
        return platform.release()
    return release.get("PRETTY_NAME") or release.get("NAME", "Linux")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def detect() -> PlatformFacts:
    os_name = os_name_for(sys.platform)
    return PlatformFacts(
        os=os_name,
        os_version=_os_version(os_name),
        kernel=platform.release(),
        machine=platform.machine(),
        hostname=socket.gethostname(),
        user=_user(),
        is_admin=_is_admin(os_name),
        desktop=os.environ.get("XDG_CURRENT_DESKTOP", ""),
        home=os.path.expanduser("~"),
    )
