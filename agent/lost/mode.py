"""Whether this laptop is in lost mode, as the server last said in a *signed* heartbeat answer.

The service calls `from_answer` only with answers `agent.server_link.answers` accepted (the
transport refuses the rest before anything reads them), so nobody on the network can switch a
laptop into collecting location evidence. What the server asked is checked again here (types,
bounds) and kept in STATE/lost-mode.json (root only), so lost mode survives a restart of the
service and a reboot, and takes effect at the first connection after a report filed while the
laptop was off. An answer without `lost_mode` ends it; the period is added to
STATE/lost-history.json, which the tray reads to tell the user, once, at their next login.
"""

from __future__ import annotations

import json
import os
import unicodedata
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.state import write_atomically
from contract.lost import MAX_INTERVAL_SECONDS, MIN_INTERVAL_SECONDS, NOTICE_MAX

LOST_MODE_FILE = "lost-mode.json"  # root only: the case and the schedule
LOST_NOTICE_FILE = "lost-notice.json"  # world-readable: what the user's tray shows (nothing when quiet)
LOST_HISTORY_FILE = "lost-history.json"  # world-readable: periods that ended, for the login notice
HISTORY_KEPT = 20
CASE_ID_MAX = 100


@dataclass(frozen=True)
class LostOrder:
    """What the server asked for: the `lost_mode` object of contract/lost.py, checked."""

    case_id: str
    since: str
    interval_seconds: int
    notice: str | None
    lock_screen: bool
    drill: bool


def _clean_notice(value: object) -> str | None:
    """The district's message, as a window may show it: no control or bidi characters but line
    breaks, bounded; an empty one is no notice."""
    if not isinstance(value, str):
        return None
    kept = "".join(
        ch
        for ch in value
        if ch in "\n\t" or (unicodedata.category(ch) not in ("Cc", "Cf", "Cs") and ch != "\u2028")
    )
    kept = kept.strip()[:NOTICE_MAX]
    return kept or None


def order_from_answer(value: object) -> LostOrder | None:
    """Pure: the answer's `lost_mode` (already known to be signed) as an order, or None for "not lost".

    A malformed object is read as "not lost": collecting evidence is the exception that needs a
    clear instruction.
    """
    if not isinstance(value, dict):
        return None
    case_id = value.get("case_id")
    since = value.get("since")
    if not isinstance(case_id, str) or not 0 < len(case_id) <= CASE_ID_MAX or not isinstance(since, str):
        return None
    try:
        if datetime.fromisoformat(since.replace("Z", "+00:00")).tzinfo is None:
            return None
    except ValueError:
        return None
    interval = value.get("interval_seconds")
    if not isinstance(interval, int) or isinstance(interval, bool):
        return None
    return LostOrder(
        case_id="".join(ch for ch in case_id if ch.isprintable()),
        since=since,
        interval_seconds=min(max(interval, MIN_INTERVAL_SECONDS), MAX_INTERVAL_SECONDS),
        notice=_clean_notice(value.get("notice")),
        lock_screen=value.get("lock_screen") is True,
        drill=value.get("drill") is True,
    )


@dataclass(frozen=True)
class LostState:
    """Lost mode as the service keeps it: the order and what has been done under it."""

    order: LostOrder
    entered_at: str
    first_evidence_at: str = ""
    last_evidence_at: str = ""
    last_evidence_clock: float = 0.0  # the service's clock, for the schedule
    evidence_count: int = 0

    def due(self, now: float) -> bool:
        return now - self.last_evidence_clock >= self.order.interval_seconds or now < self.last_evidence_clock

    def collected(self, now: float, at: str) -> LostState:
        return replace(
            self,
            first_evidence_at=self.first_evidence_at or at,
            last_evidence_at=at,
            last_evidence_clock=now,
            evidence_count=self.evidence_count + 1,
        )


def _state_from_json(data: Any) -> LostState | None:
    if not isinstance(data, dict):
        return None
    order = order_from_answer(data.get("order"))
    if order is None:
        return None
    try:
        return LostState(
            order,
            str(data.get("entered_at") or ""),
            str(data.get("first_evidence_at") or ""),
            str(data.get("last_evidence_at") or ""),
            float(data.get("last_evidence_clock") or 0.0),
            int(data.get("evidence_count") or 0),
        )
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class EndedPeriod:
    """A lost-mode period that ended, as users are told of it: evidence collected between two times."""

    period_id: str
    first_evidence_at: str
    last_evidence_at: str
    ended_at: str
    drill: bool

    @classmethod
    def from_json(cls, data: Any) -> EndedPeriod | None:
        if not isinstance(data, dict):
            return None
        try:
            return cls(
                str(data["period_id"]),
                str(data["first_evidence_at"]),
                str(data["last_evidence_at"]),
                str(data["ended_at"]),
                bool(data.get("drill", False)),
            )
        except KeyError:
            return None


