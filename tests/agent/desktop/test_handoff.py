"""The inbox where users' processes hand sign-offs and screen-lock results to the service."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from agent.desktop.handoff import check_entry, ensure_inbox, read_inbox, write_entry
from agent.desktop.inbox_entries import json_depth
from tests.helpers.need import need
from tests.helpers.paths import ROOT

REGULAR = stat.S_IFREG | 0o644


def uid_table(user: str) -> int | None:
    return {"ada": 1001, "grace": 1002}.get(user)


SIGNOFF = {
    "kind": "signoff",
    "user": "ada",
    "record_id": "0123456789abcdef",
    "full_name": "Ada Lovelace",
    "device_id": None,
    "policy_id": "aup-secondary",
    "policy_version": "ab" * 32,
    "decision": "agree",
    "decided_at": "2026-11-23T09:00:00+00:00",
}


def check(name: str, data: object, owner: int = 1001, mode: int = REGULAR, links: int = 1) -> object:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return check_entry(name, mode, len(raw), links, owner, raw, uid_table)


def test_an_entry_must_be_owned_by_the_account_it_speaks_for() -> None:
    accepted = check("signoff-1.json", SIGNOFF)
    assert not isinstance(accepted, str) and accepted.user == "ada"
    assert check("signoff-1.json", SIGNOFF, owner=1002) == "written by uid 1002, but speaks for 'ada'"
    assert not isinstance(check("signoff-1.json", SIGNOFF, owner=0), str)


def test_malformed_entries_are_refused_with_a_reason() -> None:
    assert check("signoff-1.json", b"{") == "not JSON"
    assert check("signoff-1.json", [1]) == "not a JSON object"
    assert check("signoff-1.json", {"kind": "wipe_disk", "user": "ada"}) == "its kind does not match its name"
    assert check("check_now-1.json", {"kind": "signoff", "user": "ada"}) == "its kind does not match its name"
    assert check("wipe_disk-1.json", {"kind": "wipe_disk", "user": "ada"}) == "not named kind-id.json"
    assert check("signoff-1.json", {"kind": "signoff"}) == "no valid user"
    assert check("signoff-1.json", {}, mode=stat.S_IFLNK | 0o777) == "not a regular file"
    assert check("signoff-1.json", {}, mode=stat.S_IFIFO | 0o644) == "not a regular file"
    assert check("signoff-1.json", SIGNOFF, links=2) == "a hard link to another file"
    big = check_entry("signoff-1.json", REGULAR, 3 * 2**30, 1, 1001, b"", uid_table)
    assert isinstance(big, str) and big.startswith("larger than")


def test_every_field_is_checked_before_the_service_queues_or_logs_it() -> None:
    def signoff(**fields: object) -> object:
        return check("signoff-1.json", {**SIGNOFF, **fields})

    assert signoff(record_id="\ud800") == "record_id is not valid Unicode"
    assert signoff(full_name="Ada \udc80") == "full_name is not valid Unicode"
    assert signoff(full_name="Ada\x00") == "full_name holds a NUL character"
    assert signoff(full_name="x" * 201) == "full_name must be 0-200 characters"
    assert signoff(record_id="../../etc") == "record_id must be letters, digits, '-' or '_'"
    assert signoff(policy_version=["not", "text"]) == "policy_version is not a string"
    assert signoff(decision="maybe") == "decision must be 'agree' or 'decline'"
    assert signoff(decided_at="yesterday") == "decided_at is not an ISO 8601 time"
    assert signoff(decided_at="2026-11-23T09:00:00") == "decided_at has no time zone"
    assert check("signoff-1.json", {**SIGNOFF, "user": "ada\ud800"}) == "user is not valid Unicode"
    assert check("signoff-1.json", b'{"kind": "signoff", "user": "\xff"}') == "not UTF-8"
    accepted = signoff(extra="ignored")
    assert not isinstance(accepted, str) and "extra" not in accepted.data


def test_user_results_are_rebuilt_from_checked_fields_and_bounded_in_depth() -> None:
    lock = {"id": "screen_lock", "title": "Screen lock", "status": "pass", "summary": "5 min", "evidence": {}}

    def results(*items: object) -> object:
        return check("user_results-1.json", {"kind": "user_results", "user": "ada", "results": list(items)})

    accepted = results(lock)
    assert not isinstance(accepted, str) and accepted.data["results"][0]["duration_ms"] == 0
    assert results({**lock, "id": "firewall"}) == "results[0] is not a check the user's session runs"
    assert results({**lock, "status": "green"}) == "results[0].status is not a status"
    assert results({**lock, "evidence": {"k": "\ud800"}}) == "results[0].evidence is not valid Unicode"
    assert results({**lock, "evidence": {str(i): i for i in range(101)}}).startswith(
        "results[0].evidence must"
    )
    assert results({**lock, "duration_ms": True}) == "results[0].duration_ms must be 0-3600000"
    nested: object = "deep"
    for _ in range(300):
        nested = {"n": nested}
    assert results({**lock, "evidence": {"n": nested}}) == "nested deeper than 10 levels"
    # Deep enough that the JSON parser itself would raise RecursionError, well inside the size limit.
    parser_breaker = (
        b'{"kind": "user_results", "user": "ada", "results": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    )
    assert check("user_results-1.json", parser_breaker) == "nested deeper than 10 levels"
    assert json_depth('{"a": "[[[[{{{{"}') == 1, "brackets inside strings do not count"


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
            assert not refused[0][0].exists(), "a refused file leaves the inbox"
            assert [p.name.split("-", 1)[1] for p in (state / "inbox-refused").iterdir()] == [
                "check_now-a1b2c3d4.json"
            ], "and is kept for IT where no user can reach it"
            assert stat.S_IMODE((state / "inbox-refused").stat().st_mode) == 0o700


def test_write_entry_is_atomic_and_readable(tmp_path: Path) -> None:
    inbox = ensure_inbox(tmp_path)
    path = write_entry(inbox, "user_results", "ffee0011", {"user": "root", "results": []})
    assert path.name == "user_results-ffee0011.json"
    assert [p.name for p in inbox.iterdir()] == [path.name], "no temp file is left behind"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


SWAPPER = """
import os, sys, time
inbox, fifo, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
os.mkfifo(fifo)
entry = inbox + '/signoff-race.json'
end = time.time() + seconds
i = 0
while time.time() < end:
    i += 1
    with open(f'{inbox}/.f{i}', 'w') as out:
        out.write('{}')
    os.rename(f'{inbox}/.f{i}', entry)
    os.symlink(fifo, f'{inbox}/.l{i}')
    os.rename(f'{inbox}/.l{i}', entry)
