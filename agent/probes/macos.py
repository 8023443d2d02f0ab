"""Reading macOS's own formats, shared by every macOS check: property lists and the OS version.

`read_file` returns text, which ruins a binary plist, so a binary one is read
again through `plutil`, which converts either form to XML.
"""

from __future__ import annotations

import plistlib
from dataclasses import dataclass
from typing import Any

from agent.probes import NOT_FOUND, Probes

PLUTIL = "/usr/bin/plutil"
BINARY_PLIST_MAGIC = "bplist"


@dataclass(frozen=True)
class PlistRead:
    """A property list read from disk, or why it could not be."""

    path: str
    data: dict[str, Any] | None
    error: str | None = None
    mtime: float | None = None

    @property
    def missing(self) -> bool:
        return self.error == NOT_FOUND


def plutil_argv(path: str) -> list[str]:
    return [PLUTIL, "-convert", "xml1", "-o", "-", path]


def parse_plist(text: str) -> dict[str, Any] | None:
    """The top-level dictionary of an XML property list, or None when it is not one."""
    try:
        data = plistlib.loads(text.encode("utf-8"))
    except (plistlib.InvalidFileException, ValueError, TypeError, OverflowError):
        return None
    return data if isinstance(data, dict) else None


def read_plist(probes: Probes, path: str) -> PlistRead:
    """Reads a plist in either form; `plutil` is only asked when the file is binary."""
    content = probes.read_file(path)
    if content.text is None:
        return PlistRead(path, None, content.error or "no content", content.mtime)
    text = content.text
    if text.startswith(BINARY_PLIST_MAGIC):
        converted = probes.run(plutil_argv(path))
        if not converted.ok:
            return PlistRead(path, None, f"binary plist not converted: {converted.describe()}", content.mtime)
        text = converted.stdout
    data = parse_plist(text)
    if data is None:
        return PlistRead(path, None, "not a property list dictionary", content.mtime)
    return PlistRead(path, data, None, content.mtime)


def macos_major(os_version: str) -> int | None:
    head = os_version.strip().split(".", 1)[0]
    return int(head) if head.isdigit() else None
