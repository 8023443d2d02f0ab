"""What the tests saved for people to look at (screenshots, logs), and the lines that say where.

Tests that take screenshots put them under `test-artifacts/<topic>/` in the checkout (ignored by
git). Under pytest-xdist a test's own `print` is swallowed, so the run's summary, printed by the
controller (`tests/conftest.py`), names each folder that received files during the run.
"""

from __future__ import annotations

from pathlib import Path

from tests.helpers.paths import ROOT

ARTIFACTS = ROOT / "test-artifacts"


def saved_since(root: Path, since: float) -> list[str]:
    """One line per folder under `root` holding files written at or after `since` (a
    `time.time()`), with how many and of which kinds; folders untouched by this run are left out,
    so an old screenshot is never passed off as this run's."""
    if not root.is_dir():
        return []
    lines = []
    for folder in sorted(path for path in root.iterdir() if path.is_dir()):
        fresh = [path for path in folder.rglob("*") if path.is_file() and path.stat().st_mtime >= since]
        if fresh:
            kinds = ", ".join(sorted({path.suffix.lstrip(".") or "no suffix" for path in fresh}))
            count = f"{len(fresh)} file" + ("" if len(fresh) == 1 else "s")
            lines.append(f"{folder} ({count}: {kinds})")
    return lines
