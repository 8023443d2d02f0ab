"""What users' own processes (the tray, the sign-off dialog) hand to the service, and how it is checked.

The service runs as root/SYSTEM and the tray as the user, who has no admin
rights; they meet in `STATE/inbox/`, a directory anyone may add files to but
nobody may touch another's files (mode 1733, like /tmp). A file is accepted
only if the account it speaks for owns it: a student cannot sign, or decline,
for somebody else.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INBOX_DIR = "inbox"
KINDS = frozenset({"signoff", "user_results", "check_now"})
MAX_ENTRY_BYTES = 256 * 1024


@dataclass(frozen=True)
class InboxEntry:
    path: Path
    kind: str
    user: str
    data: dict[str, Any]


def ensure_inbox(state_dir: Path) -> Path:
    inbox = state_dir / INBOX_DIR
    inbox.mkdir(parents=True, exist_ok=True)
    if os.name == "posix":
        inbox.chmod(0o1733)  # sticky, writable by all, listable by the service only
        state_dir.chmod(state_dir.stat().st_mode | 0o055)  # users must reach the inbox and status.json
    return inbox


def entry_name(kind: str, record_id: str) -> str:
    return f"{kind}-{record_id}.json"


def write_entry(inbox: Path, kind: str, record_id: str, data: dict[str, Any], mode: int = 0o644) -> Path:
    """Atomically: a hidden temp name first, fsync, then a rename, so the service never reads half a
    file; the directory is fsynced so the rename survives a power cut. 0644 lets the root service read
    it whatever the user's umask (a user's private copy passes 0o600)."""
    if kind not in KINDS:
        raise ValueError(f"unknown inbox kind {kind!r}")
    final = inbox / entry_name(kind, record_id)
    handle, temporary = tempfile.mkstemp(dir=inbox, prefix=f".{final.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump({**data, "kind": kind}, out, ensure_ascii=False, sort_keys=True)
            out.flush()
            os.fchmod(out.fileno(), mode)
            os.fsync(out.fileno())
        os.replace(temporary, final)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    fsync_directory(inbox)
    return final


def fsync_directory(path: Path) -> None:
    """Make a file's creation or rename durable, not only its contents (a no-op where unsupported)."""
    try:
        handle = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def check_entry(
    name: str, mode: int, size: int, owner_uid: int | None, text: str, uid_of: Callable[[str], int | None]
) -> InboxEntry | str:
    """The entry, or why it is refused. Pure: the caller did the stat and the read."""
    if not stat.S_ISREG(mode):
        return "not a regular file"
    if size > MAX_ENTRY_BYTES:
        return f"larger than {MAX_ENTRY_BYTES} bytes"
    try:
        data = json.loads(text)
    except ValueError:
        return "not JSON"
    if not isinstance(data, dict):
        return "not a JSON object"
    kind = data.get("kind")
    if kind not in KINDS or not name.startswith(f"{kind}-"):
        return f"unknown or mismatched kind {kind!r}"
    user = data.get("user")
    if not isinstance(user, str) or not user:
        return "no user"
    if owner_uid is not None and owner_uid != 0 and uid_of(user) != owner_uid:
        return f"written by uid {owner_uid}, but speaks for {user!r}"
    return InboxEntry(Path(name), str(kind), user, data)


def uid_of_account(user: str) -> int | None:
    try:
        import pwd
    except ImportError:  # Windows: the inbox's ACL does this job
        return None
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return None


def read_inbox(inbox: Path) -> tuple[list[InboxEntry], list[tuple[Path, str]]]:
    """Accepted entries (oldest first) and refused files with reasons. Refused files are removed."""
    accepted: list[InboxEntry] = []
    refused: list[tuple[Path, str]] = []
    try:
        names = sorted(
            os.listdir(inbox), key=lambda n: (inbox / n).stat().st_mtime if (inbox / n).exists() else 0
        )
    except FileNotFoundError:
        return [], []
    for name in names:
        if name.startswith("."):
            continue
        path = inbox / name
        try:
            info = path.lstat()
            text = path.read_text(encoding="utf-8") if stat.S_ISREG(info.st_mode) else ""
        except (OSError, UnicodeDecodeError) as exc:
            refused.append((path, f"unreadable: {exc}"))
            path.unlink(missing_ok=True)
            continue
        owner = info.st_uid if os.name == "posix" else None
        checked = check_entry(name, info.st_mode, info.st_size, owner, text, uid_of_account)
        if isinstance(checked, str):
            refused.append((path, checked))
            path.unlink(missing_ok=True)
        else:
            accepted.append(InboxEntry(path, checked.kind, checked.user, checked.data))
    return accepted, refused
