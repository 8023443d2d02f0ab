"""This user's sign-off decisions: kept in their own directory, and handed to the service's inbox.

Two copies, two jobs. The local log (`$XDG_STATE_HOME/homeroom/signoffs.jsonl`, directory 0700)
is what decides whether to ask again, so it must never lose a decision: it is append-only JSON
lines, fsynced on every append, and a line torn by a crash or power cut is skipped on reading
without losing the lines before it. The inbox copy is how the decision reaches IT: the service
(root) picks up `STATE/inbox/signoff-<record_id>.json` and puts it in its outbox. When that inbox
is missing (service not installed or not yet started) or refuses us, the record waits in
`pending/` in the user's own directory and `flush_pending` tries again later. The service
deduplicates on record_id, so handing the same record over twice is harmless.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timezone
from pathlib import Path

from agent.desktop.consent.decide import Decision, SignOff
from agent.desktop.handoff import entry_name, fsync_directory, write_entry

SIGNOFFS_FILE = "signoffs.jsonl"
PENDING_DIR = "pending"
INBOX_KIND = "signoff"


def user_dir() -> Path:
    """The user's own Homeroom directory: `$XDG_STATE_HOME/homeroom`, default ~/.local/state/homeroom."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "homeroom"


def new_signoff(
    user: str,
    full_name: str,
    device_id: str | None,
    policy_id: str,
    policy_version: str,
    decision: Decision,
    now: datetime | None = None,
) -> SignOff:
    """A new record with a fresh id (the service deduplicates on it) and the time in UTC."""
    return SignOff(
        record_id=uuid.uuid4().hex,
        user=user,
        full_name=full_name,
        device_id=device_id,
        policy_id=policy_id,
        policy_version=policy_version,
        decision=decision,
        decided_at=(now or datetime.now(timezone.utc)).astimezone(timezone.utc),
    )


def _private_dir(path: Path) -> None:
    """Create the directory readable by this user only (full names are personal data)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def parse_lines(text: str) -> list[SignOff]:
    """Every well-formed record in order; a torn or damaged line is skipped, never the rest."""
    records: list[SignOff] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if isinstance(data, dict):
                records.append(SignOff.from_json(data))
        except ValueError:  # json.JSONDecodeError is a ValueError, and from_json raises it
            continue
    return records


class SignOffLog:
    """The append-only JSON-lines file of this user's decisions."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or user_dir() / SIGNOFFS_FILE

    def read(self) -> list[SignOff]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        return parse_lines(raw.decode("utf-8", errors="replace"))

    def append(self, record: SignOff) -> None:
        """Add one line and fsync it; after a torn last line, start on a fresh line first."""
        _private_dir(self.path.parent)
        line = json.dumps(record.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n"
        created = not self.path.exists()
        # O_BINARY: Windows would otherwise write "\r\n". lseek + read, not pread, which Windows
        # lacks before Python 3.13; O_APPEND still sends the write to the end.
        handle = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o600)
        try:
            size = os.fstat(handle).st_size
            if size and _byte_at(handle, size - 1) != b"\n":
                line = "\n" + line  # the torn fragment stays on its own line, where reading skips it
            os.write(handle, line.encode("utf-8"))
            os.fsync(handle)
        finally:
            os.close(handle)
        if created:
            fsync_directory(self.path.parent)


def _byte_at(handle: int, offset: int) -> bytes:
    os.lseek(handle, offset, os.SEEK_SET)
    return os.read(handle, 1)


def inbox_name(record: SignOff) -> str:
    return entry_name(INBOX_KIND, record.record_id)


def write_record_file(directory: Path, record: SignOff, mode: int = 0o644) -> Path:
    """`signoff-<id>.json`, written the way the service's inbox expects.

    See `agent.desktop.handoff.write_entry`.
    """
    return write_entry(directory, INBOX_KIND, record.record_id, record.to_json(), mode)


def hand_to_service(inbox: Path, record: SignOff, pending_dir: Path | None = None) -> bool:
    """Give the record to the service; True when it is in the inbox, False when it waits in pending/.

    Any failure to write into the inbox (missing, not a directory, permission refused, disk
    full) keeps a copy in the user's own pending directory instead of losing the decision.
    """
    try:
        if not inbox.is_dir():
            raise FileNotFoundError(f"no service inbox at {inbox}")
        write_record_file(inbox, record)
    except OSError:
        pending = pending_dir or user_dir() / PENDING_DIR
        _private_dir(pending)
        write_record_file(pending, record, mode=0o600)
        return False
    return True


def flush_pending(inbox: Path, pending_dir: Path | None = None) -> int:
    """Hand every waiting record to the service; returns how many went. Safe to call any time.

    A record leaves pending/ only after it is in the inbox; a crash in between hands it over
    again next time, which the service recognises by its record_id. A damaged pending file is
    left where it is (IT can read it) rather than deleted.
    """
    pending = pending_dir or user_dir() / PENDING_DIR
    if not inbox.is_dir() or not pending.is_dir():
        return 0
    delivered = 0
    for path in sorted(pending.glob(f"{INBOX_KIND}-*.json")):
        try:
            record = SignOff.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
        try:
            write_record_file(inbox, record)
        except OSError:
            break  # the inbox stopped taking records: try the rest next time
        path.unlink(missing_ok=True)
        delivered += 1
    return delivered


def record_decision(
    record: SignOff, inbox: Path, log: SignOffLog | None = None, pending_dir: Path | None = None
) -> bool:
    """Keep the decision locally first (it decides when to ask again), then hand it to the service.

    Returns whether the service's inbox has it now; False means it waits in pending/.
    """
    (log or SignOffLog()).append(record)
    return hand_to_service(inbox, record, pending_dir)
