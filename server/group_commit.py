"""Many signed requests, one commit: the server's database threads and how they batch work.

Every signed request must be committed before it is answered (a 2xx is a promise that a
`kill -9` a moment later loses nothing). Committing each request on its own makes the commit
the price of every heartbeat, and handing each request to a thread and back costs two
wake-ups. So the database threads take whatever requests are waiting, check each one's
signature and body, run all of them in one transaction, commit once, and hand all the answers
back to the event loop in one call.

What must be kept at most once (a signed request's id: `Once`) is recorded for the whole batch in
one statement at the start of its transaction; a request whose id was seen before (in the database
or earlier in the same batch) gets its refusal and its work is not run, and the rest go on.

Writes that nothing later in the transaction reads (a heartbeat's last-seen time) can be `defer`red:
the batch sends each such statement once, with every request's row, just before its commit.

A request that fails otherwise (a refused claim, a bad body) gets its own error and the others are
kept: its batch is rolled back and run again with a savepoint for each request, which records that
request's id inside its own savepoint (a failed request's id is not kept), and runs its deferred
writes at once, inside that savepoint.
If the commit itself fails, every request of the batch gets that error (a 503 from
`server.api.busy`) and none of them was kept, which is the truth: the agents keep the records in
their outboxes and send them again.

The event loop never waits for the database: `/healthz` and reading request bodies go on while
every database thread waits for a lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections import deque
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Engine, Executable

from server.db.driver_statements import DriverStatement
from server.db.keyed_update import KeyedUpdate

T = TypeVar("T")
Prepared = TypeVar("Prepared")
Worked = TypeVar("Worked")

# Enough to carry a burst in a few commits; few enough that the first answer of a batch does not
# wait long for the last request's work, and that a batch of large reports holds the write lock
# for well under the lock timeout other processes wait.
MAX_BATCH = 32
# Large bodies (full reports: tens of KB, milliseconds of work each) queue apart and go in smaller
# batches, taking turns with the rest: a heartbeat waits behind at most one such batch.
HEAVY_BYTES = 16 * 1024
MAX_HEAVY_BATCH = 16


@dataclass(frozen=True)
class Once:
    """How requests are kept to at most once: `record` puts their keys in the transaction it is given
    and says, key by key and in order, which were new (a key seen before, or twice in the list, is
    new only the first time); `refusal` is the error a request whose key was not new gets.
    `device_of`: the device a key's request writes to, the order a batch runs its requests in."""

    record: Callable[[Connection, Sequence[Hashable]], list[bool]]
    refusal: Callable[[], BaseException]
    device_of: Callable[[Hashable], str] | None = None


# A deferred write: a Core statement, one sent straight to the driver (`server.db.driver_statements`),
# or an update by key whose batch is one statement (`server.db.keyed_update`).
Deferrable = Executable | DriverStatement | KeyedUpdate


class _Deferred(threading.local):
    """The rows `defer`red in the batch transaction this thread runs, if it runs one: which
    connection, each statement's rows in the order they came, and which statements lock rows."""

    connection: Connection | None = None
    rows: dict[Deferrable, list[dict[str, Any]]]
    locking: set[Deferrable]


_deferred = _Deferred()


def _execute(connection: Connection, statement: Deferrable, rows: Any) -> None:
    """`rows` (one row, or a list for one executemany) through the driver path when it has one."""
    if isinstance(statement, DriverStatement | KeyedUpdate):
        if isinstance(rows, list):
            statement.execute_many(connection, rows)
        else:
            statement.execute(connection, rows)
    else:
        connection.execute(statement, rows)


def defer(connection: Connection, statement: Deferrable, row: dict[str, Any], locks: bool = True) -> None:
    """`statement` with `row`, run now; or, inside a batch's shared transaction, run with the rows
    every other request of the batch deferred for the same statement, in one executemany at the end
    of the batch, before its commit. For a write that nothing later in the transaction reads (a
    heartbeat's last-seen time): one statement sent per batch instead of one per request.
    `locks`: the write locks a row another transaction may want (an UPDATE or upsert; not a plain
    INSERT of new rows), so it is written before the batch locks a later device (`write_deferred`)."""
    if _deferred.connection is connection:
        _deferred.rows.setdefault(statement, []).append(row)
        if locks:
            _deferred.locking.add(statement)
    else:
        _execute(connection, statement, row)


