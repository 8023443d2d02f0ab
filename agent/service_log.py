"""Where the service's log goes: the OS's own place, one line per cycle that did something.

Under systemd the service's stderr is a journald stream (systemd sets JOURNAL_STREAM to that
stream's device:inode, systemd.exec(5)); a line that starts with `<N>` is stored at syslog priority
N (sd-daemon(3)), so `journalctl -u homeroom-agent -p warning` finds the warnings, and journald
adds the time itself. Anywhere else (a terminal, a test) the lines carry their own time and level.
"""

from __future__ import annotations

import logging
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


def configure_service_logging(stream: TextIO, environ: Mapping[str, str] | None = None) -> None:
    handler = logging.StreamHandler(stream)
    journal = on_journal(os.environ if environ is None else environ, stream)
    handler.setFormatter(JournalFormatter() if journal else logging.Formatter(PLAIN_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


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
