"""The inbox where users' processes hand sign-offs and screen-lock results to the service."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

from agent.desktop.handoff import check_entry, ensure_inbox, read_inbox, write_entry
from tests.helpers.need import need
from tests.helpers.paths import ROOT

REGULAR = stat.S_IFREG | 0o644


def uid_table(user: str) -> int | None:
    return {"ada": 1001, "grace": 1002}.get(user)


def test_an_entry_must_be_owned_by_the_account_it_speaks_for() -> None:
    text = json.dumps({"kind": "signoff", "user": "ada", "decision": "agree"})
    accepted = check_entry("signoff-1.json", REGULAR, len(text), 1001, text, uid_table)
    assert not isinstance(accepted, str) and accepted.user == "ada"
    forged = check_entry("signoff-1.json", REGULAR, len(text), 1002, text, uid_table)
    assert forged == "written by uid 1002, but speaks for 'ada'"
    assert not isinstance(check_entry("signoff-1.json", REGULAR, len(text), 0, text, uid_table), str)


def test_malformed_entries_are_refused_with_a_reason() -> None:
    def check(name: str, text: str, mode: int = REGULAR, size: int | None = None) -> object:
        return check_entry(name, mode, len(text) if size is None else size, 1001, text, uid_table)

    assert check("signoff-1.json", "{") == "not JSON"
    assert check("signoff-1.json", "[1]") == "not a JSON object"
    assert check("signoff-1.json", '{"kind": "wipe_disk", "user": "ada"}').startswith("unknown or mismatched")
    assert check("check_now-1.json", '{"kind": "signoff", "user": "ada"}').startswith("unknown or mismatched")
    assert check("signoff-1.json", '{"kind": "signoff"}') == "no user"
    assert check("signoff-1.json", "{}", mode=stat.S_IFLNK | 0o777) == "not a regular file"
    assert check("signoff-1.json", "{}", size=10_000_000).startswith("larger than")


def test_a_real_user_can_hand_in_only_as_themselves() -> None:
    need(os.geteuid() == 0 and shutil.which("runuser") is not None, "needs root to act as the nobody user")
    # Not under pytest's tmp_path: its parents are private to root, as a real state dir's are not.
    base = Path(tempfile.mkdtemp(prefix="homeroom-inbox-"))
    base.chmod(0o755)
    try:
        _hand_in_as_nobody(base / "state")
    finally:
        shutil.rmtree(base)


def _hand_in_as_nobody(state: Path) -> None:
    state.mkdir()
    inbox = ensure_inbox(state)
    assert stat.S_IMODE(inbox.stat().st_mode) == 0o1733
    writer = (
        "import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; "
        "from agent.desktop.handoff import write_entry; "
        "write_entry(Path(sys.argv[2]), 'check_now', 'a1b2c3d4', {'user': sys.argv[3]})"
    )
    root = str(ROOT)
    for claimed in ("nobody", "root"):
        done = subprocess.run(
            ["runuser", "-u", "nobody", "--", "/usr/bin/python3", "-c", writer, root, str(inbox), claimed],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        entries, refused = read_inbox(inbox)
        if claimed == "nobody":
            assert [(e.kind, e.user) for e in entries] == [("check_now", "nobody")] and refused == []
            entries[0].path.unlink()
        else:
            assert entries == [] and "speaks for 'root'" in refused[0][1]
            assert not refused[0][0].exists(), "a refused file is removed"


def test_write_entry_is_atomic_and_readable(tmp_path: Path) -> None:
    inbox = ensure_inbox(tmp_path)
    path = write_entry(inbox, "user_results", "ffee0011", {"user": "root", "results": []})
    assert path.name == "user_results-ffee0011.json"
    assert [p.name for p in inbox.iterdir()] == [path.name], "no temp file is left behind"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
