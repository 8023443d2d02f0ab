"""Lost mode's own rules: what a `lost_mode` object must be, what is kept where (and readable by
whom), that it survives a new service process, and what is left for the user's login notice."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent.lost.duties import LOST_EVIDENCE, LostDuties
from agent.lost.evidence import HostFacts
from agent.lost.mode import (
    LOST_HISTORY_FILE,
    LOST_MODE_FILE,
    LOST_NOTICE_FILE,
    order_from_answer,
    read_history,
    read_notice,
    status_line,
)
from agent.probes import LiveProbes
from contract.lost import MAX_INTERVAL_SECONDS, MIN_INTERVAL_SECONDS, NOTICE_MAX
from tests.helpers.agent_service import Clock
from tests.helpers.paths import ROOT

ORDER = {
    "case_id": "case-17",
    "since": "2026-12-01T09:00:00+00:00",
    "interval_seconds": 120,
    "notice": "This laptop belongs to Lincoln High School. Please return it to the front office.",
    "lock_screen": False,
    "drill": False,
}


class Queued:
    """The outbox's `put`, kept in memory: what would be queued, in order."""

    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []

    def put(
        self, kind: str, body: dict[str, Any], record_id: str | None = None, carry_dropped: bool = False
    ) -> str:
        self.items.append((kind, body))
        return record_id or ""


def duties(state: Path, clock: Clock, locks: list[str] | None = None) -> LostDuties:
    def lock(os_name: str) -> bool:
        if locks is not None:
            locks.append(os_name)
        return True

    facts = HostFacts({}, ["ada"], clock() - 3600)
    return LostDuties(state, "linux", clock, LiveProbes(), lock=lock, facts=lambda: facts)


@pytest.mark.parametrize(
    "broken",
    [
        None,
        "lost",
        {},
        {**ORDER, "case_id": ""},
        {**ORDER, "case_id": "x" * 101},
        {**ORDER, "since": "yesterday"},
        {**ORDER, "since": "2026-12-01T09:00:00"},  # no zone
        {**ORDER, "interval_seconds": "120"},
        {**ORDER, "interval_seconds": True},
    ],
)
def test_anything_but_a_clear_order_is_not_lost_mode(broken: object) -> None:
    assert order_from_answer(broken) is None


def test_an_order_is_held_to_the_contracts_bounds() -> None:
    assert order_from_answer({**ORDER, "interval_seconds": 1}).interval_seconds == MIN_INTERVAL_SECONDS  # type: ignore[union-attr]
    assert order_from_answer({**ORDER, "interval_seconds": 10**9}).interval_seconds == MAX_INTERVAL_SECONDS  # type: ignore[union-attr]
    noisy = order_from_answer({**ORDER, "notice": "Return it\u202e to\x1b[2J me\n" + "x" * 5000})
    assert noisy is not None and noisy.notice is not None
    assert "\u202e" not in noisy.notice and "\x1b" not in noisy.notice and "\n" in noisy.notice
    assert len(noisy.notice) <= NOTICE_MAX
    assert order_from_answer({**ORDER, "notice": "   "}).notice is None  # type: ignore[union-attr]
    assert order_from_answer({**ORDER, "lock_screen": "yes"}).lock_screen is False  # type: ignore[union-attr]


def test_lost_mode_is_kept_for_root_and_shown_to_the_user_only_as_much_as_the_district_chose(
    tmp_path: Path,
) -> None:
    clock = Clock()
    lost = duties(tmp_path, clock)
    lost.answered(ORDER)
    assert stat.S_IMODE((tmp_path / LOST_MODE_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / LOST_NOTICE_FILE).stat().st_mode) == 0o644
    assert read_notice(tmp_path) == {"notice": ORDER["notice"], "lock_screen": False, "interval_seconds": 120}
    assert "case-17" not in (tmp_path / LOST_NOTICE_FILE).read_text()

    lost.answered({**ORDER, "notice": None})  # the district makes it quiet: nothing for a thief to see
    assert not (tmp_path / LOST_NOTICE_FILE).exists()
    assert lost.active


