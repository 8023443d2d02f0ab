"""What users' own processes (the tray, the sign-off dialog) hand to the service, and how it is checked.

The service runs as root/SYSTEM and the tray as the user, who has no admin
rights; they meet in `STATE/inbox/`, a directory anyone may add files to but
nobody may touch another's files (mode 1733, like /tmp). A file is accepted
only if the account it speaks for owns it: a student cannot sign, or decline,
for somebody else.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import Any

from agent import windows_acl
from agent.desktop.inbox_entries import KINDS, MAX_ENTRY_BYTES, InboxEntry, check_entry

__all__ = ["InboxEntry", "check_entry", "ensure_inbox", "read_inbox", "set_aside", "write_entry"]

INBOX_DIR = "inbox"
REFUSED_DIR = "inbox-refused"  # beside the inbox, root only: what was refused, kept for IT
REFUSED_KEPT = 100
# Windows has no fchmod, pread, owners as uids or pwd before Python 3.13: its path uses none of them.
ON_WINDOWS = os.name == "nt"
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)  # a symlink is refused by the open itself (ELOOP): no lstat race
    | getattr(os, "O_NONBLOCK", 0)  # a FIFO opens at once instead of waiting for a writer
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


def ensure_inbox(state_dir: Path) -> Path:
    inbox = state_dir / INBOX_DIR
    inbox.mkdir(parents=True, exist_ok=True)
    if ON_WINDOWS:
        # SYSTEM and Administrators full control; users may add files and read only their own.
        windows_acl.apply(inbox, windows_acl.INBOX_ACL)
    else:
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
            if not ON_WINDOWS:  # on Windows the inbox's inherited ACL decides who reads the file
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


def uid_of_account(user: str) -> int | None:
    try:
        import pwd
    except ImportError:  # Windows: the owner's SID is checked instead (windows_acl.may_speak_for)
        return None
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return None


def read_inbox(inbox: Path) -> tuple[list[InboxEntry], list[tuple[Path, str]]]:
    """Accepted entries (oldest first) and refused ones with reasons; refused ones are set aside.

    Each entry is handled on its own: nothing one user puts here (a directory, a FIFO, a symlink
    swapped in at any moment, a sparse file of gigabytes, bytes that are not UTF-8) can raise out
    of here, block, or stop the entries behind it from being taken.
    """
    try:
        with os.scandir(inbox) as listing:
            found = [(item.name, _mtime(item)) for item in listing if not item.name.startswith(".")]
    except FileNotFoundError:
        return [], []
    accepted: list[InboxEntry] = []
    refused: list[tuple[Path, str]] = []
    for name, _ in sorted(found, key=lambda pair: pair[1]):
        path = inbox / name
        checked = _read_entry(path, name)
        if checked is None:
            continue  # gone since the listing (its writer replaced or removed it): nothing to judge
        if isinstance(checked, str):
            refused.append((path, checked))
            set_aside(path)
        else:
            accepted.append(InboxEntry(path, checked.kind, checked.user, checked.data))
    return accepted, refused


def _mtime(item: os.DirEntry[str]) -> float:
    try:
        return item.stat(follow_symlinks=False).st_mtime
    except OSError:
        return 0.0


def _read_entry(path: Path, name: str) -> InboxEntry | str | None:
    """Open without following links and without blocking, judge the open file, read a bounded amount."""
    try:
        handle = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic link"
        if exc.errno == errno.ENOENT:
            return None
        return f"cannot be opened ({errno.errorcode.get(exc.errno or 0, exc.errno)})"
    windows_owner: windows_acl.Owner | None = None
    try:
        info = os.fstat(handle)
        raw = b""
        if stat.S_ISREG(info.st_mode) and info.st_size <= MAX_ENTRY_BYTES:
            raw = _read_at_most(handle, MAX_ENTRY_BYTES + 1)
            if ON_WINDOWS:  # no uids there: the owner the file system recorded, by SID and name
                windows_owner = windows_acl.owner_of_handle(handle)
    except OSError as exc:
        return f"cannot be read ({errno.errorcode.get(exc.errno or 0, exc.errno)})"
    finally:
        os.close(handle)
    owner = None if ON_WINDOWS else info.st_uid
    checked = check_entry(name, info.st_mode, info.st_size, info.st_nlink, owner, raw, uid_of_account)
    if (
        ON_WINDOWS
        and not isinstance(checked, str)
        and not windows_acl.may_speak_for(windows_owner, checked.user)
    ):
        account = windows_owner.account if windows_owner else "nobody"
        return f"written by {account!a}, but speaks for {checked.user!a}"
    return checked


def _read_at_most(handle: int, limit: int) -> bytes:
    """A file can grow while it is read: stop at the limit whatever its size said."""
    chunks: list[bytes] = []
    remaining = limit
    while remaining > 0:
        chunk = os.read(handle, min(remaining, 64 * 1024))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def printable(name: str) -> str:
    """A file name as a log line may show it: a user chose it, so no control characters, no newlines."""
    return ascii(name)


def set_aside(path: Path) -> None:
    """Move a refused entry out of the inbox into the root-only folder beside it, so it is judged
    (and logged) once, and IT can still look at it; only the newest REFUSED_KEPT are kept."""
    refused_dir = path.parent.parent / REFUSED_DIR
    try:
        refused_dir.mkdir(mode=0o700, exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", path.name)[:100]
        os.replace(path, refused_dir / f"{time.time_ns()}-{safe}")
    except OSError:
        _remove(path)
        return
    _prune(refused_dir)


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)  # fd-based on Linux: never follows a planted link
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass


def _prune(refused_dir: Path) -> None:
    try:
        kept = sorted(os.listdir(refused_dir))
    except OSError:
        return
    for name in kept[:-REFUSED_KEPT]:
        _remove(refused_dir / name)
