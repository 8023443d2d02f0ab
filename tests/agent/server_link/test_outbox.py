"""The outbox: real SQLite files in tmp_path, real processes for kill -9 and two writers at once."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import OutboxError, OutboxNotUsable
from agent.server_link.outbox import KIND_RULES, OUTBOX_FILE, SCHEMA_VERSION, KindRule, Outbox, encode_body
from tests.helpers.paths import ROOT

PUT_LOOP = ROOT / "tests" / "helpers" / "put_loop.py"
T0 = 1_795_003_200.0  # 2026-11-19 12:00 UTC


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def padded(size: int, **fields: object) -> dict[str, object]:
    """A body whose stored JSON is exactly `size` bytes."""
    body: dict[str, object] = {**fields, "pad": ""}
    body["pad"] = "x" * (size - len(encode_body(body).encode()))
    assert len(encode_body(body).encode()) == size
    return body


def ids(items: list) -> list[str]:
    return [item.record_id for item in items]


def stored_ids(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute("SELECT record_id FROM outbox ORDER BY seq")]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / OUTBOX_FILE


@pytest.fixture
def outbox(path: Path, clock: FakeClock):
    box = Outbox(path, clock=clock)
    yield box
    box.close()


# ---- order and due times -------------------------------------------------------------------------------


def test_next_batch_gives_the_head_of_each_kind_in_insertion_order(outbox: Outbox) -> None:
    r1 = outbox.put("report", {"n": 1})
    h1 = outbox.put("heartbeat", {"n": 1})
    r2 = outbox.put("report", {"n": 2})
    s1 = outbox.put("signoff", {"n": 1})

    first = outbox.next_batch()
    assert ids(first) == [r1, h1, s1]
    assert first[0].kind == "report" and first[0].body == {"n": 1} and first[0].attempts == 0

    outbox.delivered(first[0].seq)
    assert ids(outbox.next_batch()) == [h1, r2, s1]
    assert ids(outbox.next_batch(limit=1)) == [h1]


def test_a_postponed_head_holds_back_its_kind_until_due_but_not_other_kinds(
    outbox: Outbox, clock: FakeClock
) -> None:
    r1 = outbox.put("report", {"n": 1})
    r2 = outbox.put("report", {"n": 2})
    h1 = outbox.put("heartbeat", {"n": 1})
    head = outbox.next_batch()[0]

    outbox.postpone(head.seq, until=T0 + 60)
    assert ids(outbox.next_batch()) == [h1]  # r2 is due, but r1 is older and still undelivered

    clock.now = T0 + 59.9
    assert ids(outbox.next_batch()) == [h1]
    clock.now = T0 + 60
    again = outbox.next_batch()
    assert ids(again) == [r1, h1]
    assert again[0].attempts == 1 and again[0].next_attempt_at == T0 + 60

    outbox.postpone(again[0].seq, until=T0 + 200)
    clock.now = T0 + 200
    assert outbox.next_batch()[0].attempts == 2
    outbox.delivered(again[0].seq)
    assert ids(outbox.next_batch()) == [r2, h1]


def test_new_items_are_due_at_once_and_carry_their_creation_time(outbox: Outbox) -> None:
    outbox.put("report", {"n": 1}, record_id="chosen-by-caller")
    [item] = outbox.next_batch()
    assert item.record_id == "chosen-by-caller"
    assert item.created_at == T0 and item.next_attempt_at == T0


def test_record_ids_are_unique_and_a_repeated_put_is_stored_once(outbox: Outbox) -> None:
    made = {outbox.put("report", {"n": n}) for n in range(20)}
    assert len(made) == 20 and all(len(record_id) == 32 for record_id in made)

    outbox.put("lost", {"first": True}, record_id="same")
    outbox.put("lost", {"first": False}, record_id="same")
    assert outbox.stats().queued["lost"] == 1
    assert [item.body for item in outbox.next_batch() if item.kind == "lost"] == [{"first": True}]


def test_delivering_the_newest_does_not_let_its_seq_be_reused(outbox: Outbox, path: Path) -> None:
    outbox.put("report", {"n": 1})
    newest = outbox.put("report", {"n": 2})
    newest_seq = next(seq for seq, record in enumerate(stored_ids(path), start=1) if record == newest)
    outbox.delivered(newest_seq)
    outbox.put("report", {"n": 3})
    with sqlite3.connect(path) as db:
        assert [row[0] for row in db.execute("SELECT seq FROM outbox ORDER BY seq")] == [1, 3]


def test_delivered_and_postpone_of_a_seq_no_longer_queued_change_nothing(outbox: Outbox) -> None:
    outbox.put("report", {"n": 1})
    outbox.delivered(999)
    outbox.postpone(999, until=T0 + 10)
    outbox.reject(999, "gone")
    assert outbox.stats().queued == {"report": 1}
    assert outbox.stats().rejected == 0


# ---- reject ---------------------------------------------------------------------------------------------


def test_reject_moves_the_item_aside_and_the_next_of_its_kind_becomes_head(outbox: Outbox) -> None:
    r1 = outbox.put("report", {"n": 1})
    r2 = outbox.put("report", {"n": 2})
    head = outbox.next_batch()[0]

    outbox.reject(head.seq, "422 Unprocessable Content: unknown check id")

    assert ids(outbox.next_batch()) == [r2]
    stats = outbox.stats()
    assert stats.rejected == 1 and stats.queued == {"report": 1}
    [aside] = outbox.rejected_items()
    assert aside.record_id == r1 and aside.body == {"n": 1}
    assert aside.reason == "422 Unprocessable Content: unknown check id"
    assert aside.rejected_at == T0 and aside.attempts == 1


# ---- the bound ------------------------------------------------------------------------------------------


def test_when_full_superseded_reports_go_first_then_heartbeats_and_sign_offs_never(
    path: Path, clock: FakeClock
) -> None:
    with Outbox(path, max_bytes=1000, clock=clock) as outbox:
        h1 = outbox.put("heartbeat", padded(100, n=1))
        r1 = outbox.put("report", padded(200, n=1))
        s1 = outbox.put("signoff", padded(200, n=1))
        h2 = outbox.put("heartbeat", padded(100, n=2))
        r2 = outbox.put("report", padded(200, n=2))
        assert outbox.stats().total_bytes == 800

        r3 = outbox.put("report", padded(300, n=3))  # 1100: r1, superseded, goes before any heartbeat
        assert stored_ids(path) == [h1, s1, h2, r2, r3] and r1 not in stored_ids(path)
        h3 = outbox.put("heartbeat", padded(200, n=3))  # 1100: r2 is superseded by r3 too
        assert stored_ids(path) == [h1, s1, h2, r3, h3]
        assert outbox.stats().dropped == {"report": 2}

        s2 = outbox.put("signoff", padded(300, n=2))  # 1200: no superseded report left; heartbeats go
        assert stored_ids(path) == [s1, r3, h3, s2]
        s3 = outbox.put("signoff", padded(300, n=3))  # 1300: the last heartbeat, then the newest report
        assert stored_ids(path) == [s1, s2, s3]
        assert outbox.stats().dropped == {"heartbeat": 3, "report": 3}
        assert not outbox.stats().over_bound

        s4 = outbox.put("signoff", padded(300, n=4))  # 1100: only sign-offs left: the bound gives way
        s5 = outbox.put("signoff", padded(300, n=5))
        assert stored_ids(path) == [s1, s2, s3, s4, s5]
        stats = outbox.stats()
        assert stats.over_bound and stats.total_bytes == 1400 and stats.max_bytes == 1000
        assert stats.dropped == {"heartbeat": 3, "report": 3}

        assert outbox.take_dropped() == {"heartbeat": 3, "report": 3}
        assert outbox.stats().dropped == {}
        assert outbox.stats().dropped_total == {"heartbeat": 3, "report": 3}, "status keeps the totals"


def test_a_kind_declared_never_droppable_is_kept_and_an_undeclared_kind_is_not(
    path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(KIND_RULES, "lost_report", KindRule(droppable=False))
    with Outbox(path, max_bytes=500, clock=clock) as outbox:
        lost = outbox.put("lost_report", padded(200, n=1))
        other = outbox.put("inventory", padded(200, n=1))
        newer = outbox.put("inventory", padded(200, n=2))  # 600: an undeclared kind is droppable
        assert stored_ids(path) == [lost, newer] and other not in stored_ids(path)
        again = outbox.put("lost_report", padded(400, n=2))  # 800: the inventory goes, then the bound gives
        assert stored_ids(path) == [lost, again]
        assert outbox.stats().over_bound


def test_counts_carried_by_a_dropped_record_are_not_lost_with_it(path: Path, clock: FakeClock) -> None:
    with Outbox(path, max_bytes=600, clock=clock) as outbox:
        for n in range(4):
            outbox.put("heartbeat", padded(180, n=n))
        assert outbox.stats().dropped == {"heartbeat": 1}
        outbox.put("report", {"n": 1}, carry_dropped=True)  # carries {"heartbeat": 1}
        assert outbox.stats().dropped == {}
        outbox.put("report", padded(590, n=2))  # drops the carrier (superseded) and more
        dropped = outbox.take_dropped()
    assert dropped["report"] == 1
    assert dropped["heartbeat"] == 1 + 3, "the carried count comes back, with the heartbeats dropped now"


def test_a_body_larger_than_the_whole_bound_is_refused_without_touching_the_queue(
    path: Path, clock: FakeClock
) -> None:
    with Outbox(path, max_bytes=1000, clock=clock) as outbox:
        kept = outbox.put("heartbeat", padded(500))
        with pytest.raises(ValueError, match="larger than the whole outbox"):
            outbox.put("report", padded(1001))
        assert stored_ids(path) == [kept]
        assert outbox.take_dropped() == {}


def test_the_size_counted_is_the_utf8_json_of_the_body(outbox: Outbox) -> None:
    outbox.put("report", {"name": "é"})  # {"name":"é"} is 12 characters, 13 bytes
    outbox.put("heartbeat", {"n": 1})  # {"n":1}
    assert outbox.stats().total_bytes == 13 + 7


def test_dropped_counts_survive_a_restart_until_taken(path: Path, clock: FakeClock) -> None:
    with Outbox(path, max_bytes=300, clock=clock) as outbox:
        for n in range(5):
            outbox.put("heartbeat", padded(100, n=n))
    with Outbox(path, max_bytes=300, clock=clock) as outbox:
        assert outbox.take_dropped() == {"heartbeat": 2}
    with Outbox(path, max_bytes=300, clock=clock) as outbox:
        assert outbox.take_dropped() == {}


def test_dropped_counts_travel_inside_the_next_record_in_one_step(path: Path, clock: FakeClock) -> None:
    with Outbox(path, max_bytes=300, clock=clock) as outbox:
        first = outbox.put("signoff", {"n": 0}, carry_dropped=True)  # never dropped: still there to read
        for n in range(6):
            outbox.put("heartbeat", padded(90, n=n))
        before = outbox.stats().dropped
        assert before.get("heartbeat", 0) >= 1, "the bound must have dropped heartbeats"
        carrier = outbox.put("report", {"n": 1}, carry_dropped=True)
        after = outbox.take_dropped()  # only what making room for the carrier itself dropped
    db = sqlite3.connect(path)
    bodies = {rid: json.loads(body) for rid, body in db.execute("SELECT record_id, body FROM outbox")}
    db.close()
    assert bodies[first]["dropped"] == {}
    assert bodies[carrier]["dropped"] == before  # moved into the record, in the same transaction
    assert set(after) <= {"heartbeat"}  # and not counted twice


operations = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.sampled_from(["heartbeat", "report", "signoff"]), st.integers(10, 400)),
        st.tuples(st.just("deliver"), st.sampled_from(["heartbeat", "report", "signoff"]), st.just(0)),
        st.tuples(st.just("reject"), st.sampled_from(["heartbeat", "report", "signoff"]), st.just(0)),
    ),
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(operations=operations)
def test_every_record_put_is_accounted_for_and_the_bound_holds(
    operations: list[tuple[str, str, int]],
) -> None:
    """Queued + delivered + rejected + dropped = put, per kind; the running size total never drifts;
    sign-offs are never dropped; heartbeats go only once no superseded report is left, the newest report
    only once no heartbeat is left; the bound gives way only to sign-offs."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / OUTBOX_FILE
        put: dict[str, int] = {}
        gone: dict[str, int] = {}
        dropped: dict[str, int] = {}
        with Outbox(path, max_bytes=1000, clock=FakeClock()) as outbox:
            for action, kind, size in operations:
                if action == "put":
                    outbox.put(kind, padded(size))
                    put[kind] = put.get(kind, 0) + 1
                else:
                    heads = [item for item in outbox.next_batch() if item.kind == kind]
                    if not heads:
                        continue
                    if action == "deliver":
                        outbox.delivered(heads[0].seq)
                    else:
                        outbox.reject(heads[0].seq, "400")
                    gone[kind] = gone.get(kind, 0) + 1
                just_dropped = outbox.take_dropped()
                for dropped_kind, count in just_dropped.items():
                    dropped[dropped_kind] = dropped.get(dropped_kind, 0) + count
                stats = outbox.stats()
                assert "signoff" not in just_dropped
                if "heartbeat" in just_dropped:
                    assert stats.queued.get("report", 0) <= 1  # superseded reports went first
                if just_dropped.get("report") and not stats.queued.get("report"):
                    assert "heartbeat" not in stats.queued  # the newest report goes after the heartbeats
                with sqlite3.connect(path) as db:
                    actual = db.execute("SELECT COALESCE(SUM(size), 0) FROM outbox").fetchone()[0]
                assert stats.total_bytes == actual
                assert actual <= 1000 or set(stats.queued) == {"signoff"}
            for kind, count in put.items():
                assert stats.queued.get(kind, 0) + gone.get(kind, 0) + dropped.get(kind, 0) == count


