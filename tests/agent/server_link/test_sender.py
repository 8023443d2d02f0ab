"""The sender: backoff, Retry-After and per-kind order, on a real outbox file, with a transport written here.

Retry-After values follow RFC 9110 §10.2.3 (`Retry-After = HTTP-date / delay-seconds`) and the three
HTTP-date forms of §5.6.7, whose examples are "Sun, 06 Nov 1994 08:49:37 GMT" (IMF-fixdate),
"Sunday, 06-Nov-94 08:49:37 GMT" (obsolete RFC 850) and "Sun Nov  6 08:49:37 1994" (asctime, day padded
with a space); the dates below are written to match those forms exactly.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.server_link.outbox import OUTBOX_FILE, Outbox, OutboxItem
from agent.server_link.sender import (
    RETRY_AFTER_CEILING,
    Delivered,
    Outcome,
    Rejected,
    RetryLater,
    backoff_delay,
    drain,
    parse_http_date,
    parse_retry_after,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc).timestamp()


class FakeClock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class NoJitter(random.Random):
    """Every draw at the bottom of its window: a backoff of 0 s."""

    def random(self) -> float:
        return 0.0


class Server:
    """A transport: records what it was sent and answers from a script, by (kind, body["n"])."""

    def __init__(self, answers: dict[tuple[str, int], list[Outcome | Exception]] | None = None) -> None:
        self.answers = answers or {}
        self.received: list[tuple[str, int]] = []
        self.stored: list[str] = []  # record ids it kept, as the real server would

    def __call__(self, item: OutboxItem) -> Outcome:
        key = (item.kind, item.body["n"])
        self.received.append(key)
        script = self.answers.get(key)
        answer = script.pop(0) if script else Delivered()
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, Delivered):
            self.stored.append(item.record_id)
        return answer


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def outbox(tmp_path: Path, clock: FakeClock):
    box = Outbox(tmp_path / OUTBOX_FILE, clock=clock)
    yield box
    box.close()


def put(outbox: Outbox, *keys: tuple[str, int]) -> dict[tuple[str, int], str]:
    return {(kind, n): outbox.put(kind, {"n": n}) for kind, n in keys}


def head(outbox: Outbox, kind: str) -> OutboxItem:
    return next(item for item in outbox.next_batch() if item.kind == kind)


# ---- backoff --------------------------------------------------------------------------------------------


@given(attempts=st.integers(min_value=0, max_value=10_000), seed=st.integers(min_value=0, max_value=2**32))
def test_backoff_stays_within_the_full_jitter_window(attempts: int, seed: int) -> None:
    delay = backoff_delay(attempts, random.Random(seed))
    assert 0.0 <= delay <= min(3600.0, 2.0 * 2.0 ** min(attempts, 20))


@given(
    attempts=st.integers(min_value=0, max_value=60),
    seed=st.integers(min_value=0, max_value=2**32),
    base=st.floats(min_value=0.1, max_value=30.0),
    cap=st.floats(min_value=1.0, max_value=86_400.0),
)
def test_backoff_grows_with_each_attempt_for_the_same_draw(
    attempts: int, seed: int, base: float, cap: float
) -> None:
    now = backoff_delay(attempts, random.Random(seed), base=base, cap=cap)
    later = backoff_delay(attempts + 1, random.Random(seed), base=base, cap=cap)
    assert now <= later <= cap
    assert later <= min(cap, base * 2.0 ** (attempts + 1))


def test_backoff_is_spread_across_its_window_not_fixed() -> None:
    rng = random.Random(7)
    draws = [backoff_delay(5, rng) for _ in range(500)]  # window [0, 64]
    assert len(set(draws)) == 500
    assert min(draws) < 8 and max(draws) > 56
    assert 24 < sum(draws) / len(draws) < 40  # about the middle, 32


def test_backoff_reaches_the_cap_and_stays_finite_for_huge_attempt_counts() -> None:
    rng = random.Random(1)
    draws = [backoff_delay(10**6, rng) for _ in range(200)]
    assert max(draws) <= 3600.0 and max(draws) > 3000.0


# ---- Retry-After ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        (" 3600 ", 3600.0),  # optional whitespace around a field value
        ("Mon, 23 Nov 2026 12:02:00 GMT", 120.0),  # IMF-fixdate
        ("Monday, 23-Nov-26 13:00:00 GMT", 3600.0),  # obsolete RFC 850 form
        ("Mon Nov 23 12:00:30 2026", 30.0),  # asctime form, two-digit day
        ("Tue Dec  1 12:00:00 2026", 8 * 86400.0),  # asctime form, day padded with a space
        ("Sun, 06 Nov 1994 08:49:37 GMT", 0.0),  # already past: retry now
    ],
)
def test_retry_after_in_either_form_gives_seconds_from_now(header: str, expected: float) -> None:
    assert parse_retry_after(header, NOW) == expected


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "-5",  # delay-seconds is 1*DIGIT: no sign
        "+5",
        "1.5",  # nor a fraction
        "120 seconds",
        "soon",
        "Mon, 31 Feb 2026 12:00:00 GMT",  # no such day
        "Mon, 23 Nov 2026 25:00:00 GMT",  # no such hour
        "Mon, 23 Foo 2026 12:00:00 GMT",  # no such month
        "Mon, 23 Nov 2026 12:00:00 PST",  # HTTP-date is always GMT
        "Mon, 23 Nov 2026 12:00:00",
        "2026-11-23T12:02:00Z",  # ISO 8601 is not an HTTP-date
    ],
)
def test_an_absent_or_invalid_retry_after_is_none(header: str | None) -> None:
    assert parse_retry_after(header, NOW) is None


def test_rfc850_two_digit_years_more_than_50_years_ahead_are_in_the_past() -> None:
    assert parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", NOW) == datetime(
        1994, 11, 6, 8, 49, 37, tzinfo=timezone.utc
    )
    assert parse_http_date("Friday, 01-Jan-27 00:00:00 GMT", NOW) == datetime(2027, 1, 1, tzinfo=timezone.utc)
    assert parse_http_date("Wednesday, 01-Jan-76 00:00:00 GMT", NOW) == datetime(
        2076, 1, 1, tzinfo=timezone.utc
    )
    assert parse_http_date("Saturday, 01-Jan-77 00:00:00 GMT", NOW) == datetime(
        1977, 1, 1, tzinfo=timezone.utc
    )


def test_an_absurdly_long_delay_seconds_does_not_crash() -> None:
    assert parse_retry_after("9" * 5000, NOW) == 1e15


def test_retry_after_from_the_server_sets_when_the_item_is_tried_again(
    outbox: Outbox, clock: FakeClock
) -> None:
    wait = parse_retry_after("Mon, 23 Nov 2026 12:10:00 GMT", clock())
    put(outbox, ("report", 1))
    server = Server({("report", 1): [RetryLater(retry_after=wait)]})

    result = drain(outbox, server, clock, random.Random(0))

    assert result.postponed == 1 and result.delivered == 0 and result.remaining == 1
    item = head_anytime(outbox, clock)
    assert item.next_attempt_at == datetime(2026, 11, 23, 12, 10, tzinfo=timezone.utc).timestamp()
    assert item.attempts == 1

    clock.now += 599
    assert drain(outbox, server, clock, random.Random(0)).delivered == 0  # not due: not even tried
    assert server.received == [("report", 1)]
    clock.now += 1
    assert drain(outbox, server, clock, random.Random(0)).delivered == 1


def test_a_short_retry_after_does_not_undercut_a_long_backoff(outbox: Outbox, clock: FakeClock) -> None:
    put(outbox, ("report", 1))
    # Ten failures already: the backoff window is [0, 2048] s; the server asks for only 5 s.
    for _ in range(10):
        outbox.postpone(head(outbox, "report").seq, until=clock())
    rng_seed = 3
    expected_backoff = backoff_delay(10, random.Random(rng_seed))
    assert expected_backoff > 5

    drain(outbox, Server({("report", 1): [RetryLater(retry_after=5.0)]}), clock, random.Random(rng_seed))

    assert head_anytime(outbox, clock).next_attempt_at - NOW == pytest.approx(expected_backoff)


def test_a_retry_after_beyond_a_day_is_held_to_a_day(outbox: Outbox, clock: FakeClock) -> None:
    put(outbox, ("report", 1))
    wait = parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT", clock())
    drain(outbox, Server({("report", 1): [RetryLater(retry_after=wait)]}), clock, random.Random(0))
    assert head_anytime(outbox, clock).next_attempt_at == NOW + RETRY_AFTER_CEILING


def head_anytime(outbox: Outbox, clock: FakeClock) -> OutboxItem:
    """The only queued report, whenever it is due."""
    saved = clock.now
    clock.now = float("inf")
    try:
        return head(outbox, "report")
    finally:
        clock.now = saved


# ---- order and outcomes ---------------------------------------------------------------------------------


def test_everything_due_is_delivered_in_order_per_kind(outbox: Outbox, clock: FakeClock) -> None:
    ids = put(outbox, ("report", 1), ("heartbeat", 1), ("report", 2), ("heartbeat", 2), ("report", 3))
    server = Server()

    result = drain(outbox, server, clock, random.Random(0))

    assert (result.delivered, result.postponed, result.rejected, result.remaining) == (5, 0, 0, 0)
    assert [n for kind, n in server.received if kind == "report"] == [1, 2, 3]
    assert [n for kind, n in server.received if kind == "heartbeat"] == [1, 2]
    assert sorted(server.stored) == sorted(ids.values())


def test_a_postponed_report_holds_back_later_reports_while_heartbeats_proceed(
    outbox: Outbox, clock: FakeClock
) -> None:
    put(outbox, ("report", 1), ("report", 2), ("heartbeat", 1), ("report", 3), ("heartbeat", 2))
    server = Server({("report", 1): [RetryLater(retry_after=60)]})

    first = drain(outbox, server, clock, random.Random(0))

    assert server.received == [("report", 1), ("heartbeat", 1), ("heartbeat", 2)]
    assert (first.delivered, first.postponed, first.remaining) == (2, 1, 3)

    clock.now += 60
    second = drain(outbox, server, clock, random.Random(0))
    assert server.received[3:] == [("report", 1), ("report", 2), ("report", 3)]
    assert (second.delivered, second.remaining) == (3, 0)


def test_an_answer_not_from_our_server_ends_the_round_for_every_kind(
    outbox: Outbox, clock: FakeClock
) -> None:
    """Whoever answered in the server's place would get (and be refused on) every other record too."""
    ids = put(outbox, ("heartbeat", 1), ("report", 1), ("signoff", 1))
    stranger = RetryLater(None, "answer refused, nothing in it applied: not signed", not_our_server=True)
    server = Server({("heartbeat", 1): [stranger]})

    first = drain(outbox, server, clock, NoJitter())

    assert server.received == [("heartbeat", 1)]
    assert (first.delivered, first.postponed, first.remaining) == (0, 1, 3)
    untried = [item for item in outbox.next_batch() if item.kind != "heartbeat"]
    assert [(item.kind, item.attempts) for item in untried] == [("report", 0), ("signoff", 0)]

    second = drain(outbox, server, clock, NoJitter())  # the real server answers again
    assert server.received[1:] == [("heartbeat", 1), ("report", 1), ("signoff", 1)]
    assert (second.delivered, second.remaining) == (3, 0)
    assert sorted(server.stored) == sorted(ids.values())