def read_history(state_dir: Path) -> list[EndedPeriod]:
    try:
        data = json.loads((state_dir / LOST_HISTORY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    listed = data.get("periods") if isinstance(data, dict) else None
    return [p for item in listed or [] if (p := EndedPeriod.from_json(item)) is not None]


def read_notice(state_dir: Path) -> dict[str, Any] | None:
    """The tray's view of lost mode: {"notice", "lock_screen", "interval_seconds"}, or None."""
    try:
        data = json.loads((state_dir / LOST_NOTICE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    notice = data.get("notice")
    interval = data.get("interval_seconds")
    return {
        "notice": notice if isinstance(notice, str) and notice else None,
        "lock_screen": data.get("lock_screen") is True,
        "interval_seconds": interval if isinstance(interval, int) else MIN_INTERVAL_SECONDS,
    }


class LostModeFile:
    """STATE/lost-mode.json and the two files the user's side reads, kept in step."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / LOST_MODE_FILE

    def load(self) -> LostState | None:
        try:
            return _state_from_json(json.loads(self.path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return None

    def save(self, state: LostState) -> None:
        text = json.dumps({**asdict(state), "order": asdict(state.order)}, indent=1)
        write_atomically(self.path, text)
        if os.name != "nt":
            self.path.chmod(0o600)
        self._publish(state.order)

    def _publish(self, order: LostOrder) -> None:
        """What the user's tray needs, world-readable; in a quiet case without a lock, nothing at all
        (a visible sign could prompt a thief to wipe the laptop)."""
        path = self.state_dir / LOST_NOTICE_FILE
        if order.notice is None and not order.lock_screen:
            path.unlink(missing_ok=True)
            return
        view = {
            "notice": order.notice,
            "lock_screen": order.lock_screen,
            "interval_seconds": order.interval_seconds,
        }
        text = json.dumps(view, indent=1)
        try:
            if path.read_text(encoding="utf-8") == text:
                return
        except (OSError, ValueError):
            pass
        write_atomically(path, text)
        path.chmod(0o644)

    def end(self, state: LostState, ended_at: str) -> EndedPeriod | None:
        """Leaves lost mode; the period is kept for the login notice when evidence was collected."""
        (self.state_dir / LOST_NOTICE_FILE).unlink(missing_ok=True)
        period = None
        if state.evidence_count:
            period = EndedPeriod(
                f"{state.order.case_id}@{state.entered_at}",
                state.first_evidence_at,
                state.last_evidence_at,
                ended_at,
                state.order.drill,
            )
            periods = [p for p in read_history(self.state_dir) if p.period_id != period.period_id]
            periods = [*periods, period][-HISTORY_KEPT:]
            history = self.state_dir / LOST_HISTORY_FILE
            write_atomically(history, json.dumps({"periods": [asdict(p) for p in periods]}, indent=1))
            history.chmod(0o644)
        self.path.unlink(missing_ok=True)
        return period


def status_line(state_dir: Path) -> str:
    """`homeroom-agent status`'s word on lost mode. Run by someone who cannot read the root-only
    file, it says it cannot tell rather than "off": a status that guesses is worse than none."""
    path = state_dir / LOST_MODE_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        ended = read_history(state_dir)
        if not ended:
            return "Lost mode:       off"
        last = ended[-1]
        what = "a drill" if last.drill else "lost mode"
        return f"Lost mode:       off ({what} ended {last.ended_at}; evidence from {_span(last)})"
    except OSError as exc:
        return f"Lost mode:       unknown: cannot read {path} ({exc.strerror}); run as root or Administrator"
    try:
        state = _state_from_json(json.loads(text))
    except ValueError:
        state = None
    if state is None:
        return f"Lost mode:       unknown: {path} is damaged; the next signed heartbeat answer decides"
    order = state.order
    drill = " (a drill)" if order.drill else ""
    shown = "a notice on screen" if order.notice else "no notice"
    lock = ", screen locked" if order.lock_screen else ""
    sent = f"{state.evidence_count} evidence record(s) collected, last {state.last_evidence_at or 'none yet'}"
    return (
        f"Lost mode:       ON{drill} since {state.entered_at}, case {order.case_id}, every "
        f"{order.interval_seconds} s, {shown}{lock}; {sent}"
    )


def _span(period: EndedPeriod) -> str:
    if not period.first_evidence_at:
        return "none collected"
    return f"{period.first_evidence_at} to {period.last_evidence_at}"