# ---- stats ----------------------------------------------------------------------------------------------


def test_stats_of_an_empty_and_a_busy_outbox(outbox: Outbox, clock: FakeClock) -> None:
    empty = outbox.stats()
    assert empty.queued == {} and empty.total_bytes == 0 and empty.oldest_created_at is None
    assert empty.rejected == 0 and empty.dropped == {}

    outbox.put("report", {"n": 1})
    clock.now = T0 + 300
    outbox.put("heartbeat", {"n": 1})
    outbox.put("heartbeat", {"n": 2})
    stats = outbox.stats()
    assert stats.queued == {"heartbeat": 2, "report": 1}
    assert stats.oldest_created_at == T0
    assert stats.total_bytes == 3 * len('{"n":1}')


# ---- the file -------------------------------------------------------------------------------------------


def test_the_file_is_wal_with_a_schema_version(outbox: Outbox, path: Path) -> None:
    outbox.put("report", {"n": 1})
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_everything_is_still_there_after_close_and_reopen(path: Path, clock: FakeClock) -> None:
    with Outbox(path, clock=clock) as outbox:
        r1 = outbox.put("report", {"n": 1})
        h1 = outbox.put("heartbeat", {"n": 1})
        outbox.put("report", {"n": 2})
        outbox.postpone(outbox.next_batch()[0].seq, until=T0 + 30)
        outbox.reject(outbox.next_batch()[0].seq, "400 Bad Request")

    clock.now = T0 + 30
    with Outbox(path, clock=clock) as reopened:
        [head] = reopened.next_batch()
        assert head.record_id == r1 and head.attempts == 1 and head.next_attempt_at == T0 + 30
        stats = reopened.stats()
        assert stats.queued == {"report": 2} and stats.rejected == 1
        assert reopened.rejected_items()[0].record_id == h1