def test_a_kind_postponed_with_no_wait_is_not_retried_in_the_same_round(
    outbox: Outbox, clock: FakeClock
) -> None:
    put(outbox, ("report", 1), ("heartbeat", 1))

    def always_busy(item: OutboxItem) -> Outcome:
        return RetryLater(retry_after=0)

    # The backoff draw is 0 too, so both items are due again at once; max_items only stops a runaway.
    result = drain(outbox, always_busy, clock, NoJitter(), max_items=100)

    assert (result.delivered, result.postponed, result.remaining) == (0, 2, 2)


def test_a_transport_exception_loses_nothing_and_is_retried_with_backoff(
    outbox: Outbox, clock: FakeClock
) -> None:
    ids = put(outbox, ("report", 1), ("report", 2), ("heartbeat", 1))
    server = Server(
        {
            ("report", 1): [ConnectionResetError("connection reset by peer")],
            ("heartbeat", 1): [TimeoutError("timed out"), TimeoutError("timed out")],
        }
    )

    first = drain(outbox, server, clock, random.Random(0))

    assert (first.delivered, first.postponed, first.remaining) == (0, 2, 3)
    report = head_anytime(outbox, clock)
    assert report.record_id == ids[("report", 1)] and report.attempts == 1
    assert NOW <= report.next_attempt_at <= NOW + 2.0  # first backoff window is [0, 2] s

    for _ in range(3):
        clock.now += 3600
        drain(outbox, server, clock, random.Random(0))
    assert outbox.stats().queued == {}
    assert sorted(server.stored) == sorted(ids.values())
    assert server.received.count(("heartbeat", 1)) == 3