def test_lost_mode_survives_a_new_service_and_ends_with_a_period_for_the_login_notice(tmp_path: Path) -> None:
    clock = Clock()
    queue = Queued()
    first = duties(tmp_path, clock)
    assert not first.collect_if_due(queue), "outside lost mode nothing is collected"
    first.answered(ORDER)
    assert first.collect_if_due(queue)
    assert not first.collect_if_due(queue), "at most once per interval"

    again = duties(tmp_path, clock)  # the service restarted (or the laptop rebooted)
    assert again.active and again.heartbeat_seconds(900) == 120
    clock.advance(120)
    assert again.collect_if_due(queue)
    assert [kind for kind, _ in queue.items] == [LOST_EVIDENCE, LOST_EVIDENCE]

    again.answered(None)  # IT marked it recovered: the answer no longer carries lost_mode
    assert not again.active and again.heartbeat_seconds(900) == 900
    assert not (tmp_path / LOST_MODE_FILE).exists() and not (tmp_path / LOST_NOTICE_FILE).exists()
    (period,) = read_history(tmp_path)
    assert period.first_evidence_at == queue.items[0][1]["collected_at"]
    assert period.last_evidence_at == queue.items[1][1]["collected_at"]
    assert stat.S_IMODE((tmp_path / LOST_HISTORY_FILE).stat().st_mode) == 0o644
    clock.advance(3600)
    assert not again.collect_if_due(queue) and len(queue.items) == 2


def test_the_service_locks_the_screen_only_when_asked(tmp_path: Path) -> None:
    clock = Clock()
    locks: list[str] = []
    lost = duties(tmp_path, clock, locks)
    lost.answered(ORDER)
    lost.collect_if_due(Queued())
    assert locks == []
    lost.answered({**ORDER, "lock_screen": True})
    clock.advance(120)
    lost.collect_if_due(Queued())
    assert locks == ["linux"]
    assert json.loads((tmp_path / LOST_NOTICE_FILE).read_text())["lock_screen"] is True


def test_a_damaged_state_file_is_not_lost_mode(tmp_path: Path) -> None:
    (tmp_path / LOST_MODE_FILE).write_text("{not json", encoding="utf-8")
    assert not duties(tmp_path, Clock()).active
    (tmp_path / LOST_MODE_FILE).write_text(json.dumps({"order": {"case_id": 3}}), encoding="utf-8")
    assert not duties(tmp_path, Clock()).active


def test_status_says_it_cannot_tell_rather_than_off_when_it_cannot_read_the_file(tmp_path: Path) -> None:
    """`homeroom-agent status` run by a user who cannot read the root-only file (a real other user,
    `nobody`, through setpriv) says lost mode is unknown, not off; a damaged file says so too."""
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o755)
    tmp_path.chmod(0o755)
    (state / LOST_MODE_FILE).write_text("{}", encoding="utf-8")
    (state / LOST_MODE_FILE).chmod(0o600)
    code = (
        "import pathlib, sys; from agent.lost.mode import status_line; "
        "print(status_line(pathlib.Path(sys.argv[1])))"
    )
    as_nobody = subprocess.run(
        [
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            sys.executable,
            "-c",
            code,
            str(state),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert as_nobody.stdout.startswith("Lost mode:       unknown: cannot read "), as_nobody.stdout
    assert "Permission denied" in as_nobody.stdout
    assert status_line(state).startswith("Lost mode:       unknown: ") and "damaged" in status_line(state)
    (state / LOST_MODE_FILE).unlink()
    assert status_line(state) == "Lost mode:       off"


def test_a_drill_behaves_the_same_on_the_laptop_and_is_named_afterwards(tmp_path: Path) -> None:
    from agent.desktop.lost_view import ended_words

    clock = Clock()
    queue = Queued()
    lost = duties(tmp_path, clock)
    lost.answered({**ORDER, "drill": True})
    assert lost.active and lost.heartbeat_seconds(900) == 120
    assert read_notice(tmp_path) is not None  # the same notice as a real case
    assert lost.collect_if_due(queue)
    lost.answered(None)
    (period,) = read_history(tmp_path)
    assert period.drill and "(a test of lost mode run by IT)" in ended_words([period])
