"""The debouncer on real threads and the real clock: one call per burst, none while idle."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from agent.watch.debounce import Debouncer


class Calls:
    def __init__(self) -> None:
        self.times: list[float] = []
        self.arrived = threading.Event()

    def __call__(self) -> None:
        self.times.append(time.monotonic())
        self.arrived.set()


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def debouncer(calls: Calls) -> Iterator[Debouncer]:
    running = Debouncer(calls, quiet=0.3, longest=5.0)
    running.start()
    yield running
    running.stop()


def test_a_burst_like_dpkgs_is_one_call_after_it_goes_quiet(calls: Calls) -> None:
    running = Debouncer(calls, quiet=1.0, longest=30.0)  # the service's own setting
    running.start()
    try:
        gaps = []
        last = time.monotonic()
        for _ in range(40):  # dpkg's renames, apt's packages: many events within a second
            running.poke()
            now = time.monotonic()
            gaps.append(now - last)
            last = now
            time.sleep(0.01)
        assert calls.arrived.wait(5)
        time.sleep(1.2)
        assert max(gaps) < 1.0, "the burst had no quiet second in it (a loaded machine may stall)"
        assert len(calls.times) == 1, "coalesced into one re-inventory"
        assert calls.times[0] >= last + 1.0 - 0.01, "not before the burst went quiet"
    finally:
        running.stop()


def test_two_bursts_apart_are_two_calls(debouncer: Debouncer, calls: Calls) -> None:
    debouncer.poke()
    time.sleep(0.6)
    debouncer.poke()
    time.sleep(0.6)
    assert len(calls.times) == 2


def test_a_burst_that_never_goes_quiet_is_still_seen_as_it_goes(calls: Calls) -> None:
    running = Debouncer(calls, quiet=0.3, longest=0.8)
    running.start()
    try:
        started = time.monotonic()
        while time.monotonic() - started < 2.0:  # a long `apt upgrade`: events every 0.1 s
            running.poke()
            time.sleep(0.1)
        assert 2 <= len(calls.times) <= 3, calls.times
        assert calls.times[0] - started < 0.8 + 0.3
    finally:
        running.stop()


def test_nothing_is_called_while_idle_and_a_failing_action_does_not_stop_it(
    calls: Calls,
) -> None:
    failures = []

    def flaky() -> None:
        if not failures:
            failures.append(1)
            raise RuntimeError("inventory broke")
        calls()

    running = Debouncer(flaky, quiet=0.1, longest=1.0)
    running.start()
    try:
        time.sleep(0.4)
        assert calls.times == [] and failures == []
        running.poke()
        time.sleep(0.4)
        assert failures == [1] and running.thread.is_alive()
        running.poke()
        assert calls.arrived.wait(2)
    finally:
        running.stop()
    assert not running.thread.is_alive()