def test_a_rejected_item_is_set_aside_and_the_next_of_its_kind_goes_on(
    outbox: Outbox, clock: FakeClock
) -> None:
    ids = put(outbox, ("signoff", 1), ("signoff", 2))
    server = Server({("signoff", 1): [Rejected("422: the sign-off names an unknown teacher")]})

    result = drain(outbox, server, clock, random.Random(0))

    assert (result.delivered, result.rejected, result.remaining) == (1, 1, 0)
    assert server.received == [("signoff", 1), ("signoff", 2)]
    [aside] = outbox.rejected_items()
    assert aside.record_id == ids[("signoff", 1)] and "unknown teacher" in aside.reason
    assert outbox.stats().rejected == 1


def test_max_items_bounds_one_drain_and_the_rest_waits(outbox: Outbox, clock: FakeClock) -> None:
    put(outbox, *[("report", n) for n in range(5)], ("heartbeat", 0))
    server = Server()

    result = drain(outbox, server, clock, random.Random(0), max_items=3)

    assert len(server.received) == 3 and result.delivered == 3 and result.remaining == 3
    assert drain(outbox, server, clock, random.Random(0)).remaining == 0
    assert [n for kind, n in server.received if kind == "report"] == [0, 1, 2, 3, 4]


def test_a_crash_between_sending_and_marking_delivered_resends_the_same_record_id(
    tmp_path: Path, clock: FakeClock
) -> None:
    path = tmp_path / OUTBOX_FILE
    with Outbox(path, clock=clock) as first_run:
        record_id = first_run.put("report", {"n": 1})
        sent_ids: list[str] = []
        [item] = first_run.next_batch()
        sent_ids.append(item.record_id)  # the server got it; then the agent died before delivered()

    with Outbox(path, clock=clock) as second_run:
        server = Server()
        drain(second_run, server, clock, random.Random(0))
    assert sent_ids + server.stored == [record_id, record_id]  # same id both times: the server deduplicates


def test_a_transport_exception_is_logged_with_its_reason_and_kept_for_status(
    outbox: Outbox, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    put(outbox, ("report", 1))

    def broken(item: OutboxItem) -> Outcome:
        raise KeyError("requirements")  # a bug, not the network: it must not vanish silently

    with caplog.at_level(logging.WARNING, logger="homeroom.agent"):
        result = drain(outbox, broken, clock, NoJitter())
    assert result.postponed == 1 and result.remaining == 1
    assert "KeyError: 'requirements'" in caplog.text
    link = outbox.link_state()
    assert link.last_failure == "report: KeyError: 'requirements'" and link.last_failure_at == clock.now
    assert link.last_delivered_at is None

    def refusing(item: OutboxItem) -> Outcome:
        return RetryLater(30.0, "503: database is locked")

    clock.now += 3600
    drain(outbox, refusing, clock, NoJitter())
    assert outbox.link_state().last_failure == "report: 503: database is locked"
