"""Where the service's log goes: the OS's own place, one line per cycle that did something.

Under systemd the service's stderr is a journald stream (systemd sets JOURNAL_STREAM to that
stream's device:inode, systemd.exec(5)); a line that starts with `<N>` is stored at syslog priority
N (sd-daemon(3)), so `journalctl -u homeroom-agent -p warning` finds the warnings, and journald
adds the time itself. On Windows the lines go to the Application event log under the source
"Homeroom" (the standard library's NTEventLogHandler, through pywin32, which the Windows build
bundles); on macOS to the unified log through the syslog socket `/var/run/syslog` (syslog(3)
messages are kept by the unified logging system: `log show --predicate 'process == "homeroom-agent"'`).
Anywhere else (a terminal, a test), or when the OS's place cannot be opened, the lines go to
stderr with their own time and level, and the first line says why.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
from collections.abc import Mapping
from typing import TextIO

# logging level → syslog priority (sd-daemon(3): <3> error, <4> warning, <6> info, <7> debug).
PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def syslog_priority(level: int) -> int:
    for threshold, priority in PRIORITIES:
        if level >= threshold:
            return priority
    return 7


class JournalFormatter(logging.Formatter):
    """`<priority>name: message`; a traceback's lines follow, each at the same priority."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{syslog_priority(record.levelno)}>"
        text = f"{record.name}: {super().format(record)}"
        return "\n".join(prefix + line for line in text.splitlines())


def on_journal(environ: Mapping[str, str], stream: TextIO) -> bool:
    """Whether `stream` is the journald stream systemd connected (not merely inherited the variable)."""
    device_inode = environ.get("JOURNAL_STREAM", "")
    device, _, inode = device_inode.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError):
        return False
    return (info.st_dev, info.st_ino) == (int(device), int(inode))


EVENT_LOG_SOURCE = "Homeroom"
MACOS_SYSLOG_SOCKET = "/var/run/syslog"
SYSLOG_FORMAT = "homeroom-agent: %(name)s: %(message)s"


def windows_event_log() -> tuple[logging.Handler | None, str]:
    """The Application event log's handler, or None and why (pywin32 missing: not the Windows build)."""
    handler = logging.handlers.NTEventLogHandler(EVENT_LOG_SOURCE)
    if getattr(handler, "_welu", None) is None:  # the handler keeps None when win32evtlogutil is absent
        return None, "the Windows event log cannot be written (pywin32 is not installed)"
    return handler, ""


def unified_log(address: str = MACOS_SYSLOG_SOCKET) -> tuple[logging.Handler | None, str]:
    """macOS's syslog socket (into the unified log), or None and why."""
    try:
        handler = logging.handlers.SysLogHandler(
            address=address, facility=logging.handlers.SysLogHandler.LOG_DAEMON
        )
    except OSError as exc:
        return None, f"the unified log's socket {address} cannot be opened ({exc.strerror or exc})"
    opened = getattr(handler, "socket", None)
    if opened is None or opened.fileno() == -1:  # Python 3.11 keeps a closed socket, not raising
        handler.close()
        return None, f"the unified log's socket {address} cannot be opened"
    handler.setFormatter(logging.Formatter(SYSLOG_FORMAT))
    return handler, ""


def os_log_handler(os_name: str) -> tuple[logging.Handler | None, str]:
    """The OS's own place for the service's log where it has one besides stderr."""
    if os_name == "windows":
        return windows_event_log()
    if os_name == "macos":
        return unified_log()
    return None, ""


def configure_service_logging(
    stream: TextIO, environ: Mapping[str, str] | None = None, os_name: str = "linux"
) -> None:
    handler: logging.Handler
    found, why_not = os_log_handler(os_name)
    if found is not None:
        handler = found
    else:
        handler = logging.StreamHandler(stream)
        journal = on_journal(os.environ if environ is None else environ, stream)
        handler.setFormatter(JournalFormatter() if journal else logging.Formatter(PLAIN_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    if why_not:
        logging.getLogger("homeroom").warning("logging to stderr: %s", why_not)


def cycle_line(
    checked: bool, reported: bool, heartbeat: bool, delivered: int, rejected: int, queued: int
) -> str | None:
    """The cycle's one INFO line, or None for a cycle that did nothing (the loop wakes every 5 s)."""
    if not (checked or reported or heartbeat or delivered or rejected):
        return None
    parts = [
        f"checked: {'yes' if checked else 'no'}",
        f"report queued: {'yes' if reported else 'no'}",
        f"heartbeat queued: {'yes' if heartbeat else 'no'}",
        f"sent: {delivered}",
    ]
    if rejected:
        parts.append(f"refused by the server: {rejected}")
    parts.append(f"still queued: {queued}")
    return "cycle: " + ", ".join(parts)