@contextlib.contextmanager
def _deferring(connection: Connection) -> Iterator[None]:
    _deferred.connection, _deferred.rows, _deferred.locking = connection, {}, set()
    try:
        yield
    finally:
        _deferred.connection, _deferred.rows, _deferred.locking = None, {}, set()


def write_deferred(connection: Connection) -> None:
    """The row-locking writes deferred so far in this batch, written now. Called before a request
    locks its device's row: those writes lock rows of devices earlier in the batch's id order, and
    taking them first keeps the one lock order (`GroupCommitter._run_batch`). Nothing on SQLite,
    whose one writer holds the whole database."""
    if _deferred.connection is not connection or connection.dialect.name == "sqlite":
        return
    for statement in [statement for statement in _deferred.rows if statement in _deferred.locking]:
        _execute(connection, statement, _deferred.rows.pop(statement))


def _write_deferred(connection: Connection) -> None:
    waiting = _deferred.rows
    _deferred.connection, _deferred.rows, _deferred.locking = None, {}, set()
    for statement, rows in waiting.items():
        _execute(connection, statement, rows)


def _device_order(job: _Job[Any, Any, Any]) -> str:
    if job.once is None or job.once.device_of is None:
        return ""
    return job.once.device_of(job.once_key)


class _Lanes:
    """The database threads' queue: light requests (heartbeats, sign-offs, enrolment) and heavy ones
    (`HEAVY_BYTES`: full reports). When both wait, batches of each are taken in turn, heavy ones at
    most `heavy_batch` at a time, so a burst of reports cannot starve heartbeats nor the reverse.

    No lock is shared with the event loop: `put` is a deque append and a ring of the bell (a
    `queue.SimpleQueue`, whose put never waits), each atomic. With a `threading.Condition` the
    loop waited for its lock whenever a database thread lost the GIL while holding it (measured: a
    sixth of the loop's time under load). A database thread looks at the lanes before it waits for
    the bell, and every thread looks again after each batch, so a request whose ring was taken by
    another thread's wake-up is still found.
    """

    def __init__(self, light_batch: int, heavy_batch: int) -> None:
        self.light_batch = light_batch
        self.heavy_batch = heavy_batch
        self._bell: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._light: deque[_Job[Any, Any, Any]] = deque()
        self._heavy: deque[_Job[Any, Any, Any]] = deque()
        self._heavy_next = False

    def put(self, job: _Job[Any, Any, Any]) -> None:
        (self._heavy if job.heavy else self._light).append(job)
        self._bell.put(None)

    def take(self) -> list[_Job[Any, Any, Any]]:
        while True:
            jobs = self._pop()
            if jobs:
                # The rings of the jobs taken, as far as they are there: fewer wake-ups for nothing.
                for _ in range(len(jobs)):
                    try:
                        self._bell.get_nowait()
                    except queue.Empty:
                        break
                return jobs
            self._bell.get()

    def _pop(self) -> list[_Job[Any, Any, Any]]:
        heavy = bool(self._heavy) and (self._heavy_next or not self._light)
        self._heavy_next = not heavy
        light = (self._light, self.light_batch)
        heavy_lane = (self._heavy, self.heavy_batch)
        for lane, size in (heavy_lane, light) if heavy else (light, heavy_lane):
            jobs = []
            for _ in range(size):
                try:
                    jobs.append(lane.popleft())  # another database thread may be taking from it too
                except IndexError:
                    break
            if jobs:
                return jobs
        return []


