"""The run's summary names the folders this run saved screenshots into, and only those."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.helpers.artifacts import saved_since


def test_only_folders_written_during_the_run_are_named_with_their_counts(tmp_path: Path) -> None:
    started = time.time()
    old = tmp_path / "tray"
    old.mkdir()
    stale = old / "icon.png"
    stale.write_bytes(b"png")
    os.utime(stale, (started - 3600, started - 3600))
    fresh = tmp_path / "console"
    (fresh / "nested").mkdir(parents=True)
    (fresh / "overview.png").write_bytes(b"png")
    (fresh / "nested" / "devices.png").write_bytes(b"png")
    (fresh / "browser.log").write_text("log", encoding="utf-8")
    (tmp_path / "loose-file.png").write_bytes(b"png")

    assert saved_since(tmp_path, started) == [f"{fresh} (3 files: log, png)"]


def test_nothing_is_said_when_nothing_was_saved(tmp_path: Path) -> None:
    assert saved_since(tmp_path / "missing", time.time()) == []
    (tmp_path / "empty").mkdir()
    assert saved_since(tmp_path, time.time()) == []