def test_a_file_that_is_not_sqlite_gets_a_clear_error_and_is_left_alone(path: Path) -> None:
    path.parent.mkdir(parents=True)
    garbage = b"homeroom outbox? no: this is a text file someone saved here\n" * 100
    path.write_bytes(garbage)
    with pytest.raises(OutboxError) as raised:
        Outbox(path)
    assert str(path) in str(raised.value)
    assert "move it aside" in str(raised.value)
    assert path.read_bytes() == garbage


def overwrite_pages(data: bytearray, page_size: int) -> None:
    data[3 * page_size : 5 * page_size] = b"\xa5" * (2 * page_size)


def miscount_a_table_leaf(data: bytearray, page_size: int) -> None:
    """A subtle one: SQLite's file format keeps a leaf's cell count at bytes 3-4 of its page header.

    The page is one of the queued reports', which opening the outbox does not otherwise read.
    """
    table_leaves = [page for page in range(1, len(data) // page_size) if data[page * page_size] == 0x0D]
    header = table_leaves[-2] * page_size
    data[header + 3 : header + 5] = (int.from_bytes(data[header + 3 : header + 5], "big") + 7).to_bytes(
        2, "big"
    )


@pytest.mark.parametrize("damage", [overwrite_pages, miscount_a_table_leaf])
def test_a_damaged_outbox_gets_a_clear_error_and_is_left_alone(path: Path, clock: FakeClock, damage) -> None:
    with Outbox(path, clock=clock) as outbox:
        for n in range(200):
            outbox.put("report", padded(400, n=n))
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(path.read_bytes())
    assert len(data) > 6 * page_size
    damage(data, page_size)
    path.write_bytes(bytes(data))

    with pytest.raises(OutboxError) as raised:
        Outbox(path)
    message = str(raised.value)
    assert str(path) in message and "damaged" in message and len(message) < 600
    assert path.read_bytes() == bytes(data)


def test_another_programs_database_is_not_taken_over(path: Path) -> None:
    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE grades (student TEXT, grade TEXT)")
    with pytest.raises(OutboxError, match="not a Homeroom outbox"):
        Outbox(path)


def test_an_outbox_from_a_newer_agent_is_not_downgraded(path: Path) -> None:
    Outbox(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(OutboxError, match="newer Homeroom"):
        Outbox(path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1


def test_a_body_that_is_not_json_is_refused_before_anything_is_stored(outbox: Outbox) -> None:
    with pytest.raises(ValueError):
        outbox.put("report", {"ratio": float("nan")})
    with pytest.raises(TypeError):
        outbox.put("report", {"when": object()})
    assert outbox.stats().queued == {}


# ---- real processes -------------------------------------------------------------------------------------


def start_writer(path: Path, writer: str, count: int, wait_for_go: bool = False) -> subprocess.Popen[str]:
    argv = [sys.executable, str(PUT_LOOP), str(path), writer, str(count)]
    if wait_for_go:
        argv.append("--wait-for-go")
    return subprocess.Popen(
        argv,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_line(stream: IO[str] | None) -> str:
    assert stream is not None
    return stream.readline().strip()


def test_every_id_printed_before_kill_9_is_in_the_outbox_exactly_once(path: Path) -> None:
    writer = start_writer(path, "killed", count=0)
    try:
        assert read_line(writer.stdout) == "ready", writer.stderr.read() if writer.stderr else ""
        promised: list[str] = []
        deadline = time.monotonic() + 60
        while len(promised) < 150 and time.monotonic() < deadline:
            promised.append(read_line(writer.stdout))
        os.kill(writer.pid, signal.SIGKILL)
        assert writer.stdout is not None
        promised += [line.strip() for line in writer.stdout.read().splitlines() if line.strip()]
    finally:
        writer.kill()
        writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL
    assert len(promised) >= 150

    with Outbox(path) as reopened:
        stats = reopened.stats()
        assert sum(stats.queued.values()) >= len(promised)
    stored = stored_ids(path)
    for record_id in promised:
        assert stored.count(record_id) == 1, record_id
    assert stored[: len(promised)] == promised  # and in the order they were put


def test_two_processes_putting_at_once_lose_nothing(path: Path) -> None:
    Outbox(path).close()  # both writers open an existing outbox, as the service and the tray do
    writers = {name: start_writer(path, name, count=150, wait_for_go=True) for name in ("service", "tray")}
    printed: dict[str, list[str]] = {}
    try:
        for process in writers.values():
            assert read_line(process.stdout) == "ready"
        for process in writers.values():
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        for name, process in writers.items():
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0, err
            printed[name] = out.split()
    finally:
        for process in writers.values():
            process.kill()
            process.wait(timeout=30)

    stored = stored_ids(path)
    assert len(stored) == 300 and len(set(stored)) == 300
    for name in writers:
        assert len(printed[name]) == 150
        mine = [record_id for record_id in stored if record_id in set(printed[name])]
        assert mine == printed[name]  # each writer's records keep its order
    with sqlite3.connect(path) as db:
        writers_seen = {row[0] for row in db.execute("SELECT json_extract(body, '$.writer') FROM outbox")}
    assert writers_seen == {"service", "tray"}


# ---- who may read it, and what it says about itself ------------------------------------------------------


def file_modes(path: Path) -> dict[str, int]:
    import stat

    return {
        candidate.name: stat.S_IMODE(candidate.stat().st_mode)
        for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm"))
        if candidate.exists()
    }


def test_the_outbox_and_its_wal_and_shm_are_readable_by_root_only(path: Path, clock: FakeClock) -> None:
    import os

    old_umask = os.umask(0o022)  # the service's usual umask, which gave 0644 before
    try:
        with Outbox(path, clock=clock) as outbox:
            outbox.put("signoff", {"serial": "5CG1234XYZ"})
            modes = file_modes(path)
    finally:
        os.umask(old_umask)
    assert set(modes) == {OUTBOX_FILE, f"{OUTBOX_FILE}-wal", f"{OUTBOX_FILE}-shm"}
    assert set(modes.values()) == {0o600}


def test_an_outbox_left_world_readable_is_made_owner_only_when_opened(path: Path, clock: FakeClock) -> None:
    with Outbox(path, clock=clock) as outbox:
        outbox.put("signoff", {"serial": "5CG1234XYZ"})
        for name in file_modes(path):
            (path.parent / name).chmod(0o644)  # as an older agent left them, while it is open
    assert set(file_modes(path).values()) == {0o644}
    with Outbox(path, clock=clock):
        assert set(file_modes(path).values()) == {0o600}


def test_an_outbox_whose_tables_are_wrong_is_not_usable_and_left_as_found(path: Path) -> None:
    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE outbox (seq INTEGER PRIMARY KEY, payload BLOB)")
        db.execute("PRAGMA user_version = 1")
    before = path.read_bytes()
    with pytest.raises(OutboxNotUsable, match="tables are not an outbox's") as raised:
        Outbox(path)
    assert "outbox has payload, seq" in raised.value.detail
    assert path.read_bytes() == before


def test_a_version_1_outbox_is_upgraded_in_place_keeping_what_it_holds(path: Path, clock: FakeClock) -> None:
    with Outbox(path, clock=clock) as outbox:
        kept = outbox.put("signoff", {"n": 1})
    with sqlite3.connect(path) as db:
        for table in ("dropped_total", "problems", "link"):
            db.execute(f"DROP TABLE {table}")
        db.execute("PRAGMA user_version = 1")
    with Outbox(path, clock=clock) as outbox:
        assert stored_ids(path) == [kept]
        outbox.note_problem("k", "text")
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2


def test_a_local_problem_rides_once_in_the_next_carrier_and_again_only_when_it_changes(
    outbox: Outbox, clock: FakeClock
) -> None:
    outbox.note_problem("local-requirements", "requirements.toml:2: broken\x1b[2J")
    outbox.note_problem("local-requirements", "requirements.toml:2: broken\x1b[2J")  # the same: once
    first = outbox.put("heartbeat", {"n": 1}, carry_dropped=True)
    second = outbox.put("heartbeat", {"n": 2}, carry_dropped=True)
    outbox.note_problem("local-requirements", "requirements.toml:3: broken")
    third = outbox.put("heartbeat", {"n": 3}, carry_dropped=True)
    bodies = {item.record_id: item.body for item in _all(outbox)}
    assert bodies[first]["local_problems"] == ["requirements.toml:2: broken [2J"], "no control characters"
    assert "local_problems" not in bodies[second]
    assert bodies[third]["local_problems"] == ["requirements.toml:3: broken"]
    (problem,) = outbox.problems()
    assert problem.reported_at == clock.now
    outbox.clear_problem("local-requirements")
    assert outbox.problems() == []


def _all(outbox: Outbox) -> list:
    items = []
    while batch := outbox.next_batch():
        for item in batch:
            items.append(item)
            outbox.delivered(item.seq)
    return items


def test_refused_signoffs_are_kept_aside_beyond_the_limit_others_are_not(
    outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    import agent.server_link.outbox as outbox_module

    monkeypatch.setattr(outbox_module, "REJECTED_KEPT", 2)
    for number in range(3):
        outbox.put("signoff", {"n": number})
        outbox.put("report", {"n": number})
    while batch := outbox.next_batch():
        for item in batch:
            outbox.reject(item.seq, "422: no")
    kinds = [item.kind for item in outbox.rejected_items()]
    assert kinds.count("signoff") == 3 and kinds.count("report") <= 2
