"""Drains the outbox to the server, politely.

Thousands of laptops come back online at the same moment (the first bell, the
end of a server outage), so retries back off exponentially with full jitter
and the server's Retry-After is obeyed: the agents spread out instead of
arriving together. Order matters per kind (a later compliance report must not
overtake an earlier one) but not across kinds, so a report the server keeps
postponing does not hold back heartbeats.

The transport (HTTP, later) answers for one record: delivered, try later, or
refused for good. Anything it raises counts as "try later": a network error
must never lose a record. Every "try later" says why: the reason is logged and
kept in the outbox as the last failure, which `homeroom-agent status` shows.

One "try later" is about the link, not the record: an answer that is not from
this district's server (agent.server_link.answers). Whoever answered in its
place would be sent every other record too, and would answer each the same
way, so the round ends there: nothing more goes to it until the next round.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from agent.server_link.outbox import Outbox, OutboxItem

log = logging.getLogger("homeroom.agent")

Clock = Callable[[], float]

# A server whose clock is years off could otherwise silence an agent for years with one
# HTTP-date; a day is far beyond any planned downtime and keeps the agent asking.
RETRY_AFTER_CEILING = 24 * 3600.0


@dataclass(frozen=True)
class Delivered:
    pass


@dataclass(frozen=True)
class RetryLater:
    retry_after: float | None = None  # seconds, from the server's Retry-After, if any
    reason: str = ""  # what went wrong, for the log and `status`
    # The answer was not from this district's server: send nothing more in this round (the other
    # records would go to the same stranger, to be refused in turn, and tell it what they hold).
    not_our_server: bool = False


@dataclass(frozen=True)
class Rejected:
    reason: str


Outcome = Delivered | RetryLater | Rejected
Transport = Callable[[OutboxItem], Outcome]


@dataclass(frozen=True)
class DrainResult:
    delivered: int
    postponed: int
    rejected: int
    remaining: int


def backoff_delay(attempts: int, rng: random.Random, base: float = 2.0, cap: float = 3600.0) -> float:
    """Exponential backoff with full jitter.

    Uniform in [0, min(cap, base * 2**attempts)]: the ceiling doubles with each failed attempt, and the
    draw spreads agents that failed together across the whole window ("full jitter").
    """
    exponent = min(max(attempts, 0), 64)  # 2**64 * base is past any cap; keeps the float finite
    return rng.uniform(0.0, min(cap, base * 2.0**exponent))


def retry_delay(item: OutboxItem, outcome: RetryLater, rng: random.Random) -> float:
    """The server's Retry-After is a floor: never come back sooner than it asks, and a server that keeps
    asking for short waits still gets the growing backoff."""
    delay = backoff_delay(item.attempts, rng)
    if outcome.retry_after is not None:
        delay = max(delay, min(max(outcome.retry_after, 0.0), RETRY_AFTER_CEILING))
    return delay


def drain(
    outbox: Outbox, transport: Transport, clock: Clock, rng: random.Random, max_items: int | None = None
) -> DrainResult:
    """Sends due items in order; on RetryLater postpones that item (Retry-After wins over backoff when given,
    but never less than it) and stops sending that kind this round (order per kind), or every kind when
    the answer was not from this district's server (`not_our_server`); Rejected moves it aside; an
    exception from the transport counts as RetryLater. Returns counts: delivered, postponed, rejected,
    remaining.

    `max_items` bounds the sends in one call, so a long queue does not keep the service busy for hours.
    """
    delivered = postponed = rejected = attempted = 0
    held_back: set[str] = set()
    stranger_answered = False
    while not stranger_answered and (max_items is None or attempted < max_items):
        batch = [item for item in outbox.next_batch() if item.kind not in held_back]
        if not batch:
            break
        for item in batch:
            if max_items is not None and attempted >= max_items:
                break
            attempted += 1
            outcome = _send(transport, item)
            if isinstance(outcome, Delivered):
                outbox.delivered(item.seq)
                delivered += 1
                if item.kind == "heartbeat":
                    break  # its answer may change what is to be sent (lost mode ended): read the queue again
            elif isinstance(outcome, Rejected):
                outbox.reject(item.seq, outcome.reason)
                rejected += 1
            else:
                delay = retry_delay(item, outcome, rng)
                reason = outcome.reason or "no reason given"
                log.warning(
                    "%s %s not sent (%s); trying again in %.0f s", item.kind, item.record_id, reason, delay
                )
                outbox.postpone(item.seq, clock() + delay, f"{item.kind}: {reason}")
                held_back.add(item.kind)
                postponed += 1
                if outcome.not_our_server:
                    stranger_answered = True
                    break
    remaining = sum(outbox.stats().queued.values())
    return DrainResult(delivered=delivered, postponed=postponed, rejected=rejected, remaining=remaining)


def _send(transport: Transport, item: OutboxItem) -> Outcome:
    try:
        return transport(item)
    except Exception as exc:  # a failed send is retried, never lost
        log.exception("sending %s %s failed unexpectedly", item.kind, item.record_id)
        return RetryLater(None, f"{type(exc).__name__}: {exc}"[:300])


_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1
    )
}
_TIME = r"(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})"
_MONTH = r"(?P<month>[A-Za-z]{3})"
# RFC 9110 §5.6.7: the preferred IMF-fixdate and the two obsolete forms a recipient must still accept.
_IMF_FIXDATE = re.compile(
    rf"[A-Za-z]{{3}}, (?P<day>\d{{2}}) {_MONTH} (?P<year>\d{{4}}) {_TIME} GMT", re.ASCII
)
_RFC850_DATE = re.compile(
    rf"[A-Za-z]{{6,9}}, (?P<day>\d{{2}})-{_MONTH}-(?P<year>\d{{2}}) {_TIME} GMT", re.ASCII
)
_ASCTIME_DATE = re.compile(rf"[A-Za-z]{{3}} {_MONTH} (?P<day>[ \d]\d) {_TIME} (?P<year>\d{{4}})", re.ASCII)
_DELTA_SECONDS = re.compile(r"\d+", re.ASCII)


def parse_http_date(value: str, now: float) -> datetime | None:
    """An HTTP-date in any of its three forms, as aware UTC; None when it is none of them."""
    for pattern in (_IMF_FIXDATE, _RFC850_DATE, _ASCTIME_DATE):
        match = pattern.fullmatch(value)
        if match is None:
            continue
        month = _MONTHS.get(match["month"].lower())
        if month is None:
            return None
        year = int(match["year"])
        if pattern is _RFC850_DATE:
            year = _full_year(year, now)
        try:
            return datetime(
                year,
                month,
                int(match["day"]),
                int(match["hour"]),
                int(match["minute"]),
                int(match["second"]),
                tzinfo=timezone.utc,
            )
        except ValueError:  # 31 Feb, hour 25, second 61 (HTTP-date has no leap seconds)
            return None
    return None


def _full_year(two_digits: int, now: float) -> int:
    """RFC 9110 §5.6.7: a two-digit year more than 50 years ahead means the most recent past one."""
    this_year = datetime.fromtimestamp(now, tz=timezone.utc).year
    year = this_year - this_year % 100 + two_digits
    if year > this_year + 50:
        year -= 100
    return year


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Retry-After is either delta-seconds or an HTTP-date (RFC 9110 §10.2.3); None when absent or invalid.

    A date already past means "now" (0.0); the delay is seconds from `now`.
    """
    if value is None:
        return None
    value = value.strip(" \t")
    if _DELTA_SECONDS.fullmatch(value):
        # Past 15 digits it is millions of years either way (and int() refuses very long strings).
        return float(int(value)) if len(value) <= 15 else 1e15
    when = parse_http_date(value, now)
    if when is None:
        return None
    delay = (when - datetime.fromtimestamp(now, tz=timezone.utc)) / timedelta(seconds=1)
    return max(delay, 0.0)
