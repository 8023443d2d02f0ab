"""pystray's xorg backend for real, on its own Xvfb with trayer: tooltips in any language, a stopped service,
and a district's agent.toml that hides Quit.

The xorg backend names its window with WM_NAME, which is Latin-1 only: the "—" in our tooltips once raised
UnicodeEncodeError on the first refresh and the tray never refreshed again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.desktop import Desktop, colour_pixels, desktop, missing_tools, stop, wait_for
from tests.helpers.need import need
from tests.helpers.paths import ROOT

ARTIFACTS = ROOT / "test-artifacts" / "tray-xorg"
GREEN, RED, GREY = (0x2E, 0x7D, 0x32), (0xC6, 0x28, 0x28), (0x61, 0x61, 0x61)
IDS = ("disk_encryption", "firewall", "power_on_password", "antivirus", "software")
NOT_LATIN_1 = "Брандмауэр выключен — 防火墙已关闭 → ✗"


def write_status(state_dir: Path, failing: str | None, age: timedelta = timedelta(0)) -> None:
    results: list[dict[str, Any]] = [
        {
            "id": check_id,
            "title": check_id.replace("_", " ").capitalize(),
            "status": "fail" if check_id == failing else "pass",
            "summary": NOT_LATIN_1 if check_id == failing else "fine",
            "remediation": "Ask IT — 请联系 IT" if check_id == failing else None,
        }
        for check_id in IDS
    ]
    status = {
        "updated_at": (datetime.now(timezone.utc) - age).isoformat(),
        "results": results,
        "device_id": "dev-42",
        "audience": "staff",
        "policies": {},
    }
    temporary = state_dir / ".status.json.tmp"
    temporary.write_text(json.dumps(status), encoding="utf-8")
    os.replace(temporary, state_dir / "status.json")


def shows(session: Desktop, rgb: tuple[int, int, int], name: str, log: Path) -> None:
    def seen() -> bool:
        return len(colour_pixels(session.screenshot(ARTIFACTS / f"icon-{name}.png"), rgb)) >= 40

    wait_for(
        seen, 30, lambda: f"the icon to turn {name}; tray log:\n{log.read_text(errors='replace')}", step=0.5
    )


def window_names(session: Desktop) -> list[str]:
    """Every named window's name, to say what the display held when a wait failed."""
    names = []
    for window in session.find_window("."):
        try:
            names.append(session.run("xdotool", "getwindowname", window).strip())
        except Exception as exc:  # noqa: BLE001 - a window gone meanwhile
            names.append(f"{window}: {exc}")
    return names


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Desktop, Path, Path]]:
    missing = missing_tools()
    need(not missing, f"display tests need {', '.join(missing)}: apt-get install xvfb trayer xdotool")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    state_dir, home = tmp_path / "state", tmp_path / "home"
    (state_dir / "inbox").mkdir(parents=True)
    os.chmod(state_dir / "inbox", 0o1733)  # noqa: S103 - the service's inbox, open to all like /tmp
    (state_dir / "server-requirements.toml").write_text(f"[checks]\nenabled = {json.dumps(list(IDS))}\n")
    agent_toml = tmp_path / "agent.toml"
    agent_toml.write_text("[tray]\nshow_quit = false\n", encoding="utf-8")
    write_status(state_dir, failing="firewall")
    with desktop(tmp_path / "desktop") as session:
        env = {**session.env, "PYSTRAY_BACKEND": "xorg", "HOME": str(home), "XDG_STATE_HOME": str(home / "s")}
        log = tmp_path / "tray.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "agent.desktop.tray", "--state-dir", str(state_dir),
                 "--poll-seconds", "0.5", "--config", str(agent_toml)],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            yield session, state_dir, log
        finally:
            stop(process)


def test_xorg_tray_shows_any_language_keeps_refreshing_and_sees_a_stopped_service(
    running: tuple[Desktop, Path, Path],
) -> None:
    session, state_dir, log = running
    shows(session, RED, "red", log)
    # The tooltip (the window's name) says the same thing, as far as Latin-1 can.
    wait_for(
        lambda: session.find_window("1 thing to fix: Firewall - "),
        30,
        lambda: (
            f"the window named by the tooltip; windows named: {window_names(session)}; "
            f"tray log:\n{log.read_text(errors='replace')}"
        ),
    )
    write_status(state_dir, failing=None)
    shows(session, GREEN, "green", log)  # the refresh after the non-Latin-1 one still happened
    write_status(state_dir, failing=None, age=timedelta(minutes=30))  # the service stopped half an hour ago
    shows(session, GREY, "grey-not-running", log)
    text = log.read_text(errors="replace")
    assert "icon: grey — Homeroom is not running — tell IT" in text
    assert "Traceback" not in text and "UnicodeEncodeError" not in text
    assert "backend: pystray._xorg" in text
    menu = next(line for line in text.splitlines() if "; menu: " in line).split("; menu: ")[1]
    assert menu == (
        "My laptop's status | Check now | Acceptable Use Policy | What Homeroom collects | "
        "Ask IT to approve an app… | Report lost or stolen… | About"
    )
