"""This user's sign-off log and the hand-off to the service's inbox: nothing lost, nothing half-written."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from agent.desktop.consent import records
from agent.desktop.consent.decide import SignOff
from agent.desktop.consent.records import (
    SignOffLog,
    flush_pending,
    hand_to_service,
    new_signoff,
    record_decision,
    user_dir,
)
from tests.helpers.need import need

AT = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)
NOBODY = 65534


def make(decision: str = "agree") -> SignOff:
    return new_signoff("ada", "Ada Lovelace", "dev-1", "staff-aup", "a" * 64, decision, now=AT)  # type: ignore[arg-type]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    return tmp_path


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    path = tmp_path / "service" / "inbox"
    path.mkdir(parents=True)
    os.chmod(path, 0o1733)  # noqa: S103  # the service's inbox mode, like /tmp
    return path


def test_default_location_follows_xdg_state_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert SignOffLog().path == home / "xdg" / "homeroom" / "signoffs.jsonl"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(home / "h"))
    assert user_dir() == home / "h" / ".local" / "state" / "homeroom"


def test_new_signoff_has_a_fresh_safe_id_and_utc_time() -> None:
    first, second = make(), make()
    assert first.record_id != second.record_id and len(first.record_id) == 32
    assert first.decided_at.tzinfo == timezone.utc
    assert new_signoff("a", "A B", None, "p", "v", "agree").decided_at.tzinfo == timezone.utc


def test_append_and_read_back_in_order_with_private_modes(home: Path) -> None:
    log = SignOffLog()
    written = [make(), make("decline"), make()]
    for record in written:
        log.append(record)
    assert log.read() == written
    assert mode(log.path) == 0o600
    assert mode(log.path.parent) == 0o700
    assert len(log.path.read_text().splitlines()) == 3


def test_existing_directory_is_made_private(home: Path) -> None:
    directory = home / "xdg" / "homeroom"
    directory.mkdir(parents=True, mode=0o755)
    SignOffLog().append(make())
    assert mode(directory) == 0o700


def test_missing_file_reads_as_no_decisions(home: Path) -> None:
    assert SignOffLog().read() == []


def test_torn_last_line_is_skipped_and_earlier_lines_kept(home: Path) -> None:
    log = SignOffLog()
    first, second = make(), make()
    log.append(first)
    log.append(second)
    whole = json.dumps(make().to_json())
    with log.path.open("a") as out:
        out.write(whole[: len(whole) // 2])  # a crash in the middle of a write
    assert log.read() == [first, second]
    third = make("decline")
    log.append(third)  # starts on a fresh line: the fragment stays alone and is skipped
    assert log.read() == [first, second, third]


def test_damaged_lines_anywhere_are_skipped(home: Path) -> None:
    log = SignOffLog()
    good = make()
    log.path.parent.mkdir(parents=True)
    lines = [
        "not json",
        json.dumps(good.to_json()),
        "[1, 2]",
        json.dumps({**good.to_json(), "decision": "perhaps"}),
        "\x00\x00\x00",
        "",
    ]
    log.path.write_text("\n".join(lines) + "\n")
    assert log.read() == [good]


def test_invalid_utf8_does_not_lose_good_lines(home: Path) -> None:
    log = SignOffLog()
    good = make()
    log.append(good)
    with log.path.open("ab") as out:
        out.write(b"\xff\xfe{torn")
    assert log.read() == [good]


def test_append_fsyncs_the_line(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(records.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    SignOffLog().append(make())
    assert synced, "append must fsync before returning"


# --- the inbox ------------------------------------------------------------------------------


def test_hand_to_service_writes_one_readable_file_named_by_record_id(home: Path, inbox: Path) -> None:
    record = make()
    assert hand_to_service(inbox, record) is True
    target = inbox / f"signoff-{record.record_id}.json"
    assert [p.name for p in inbox.iterdir()] == [target.name]  # no temp file left behind
    assert mode(target) == 0o644
    assert SignOff.from_json(json.loads(target.read_text())) == record


def test_inbox_write_is_atomic(home: Path, inbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash before the rename leaves no record file and no temp file, only a pending copy."""

    def crash(*_args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(records.os, "replace", crash)
    with pytest.raises(OSError):
        records.write_record_file(inbox, make())
    assert list(inbox.iterdir()) == []


def test_temp_files_are_hidden_from_the_service(
    home: Path, inbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    real_replace = os.replace

    def spy(source: str, target: Path) -> None:
        seen.append(Path(source).name)
        real_replace(source, target)

    monkeypatch.setattr(records.os, "replace", spy)
    records.write_record_file(inbox, make())
    assert seen and seen[0].startswith(".") and seen[0].endswith(".tmp")


def test_missing_inbox_keeps_a_pending_copy_then_flushes_once(home: Path, tmp_path: Path) -> None:
    inbox = tmp_path / "not-yet" / "inbox"
    record = make()
    assert hand_to_service(inbox, record) is False
    pending = user_dir() / "pending"
    assert [p.name for p in pending.iterdir()] == [f"signoff-{record.record_id}.json"]
    assert mode(pending) == 0o700 and mode(next(pending.iterdir())) == 0o600

    assert flush_pending(inbox) == 0  # still no service: nothing lost, nothing moved
    inbox.mkdir(parents=True)
    assert flush_pending(inbox) == 1
    assert list(pending.iterdir()) == []
    delivered = inbox / f"signoff-{record.record_id}.json"
    assert SignOff.from_json(json.loads(delivered.read_text())) == record
    assert flush_pending(inbox) == 0  # once


def as_nobody(action: Callable[[], bool]) -> bool:
    """Run `action` in a child process as the unprivileged 'nobody' user; its answer comes back."""
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        code = 3
        try:
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            code = 0 if action() else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    code = os.waitstatus_to_exitcode(status)
    assert code in (0, 1), f"the child failed (exit {code})"
    return code == 0


@pytest.fixture
def shared_base() -> Iterator[Path]:
    """A directory 'nobody' can reach (pytest's own tmp is 0700 root)."""
    with tempfile.TemporaryDirectory() as name:
        os.chmod(name, 0o755)  # noqa: S103
        yield Path(name)


@pytest.fixture
def as_root() -> None:
    """Skipped on a developer's machine run without root; in CI (as root) its lack fails."""
    need(os.geteuid() == 0, "needs root to act as another user")


@pytest.mark.usefixtures("as_root")
def test_an_ordinary_user_hands_over_through_the_sticky_inbox(shared_base: Path) -> None:
    inbox = shared_base / "inbox"
    inbox.mkdir()
    os.chmod(inbox, 0o1733)  # noqa: S103
    pending = shared_base / "user"
    pending.mkdir()
    os.chown(pending, NOBODY, NOBODY)
    record = make()
    assert as_nobody(lambda: hand_to_service(inbox, record, pending_dir=pending / "pending"))
    delivered = inbox / f"signoff-{record.record_id}.json"
    assert delivered.stat().st_uid == NOBODY and mode(delivered) == 0o644
    assert not (pending / "pending").exists()


@pytest.mark.usefixtures("as_root")
def test_unwritable_inbox_keeps_a_pending_copy(shared_base: Path) -> None:
    """As an ordinary user facing a root-owned 0755 inbox (service misconfigured): pending, not lost."""
    inbox = shared_base / "inbox"
    inbox.mkdir(mode=0o755)
    pending = shared_base / "user"
    pending.mkdir()
    os.chown(pending, NOBODY, NOBODY)
    record = make()
    assert not as_nobody(lambda: hand_to_service(inbox, record, pending_dir=pending / "pending"))
    assert (pending / "pending" / f"signoff-{record.record_id}.json").exists()
    assert list(inbox.iterdir()) == []


def test_inbox_that_is_a_file_is_treated_as_missing(home: Path, tmp_path: Path) -> None:
    bogus = tmp_path / "inbox"
    bogus.write_text("")
    assert hand_to_service(bogus, make()) is False


def test_flush_is_idempotent_when_delivered_twice(home: Path, inbox: Path, tmp_path: Path) -> None:
    """A crash after the inbox write but before the pending file is removed: same name, same body."""
    record = make()
    hand_to_service(tmp_path / "missing", record)
    pending_file = user_dir() / "pending" / f"signoff-{record.record_id}.json"
    kept = pending_file.read_bytes()
    assert flush_pending(inbox) == 1
    pending_file.write_bytes(kept)  # as if the unlink never happened
    assert flush_pending(inbox) == 1
    assert [p.name for p in inbox.iterdir()] == [f"signoff-{record.record_id}.json"]


def test_flush_leaves_damaged_pending_files_alone(home: Path, inbox: Path, tmp_path: Path) -> None:
    pending = user_dir() / "pending"
    pending.mkdir(parents=True)
    (pending / "signoff-broken.json").write_text("{torn")
    hand_to_service(tmp_path / "missing", make())
    assert flush_pending(inbox) == 1
    assert [p.name for p in pending.iterdir()] == ["signoff-broken.json"]


def test_flush_stops_when_the_inbox_stops_taking_records(
    home: Path, inbox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(3):
        hand_to_service(tmp_path / "missing", make())
    calls = 0
    real = records.write_record_file

    def flaky(directory: Path, record: SignOff, mode: int = 0o644) -> Path:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise OSError("inbox went away")
        return real(directory, record, mode)

    monkeypatch.setattr(records, "write_record_file", flaky)
    assert flush_pending(inbox) == 1
    assert len(list((user_dir() / "pending").iterdir())) == 2


def test_record_decision_keeps_it_locally_and_hands_it_over(home: Path, inbox: Path, tmp_path: Path) -> None:
    record = make()
    assert record_decision(record, inbox) is True
    assert SignOffLog().read() == [record]
    assert (inbox / f"signoff-{record.record_id}.json").exists()
    offline = make("decline")
    assert record_decision(offline, tmp_path / "missing") is False
    assert SignOffLog().read() == [record, offline]