@dataclass
class _Job(Generic[Prepared, Worked, T]):
    """One request's share of a batch: `prepare` before the transaction (signature, body), `work`
    inside it, `finish` after the commit (the signed answer). `alone` is work with transactions of
    its own (enrolment), run on the same threads but outside any batch."""

    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[T]
    prepare: Callable[[], Prepared]
    work: Callable[[Connection, Prepared], Worked] | None
    finish: Callable[[Worked], T]
    # The device the request names, when `prepare` will read it from the database: the batch reads
    # all of them at once (`prepare_scope`).
    device_id: str | None = None
    # What makes this request once-only (its request id), recorded with the batch (`Once`).
    once: Once | None = None
    once_key: Hashable = None
    heavy: bool = False
    prepared: Any = None
    worked: Any = None
    error: BaseException | None = None
    value: Any = None
    finished: bool = False


class GroupCommitter:
    """A few database threads (one on SQLite, which has one writer) fed by one queue."""

    def __init__(
        self,
        engine: Engine,
        threads: int,
        max_batch: int = MAX_BATCH,
        max_heavy_batch: int = MAX_HEAVY_BATCH,
        prepare_scope: Callable[[list[str]], AbstractContextManager[Any]] = contextlib.nullcontext,
    ) -> None:
        self.engine = engine
        self.thread_count = threads
        self.max_batch = max_batch
        # Around a batch's `prepare` calls, given the device ids the batch will look up: the lookups
        # share one read transaction and one statement (`server.auth.DeviceReader.batch`), closed
        # before the batch's own transaction begins.
        self.prepare_scope = prepare_scope
        self._queue = _Lanes(max_batch, min(max_batch, max_heavy_batch))
        # Started on first use, in the process that serves (a worker process may be forked after the
        # app is built, and threads do not survive a fork).
        self._threads: list[threading.Thread] = []
        self._start_lock = threading.Lock()

    async def run(
        self,
        prepare: Callable[[], Prepared],
        work: Callable[[Connection, Prepared], Worked],
        finish: Callable[[Worked], T],
        device_id: str | None = None,
        once: tuple[Once, Hashable] | None = None,
        heavy: bool = False,
    ) -> T:
        """`prepare()`, then `work(connection, prepared)` in a transaction shared with other requests,
        then `finish(worked)` once that transaction is committed; any of them may raise, and that
        request alone gets the error. `device_id`: the device `prepare` reads, if it reads one;
        `once`: the request is refused, its work not run, if its key was recorded before; `heavy`:
        it queues with the other large requests (`_Lanes`)."""
        return await self._submit(prepare, work, finish, device_id, once, heavy)

    async def call(self, work: Callable[[], T]) -> T:
        """Blocking work with transactions of its own, on the database threads."""
        return await self._submit(work, None, lambda value: value)

    async def _submit(
        self,
        prepare: Callable[[], Any],
        work: Callable[[Connection, Any], Any] | None,
        finish: Callable[[Any], T],
        device_id: str | None = None,
        once: tuple[Once, Hashable] | None = None,
        heavy: bool = False,
    ) -> T:
        self._start()
        loop = asyncio.get_running_loop()
        job: _Job[Any, Any, T] = _Job(loop, loop.create_future(), prepare, work, finish, device_id)
        job.heavy = heavy
        if once is not None:
            job.once, job.once_key = once
        self._queue.put(job)
        return await job.future

    def _start(self) -> None:
        if self._threads:
            return
        with self._start_lock:
            while len(self._threads) < self.thread_count:
                thread = threading.Thread(
                    target=self._serve, name=f"database-{len(self._threads)}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def _serve(self) -> None:
        while True:
            jobs = self._queue.take()
            try:
                self._run_batch(jobs)
            except BaseException as exc:  # noqa: BLE001 - never lose a thread, never leave a request hanging
                for job in jobs:
                    if job.error is None and not job.finished:
                        job.error = exc
            _hand_back(jobs)

    def _run_batch(self, jobs: list[_Job[Any, Any, Any]]) -> None:
        batched: list[_Job[Any, Any, Any]] = []
        wanted = [job.device_id for job in jobs if job.work is not None and job.device_id is not None]
        with self.prepare_scope(wanted):
            for job in jobs:
                if job.work is None:
                    continue  # work with transactions of its own: run after the scope is closed
                try:
                    job.prepared = job.prepare()
                except Exception as exc:  # noqa: BLE001 - this request's own error (401, 400, ...)
                    job.error = exc
                    continue
                batched.append(job)
        for job in jobs:
            if job.work is None:
                try:
                    job.value, job.finished = job.prepare(), True
                except Exception as exc:  # noqa: BLE001
                    job.error = exc
        if not batched:
            return
        # One lock order for every transaction: a batch writes its devices in id order (stable: one
        # device's requests keep their order), and each request takes its device's row before the
        # device's other rows (`server.fleet.counted.before_report`). Two batches (two threads, or two
        # server processes on PostgreSQL) that share devices then never wait for each other in a circle.
        batched.sort(key=_device_order)
        try:
            failed = self._run_optimistically(batched)
            if failed:
                self._run_with_savepoints(batched)
        except Exception as exc:  # noqa: BLE001 - begin or commit failed: nothing of the batch is kept
            for job in batched:
                if job.error is None:
                    job.error = exc
            return
        for job in batched:
            if job.error is None:
                try:
                    job.value, job.finished = job.finish(job.worked), True
                except Exception as exc:  # noqa: BLE001
                    job.error = exc

    def _run_optimistically(self, batched: list[_Job[Any, Any, Any]]) -> bool:
        """Every request's work in one transaction with no savepoints, committed: False. If one
        request's work fails, the transaction is rolled back and True says to run the batch again
        with a savepoint each. Requests rarely fail (a refused claim, a bad software list; a replay is
        refused by `_record_once` without failing the batch), and two savepoint statements per
        request were 8 % of a heartbeat's server time; a batch with a failure costs its work twice."""
        failure: list[Exception] = []
        try:
            with self.engine.begin() as connection, _deferring(connection):
                _record_once(connection, batched)
                for job in batched:
                    if job.error is not None:
                        continue  # seen before: refused, nothing of it run
                    try:
                        job.worked = job.work(connection, job.prepared)  # type: ignore[misc]
                    except Exception as exc:  # roll back, then redo with savepoints
                        failure.append(exc)
                        raise
                try:
                    _write_deferred(connection)
                except Exception as exc:  # whose row it was is not known: redo with savepoints
                    failure.append(exc)
                    raise
        except Exception:
            if not failure:
                raise  # begin or commit: the caller answers every request with it
            if len(batched) == 1:
                batched[0].error = failure[0]  # alone: nothing else to keep
                return False
            return True
        return False

    def _run_with_savepoints(self, batched: list[_Job[Any, Any, Any]]) -> None:
        """A request that fails rolls back to its own savepoint and gets its own error."""
        with self.engine.begin() as connection:
            for job in batched:
                job.worked, job.error = None, None
                try:
                    with connection.begin_nested():
                        if job.once is not None and not job.once.record(connection, [job.once_key])[0]:
                            raise job.once.refusal()
                        job.worked = job.work(connection, job.prepared)  # type: ignore[misc]
                except Exception as exc:  # noqa: BLE001 - rolled back to its savepoint
                    job.error = exc


def _record_once(connection: Connection, batched: list[_Job[Any, Any, Any]]) -> None:
    """Each `Once`'s keys of the batch in one statement; a request whose key is not new is refused."""
    by_once: dict[Once, list[_Job[Any, Any, Any]]] = {}
    for job in batched:
        if job.once is not None:
            by_once.setdefault(job.once, []).append(job)
    for once, own in by_once.items():
        new = once.record(connection, [job.once_key for job in own])
        for job, is_new in zip(own, new, strict=True):
            if not is_new:
                job.error = once.refusal()


def _hand_back(jobs: list[_Job[Any, Any, Any]]) -> None:
    """One wake-up of each event loop per batch, not one per request."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Job[Any, Any, Any]]] = {}
    for job in jobs:
        by_loop.setdefault(job.loop, []).append(job)
    for loop, own in by_loop.items():
        # A loop that has closed (shutdown) has nobody waiting for these answers.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_resolve, own)


def _resolve(jobs: list[_Job[Any, Any, Any]]) -> None:
    for job in jobs:
        if job.future.done():  # the client went away and the request was cancelled
            continue
        if job.error is not None:
            job.future.set_exception(job.error)
        else:
            job.future.set_result(job.value)