"""


def test_a_symlink_to_a_fifo_swapped_in_at_any_moment_never_blocks_the_reader() -> None:
    """A real user swaps a regular file and a symlink to a FIFO as fast as they can, while the
    service's reader takes the inbox over and over: whichever it finds at open time, it never
    waits for a FIFO writer (checking with lstat and then opening the path lost this race)."""
    need(
        os.geteuid() == 0 and shutil.which("runuser") is not None, "needs root to add and act as a real user"
    )
    user = f"hrinbox{os.urandom(4).hex()}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", user], check=True)
    base = Path(tempfile.mkdtemp(prefix="homeroom-race-"))
    base.chmod(0o755)
    fifo = base / "elsewhere" / "target.fifo"  # the user's own place, outside the inbox
    swapper: subprocess.Popen[bytes] | None = None
    try:
        (base / "state").mkdir()
        inbox = ensure_inbox(base / "state")
        fifo.parent.mkdir()
        shutil.chown(fifo.parent, user)
        swapper = subprocess.Popen(
            ["runuser", "-u", user, "--", "/usr/bin/python3", "-c", SWAPPER, str(inbox), str(fifo), "6"]
        )
        passes = [0]
        progress = [time.monotonic()]
        done = threading.Event()

        def take_over_and_over() -> None:
            while not done.is_set():
                read_inbox(inbox)
                passes[0] += 1
                progress[0] = time.monotonic()

        reader = threading.Thread(target=take_over_and_over, daemon=True)
        reader.start()
        blocked = False
        while swapper.poll() is None:
            if time.monotonic() - progress[0] > 2:
                # Slow, or blocked on the FIFO? Opening it for writing without blocking succeeds only
                # when someone holds it open for reading (and releases them); ENXIO means no one does,
                # so the reader was only starved of CPU by a loaded machine.
                try:
                    os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
                    blocked = True
                    break
                except OSError:
                    progress[0] = time.monotonic()
            time.sleep(0.05)
        done.set()
        swapper.wait(30)
        reader.join(10)
        assert not blocked, f"the reader blocked on the FIFO after {passes[0]} passes"
        assert passes[0] > 100, "the race was run many times"
    finally:
        if swapper is not None and swapper.poll() is None:
            swapper.kill()
            swapper.wait(10)
        subprocess.run(["userdel", user], check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def test_what_the_tray_really_hands_over_passes_the_checks(tmp_path: Path) -> None:
    """The checks must not refuse honest entries: the tray's own user-context results, for real."""
    from agent.desktop.tray import run_user_checks

    inbox = ensure_inbox(tmp_path)
    results = run_user_checks(tmp_path)
    assert [r["id"] for r in results] == ["screen_lock"]
    write_entry(inbox, "user_results", "real1", {"user": "root", "results": results})
    write_entry(inbox, "check_now", "real2", {"user": "root"})
    accepted, refused = read_inbox(inbox)
    assert refused == [] and [e.kind for e in accepted] == ["user_results", "check_now"]
    assert accepted[0].data["results"] == results
