"""The tray's side of lost mode: its own icon, nothing shown in a quiet case, the lock asked of the
OS on Windows and macOS (from the user's session), the person's copy of their reports kept with
the district's answer, and, after lost mode, the login notice shown once per person (a real window
on a real X display, with a screenshot)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import ImageChops

from agent.desktop import tray as tray_module
from agent.desktop.lost_report import KeptReport, read_copy, write_copy
from agent.desktop.lost_view import ENDED_TITLE, ended_words, untold
from agent.desktop.tray import Tray, draw_icon
from agent.lost.mode import LOST_HISTORY_FILE, LOST_NOTICE_FILE, EndedPeriod
from agent.lost.reports import ReportStatus, write_report_statuses
from tests.helpers.desktop import wait_for
from tests.helpers.paths import ROOT
from tests.helpers.xdisplay import XDisplay

ARTIFACTS = ROOT / "test-artifacts" / "lost"
PERIOD = EndedPeriod("case-17@2026-12-01T09:00:00+00:00", "2026-12-01T09:02:00+00:00",
                     "2026-12-03T16:40:00+00:00", "2026-12-03T16:41:00+00:00", False)  # fmt: skip


def a_tray(tmp_path: Path) -> Tray:
    state, home = tmp_path / "state", tmp_path / "home"
    state.mkdir(parents=True, exist_ok=True)
    (state / "status.json").write_text(json.dumps({"updated_at": "2999-01-01T00:00:00+00:00", "results": []}))
    return Tray(state, home, "ada", lambda _title, _message: None)


def notice(tray: Tray, **view: Any) -> None:
    (tray.state_dir / LOST_NOTICE_FILE).write_text(json.dumps({"interval_seconds": 120, **view}))


def test_the_lost_icon_is_its_own_colour_and_shape() -> None:
    lost = draw_icon("lost")
    for other in ("green", "amber", "red", "grey"):
        assert (
            ImageChops.difference(lost.convert("RGB"), draw_icon(other).convert("RGB")).getbbox() is not None
        )  # type: ignore[arg-type]
    assert lost.getpixel((6, 32))[:3] == (0x4A, 0x14, 0x8C)  # type: ignore[index]


def test_the_icon_shows_lost_mode_only_when_the_district_shows_a_notice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tray = a_tray(tmp_path)
    opened: list[list[str]] = []
    monkeypatch.setattr(tray_module.subprocess, "Popen", lambda argv, **_: opened.append(argv) or _Done())
    assert tray.refresh().colour == "amber"  # no results yet
    notice(tray, notice=None, lock_screen=True)  # quiet, but locked
    assert tray.refresh().colour == "amber" and opened == []
    notice(tray, notice="Please return it to Lincoln High.", lock_screen=False)
    assert tray.refresh().colour == "lost"
    assert opened and opened[-1][-1] == "--message=Please return it to Lincoln High."


class _Done:
    """A window process that has already been closed (for the tray's reaping)."""

    def poll(self) -> int:
        return 0

    def terminate(self) -> None:
        pass


def test_windows_and_macos_lock_from_the_tray_every_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tray = a_tray(tmp_path)
    asked: list[str] = []
    monkeypatch.setattr(tray_module, "lock_screen", lambda os_name: asked.append(os_name) or True)
    view = {"notice": None, "lock_screen": True, "interval_seconds": 120}
    tray.os_name = "windows"
    tray.lock_if_asked(view, now=1000.0)
    tray.lock_if_asked(view, now=1060.0)
    tray.lock_if_asked(view, now=1121.0)
    assert asked == ["windows", "windows"]
    tray.os_name = "linux"  # the service locks every session itself
    tray.lock_if_asked(view, now=5000.0)
    tray.lock_if_asked({**view, "lock_screen": False}, now=9000.0)
    assert asked == ["windows", "windows"]


def test_the_persons_copy_gets_the_districts_answer_from_the_tray(tmp_path: Path) -> None:
    tray = a_tray(tmp_path)
    write_copy(tray.user_dir, [KeptReport("r1", "2026-12-01T20:00:00+00:00", {"kind": "stolen"})])
    status = ReportStatus("r1", "ada", "sent", "unknown_device", "No such serial.", ("5CG1234XYT",))
    write_report_statuses(tray.state_dir, [status])
    tray.refresh()
    (copy,) = read_copy(tray.user_dir)
    assert (copy.state, copy.outcome, copy.closest) == ("sent", "unknown_device", ("5CG1234XYT",))


def test_the_login_notice_says_between_which_times() -> None:
    assert untold([PERIOD], frozenset()) == [PERIOD]
    assert untold([PERIOD], frozenset({PERIOD.period_id})) == []
    words = ended_words([PERIOD])
    assert "location evidence" in words and "It was collected between " in words
    assert "2026" in words and "Lost mode has ended" in words


def test_after_lost_mode_each_person_is_told_once_at_login(
    display: XDisplay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISPLAY", display.name)
    tray = a_tray(tmp_path)
    history = {"periods": [PERIOD.__dict__]}
    (tray.state_dir / LOST_HISTORY_FILE).write_text(json.dumps(history))
    assert tray.tell_ended_lost_mode()

    def window() -> list[str]:
        done = subprocess.run(["xdotool", "search", "--name", "Location evidence was collected"],
                              capture_output=True, text=True, env=display.env(), check=False)  # fmt: skip
        return done.stdout.split()

    assert wait_for(window, 15, "the login notice")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    own = tmp_path / "login-notice.png"
    subprocess.run(["import", "-window", "root", str(own)], env=display.env(), check=True, timeout=30)
    os.replace(own, ARTIFACTS / f"login-notice-{os.getpid()}.png")
    assert ENDED_TITLE.endswith("Location evidence was collected")

    assert not tray.tell_ended_lost_mode(), "told once"
    assert not a_tray(tmp_path).tell_ended_lost_mode(), "not at the next login either"
    other = Tray(tray.state_dir, tmp_path / "other-home", "bob", lambda _t, _m: None)
    assert other.tell_ended_lost_mode(), "another person on the laptop is told too"
    for process in (tray.windows.pop("lost-ended"), other.windows.pop("lost-ended")):
        process.terminate()
        process.wait(10)
