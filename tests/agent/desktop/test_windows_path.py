"""The user's side and the inbox on the Windows path, run here with what Windows lacks taken away.

Windows has no os.fchmod, os.pread (before Python 3.13), os.getuid/geteuid, os.fchown, no pwd
module and no O_NOFOLLOW/O_NONBLOCK: with them removed and the Windows branch forced, a call to
any of them fails this suite. The ACLs the service asks Windows for are checked as data.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent import windows_acl
from agent.desktop import handoff
from agent.desktop.consent import records
from agent.desktop.consent.records import SignOffLog, flush_pending, new_signoff, record_decision
from agent.server_link import keys
from agent.windows_acl import (
    ADMINISTRATORS,
    CREATOR_OWNER,
    FILE_ADD_FILE,
    FILE_ALL_ACCESS,
    FILE_DELETE_CHILD,
    FILE_LIST_DIRECTORY,
    INBOX_ACL,
    INHERIT_ONLY,
    KEY_FILE_ACL,
    OBJECT_INHERIT,
    SYSTEM,
    USERS,
    to_sddl,
)

POSIX_ONLY = ("fchmod", "pread", "pwrite", "getuid", "geteuid", "fchown", "chown", "lchown", "getpwnam")
POSIX_FLAGS = ("O_NOFOLLOW", "O_NONBLOCK", "O_CLOEXEC")


ADA = windows_acl.Owner("S-1-5-21-1004336348-1177238915-682003330-1001", "Ada")


@dataclass
class AclRequests:
    """What the service asks Windows for, and the owner Windows would report for each open file."""

    calls: list[tuple[Path, tuple[windows_acl.Ace, ...]]] = field(default_factory=list)
    owner: windows_acl.Owner = ADA
    owners_asked: int = 0

    def owner_of_handle(self, handle: int) -> windows_acl.Owner:
        os.fstat(handle)  # a real open descriptor is asked about
        self.owners_asked += 1
        return self.owner

    def __call__(self, path: Path, aces: tuple[windows_acl.Ace, ...]) -> None:
        assert path.exists(), "an ACL is asked for an existing path"
        self.calls.append((path, aces))


@pytest.fixture
def windows(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[AclRequests]:
    """tmp_path first: pytest itself needs os.getuid to make it."""
    for name in POSIX_ONLY + POSIX_FLAGS:
        monkeypatch.delattr(os, name, raising=False)
    monkeypatch.setitem(sys.modules, "pwd", None)  # `import pwd` raises ImportError, as on Windows
    monkeypatch.setattr(handoff, "ON_WINDOWS", True)
    monkeypatch.setattr(keys, "ON_WINDOWS", True)
    monkeypatch.setattr(handoff, "_OPEN_FLAGS", os.O_RDONLY)  # what Windows' os module offers
    requests = AclRequests()
    monkeypatch.setattr(windows_acl, "apply", requests)
    monkeypatch.setattr(windows_acl, "owner_of_handle", requests.owner_of_handle)
    yield requests


def signoff(user: str = "ada") -> records.SignOff:
    return new_signoff(
        user, "Ada Lovelace", None, "aup-secondary", "ab" * 32, "agree", datetime.now(timezone.utc)
    )


def test_a_signoff_is_kept_and_handed_over_without_posix_calls(windows: AclRequests, tmp_path: Path) -> None:
    log = SignOffLog(tmp_path / "user" / "signoffs.jsonl")
    first, second = signoff(), signoff()
    log.append(first)
    with open(log.path, "ab") as torn:
        torn.write(b'{"record_id": "torn')  # a crash mid-line
    pending = tmp_path / "user" / "pending"
    inbox = tmp_path / "state" / "inbox"
    assert record_decision(second, inbox, log, pending) is False, "no inbox yet: it waits in pending/"
    assert [r.record_id for r in log.read()] == [first.record_id, second.record_id]
    assert log.path.read_bytes().count(b"\r\n") == 0

    (tmp_path / "state").mkdir()
    assert handoff.ensure_inbox(tmp_path / "state") == inbox
    assert windows.calls == [(inbox, INBOX_ACL)], "the inbox gets its ACL instead of mode 1733"
    assert flush_pending(inbox, pending) == 1
    handoff.write_entry(inbox, "check_now", "c0ffee", {"user": "ada"})

    accepted, refused = handoff.read_inbox(inbox)
    assert refused == []
    assert sorted((e.kind, e.user) for e in accepted) == [("check_now", "ada"), ("signoff", "ada")]
    (taken,) = [e for e in accepted if e.kind == "signoff"]
    assert taken.data["record_id"] == second.record_id


def test_bad_entries_are_set_aside_on_the_windows_path_too(windows: AclRequests, tmp_path: Path) -> None:
    inbox = handoff.ensure_inbox(tmp_path)
    (inbox / "signoff-dir.json").mkdir()
    (inbox / "signoff-big.json").write_bytes(b" " * (handoff.MAX_ENTRY_BYTES + 10))
    accepted, refused = handoff.read_inbox(inbox)
    reasons = {path.name: why for path, why in refused}
    assert accepted == [] and reasons.keys() == {"signoff-dir.json", "signoff-big.json"}
    # Windows refuses to open a directory as a file; Linux opens it and fstat says what it is.
    assert reasons["signoff-dir.json"] in {"not a regular file", "cannot be opened (EACCES)"}
    assert reasons["signoff-big.json"] == f"larger than {handoff.MAX_ENTRY_BYTES} bytes"
    assert list(inbox.iterdir()) == []


def test_on_windows_an_entry_speaks_only_for_its_owner(windows: AclRequests, tmp_path: Path) -> None:
    inbox = handoff.ensure_inbox(tmp_path)
    handoff.write_entry(inbox, "check_now", "forged", {"user": "grace"})
    handoff.write_entry(inbox, "check_now", "own", {"user": "ada"})  # Windows names ignore case
    accepted, refused = handoff.read_inbox(inbox)
    assert [(e.path.name, e.user) for e in accepted] == [("check_now-own.json", "ada")]
    assert [why for _, why in refused] == ["written by 'Ada', but speaks for 'grace'"]
    assert windows.owners_asked == 2
    windows.owner = windows_acl.Owner("S-1-5-18", "SYSTEM")  # the service's own account may
    handoff.write_entry(inbox, "check_now", "system", {"user": "grace"})
    accepted, _ = handoff.read_inbox(inbox)
    assert [e.path.name for e in accepted if e.user == "grace"] == ["check_now-system.json"]


def test_who_may_speak_for_whom_on_windows() -> None:
    assert windows_acl.may_speak_for(ADA, "ada") and windows_acl.may_speak_for(ADA, "ADA")
    assert not windows_acl.may_speak_for(ADA, "grace")
    assert not windows_acl.may_speak_for(None, "ada")
    assert not windows_acl.may_speak_for(windows_acl.Owner("S-1-5-21-9-9-9-1002", ""), "ada"), (
        "deleted account"
    )
    administrators = windows_acl.Owner("S-1-5-32-544", "Administrateurs")  # a French Windows
    assert windows_acl.may_speak_for(administrators, "grace")


def test_the_key_file_gets_its_acl_before_the_key_is_written(windows: AclRequests, tmp_path: Path) -> None:
    store = keys.KeyStore(tmp_path, "file", "file")
    key = Ed25519PrivateKey.generate()
    store.save(key)
    ((path, aces),) = windows.calls
    assert path == tmp_path / "device-key.tmp" and aces == KEY_FILE_ACL
    loaded = store.load()
    assert loaded is not None and loaded.public_key() == key.public_key()


def test_the_inbox_acl_lets_users_add_files_and_reach_only_their_own() -> None:
    assert to_sddl(INBOX_ACL) == (
        "D:P(A;OICI;0x1f01ff;;;SY)(A;OICI;0x1f01ff;;;BA)(A;;0x1000a2;;;BU)(A;OIIO;0x1f01ff;;;CO)"
    )
    by_trustee = {ace.trustee: ace for ace in INBOX_ACL}
    assert by_trustee[SYSTEM].rights == by_trustee[ADMINISTRATORS].rights == FILE_ALL_ACCESS
    users = by_trustee[USERS]
    assert users.rights & FILE_ADD_FILE, "users may create a file"
    assert not users.rights & (FILE_LIST_DIRECTORY | FILE_DELETE_CHILD), "nor list nor delete others' files"
    assert users.inheritance == (), "and nothing passes from the folder to the files in it"
    creator = by_trustee[CREATOR_OWNER]
    assert creator.inheritance == (OBJECT_INHERIT, INHERIT_ONLY), "each file: its creator, on that file only"


def test_the_key_file_acl_is_the_service_and_administrators_only() -> None:
    assert to_sddl(KEY_FILE_ACL) == "D:P(A;;0x1f01ff;;;SY)(A;;0x1f01ff;;;BA)"


def test_the_windows_call_is_made_only_on_windows(tmp_path: Path) -> None:
    """ctypes' WinDLL exists only there: elsewhere `apply` fails loudly instead of doing nothing."""
    with pytest.raises(AttributeError):
        windows_acl.apply(tmp_path, KEY_FILE_ACL)
    with pytest.raises(AttributeError):  # advapi32 through WinDLL, then msvcrt, Windows' C runtime
        windows_acl.owner_of_handle(0)
    with pytest.raises(AttributeError):
        windows_acl.owner_of_path(tmp_path)
