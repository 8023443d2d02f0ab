"""Lost mode on Windows and macOS, run here: the evidence from recorded answers (netsh's real
outputs replayed through the probes), with what Windows lacks taken away, and the OS's own lock
asked for through a substituted user32 (LockWorkStation cannot run here)."""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from agent.desktop import handoff
from agent.lost.duties import LostDuties
from agent.lost.evidence import MACOS_NO_WIFI, HostFacts, collect
from agent.lost.lock import lock_command, lock_screen
from agent.probes import ReplayProbes
from tests.agent.lost.test_lost_mode import ORDER, Queued
from tests.helpers.agent_service import Clock
from tests.helpers.paths import ROOT

POSIX_ONLY = ("fchmod", "pread", "pwrite", "getuid", "geteuid", "fchown", "chown", "lchown", "getpwnam")
FIXTURES = ROOT / "tests" / "fixtures" / "lost"
FACTS = HostFacts(
    {"Wi-Fi": [(-1, "3c-52-82-11-22-33"), (2, "10.20.30.40")], "Loopback": [(2, "127.0.0.1")]},
    ["LINCOLN\\ada"],
    1_799_990_000.0,
)


def netsh_answer(name: str, exit_code: int = 0) -> ReplayProbes:
    text = (FIXTURES / name).read_text(encoding="utf-8")
    return ReplayProbes({"lost.windows.netsh_wlan": {"exit_code": exit_code, "stdout": text, "stderr": ""}})


@pytest.fixture
def no_posix(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in POSIX_ONLY:
        monkeypatch.delattr(os, name, raising=False)
    monkeypatch.setitem(sys.modules, "pwd", None)
    monkeypatch.setattr(handoff, "ON_WINDOWS", True)


@pytest.mark.usefixtures("no_posix")
def test_windows_evidence_from_a_real_german_netsh_output(tmp_path: Path) -> None:
    body = collect(
        netsh_answer("win-netsh-networks-de.txt"), "windows", "case-17", FACTS, lambda: 1_800_000_000.0
    )
    assert body["local_addresses"] == ["10.20.30.40"]
    assert body["gateway"] is None and any("gateway" in why for why in body["unseen"])
    assert len(body["wifi"]) == 9
    assert body["wifi"][0] == {"bssid": "fe:dc:ba:09:87:06", "ssid": "SSID-4", "signal": 88, "channel": 6}
    assert body["logged_in_user"] == "LINCOLN\\ada" and body["uptime_seconds"] == 10_000


@pytest.mark.usefixtures("no_posix")
def test_windows_without_location_services_says_so_in_unseen(tmp_path: Path) -> None:
    body = collect(
        netsh_answer("win-netsh-networks-location-denied-en.txt", exit_code=1), "windows", "c", FACTS
    )
    assert body["wifi"] == []
    assert any("Location services" in why for why in body["unseen"])


@pytest.mark.usefixtures("no_posix")
def test_the_windows_service_keeps_lost_mode_and_queues_evidence(tmp_path: Path) -> None:
    clock = Clock()
    queue = Queued()
    lost = LostDuties(
        tmp_path, "windows", clock, netsh_answer("win-netsh-networks-fr.txt"), facts=lambda: FACTS
    )
    lost.answered({**ORDER, "lock_screen": True})
    assert lost.collect_if_due(queue)
    ((kind, body),) = queue.items
    assert kind == "lost_evidence" and len(body["wifi"]) == 8
    assert LostDuties(tmp_path, "windows", clock).active  # kept across a restart on Windows too


def test_macos_says_what_it_cannot_see() -> None:
    body = collect(ReplayProbes({}), "macos", "case-17", FACTS)
    assert body["wifi"] == [] and MACOS_NO_WIFI in body["unseen"]
    assert "airport" in MACOS_NO_WIFI and "Location Services" in MACOS_NO_WIFI


def test_each_os_locks_with_its_own_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    assert lock_command("linux") == ["loginctl", "lock-sessions"]
    assert lock_command("macos") == ["pmset", "displaysleepnow"]
    assert lock_command("windows") is None
    ran: list[list[str]] = []
    assert lock_screen("linux", run=lambda argv: ran.append(list(argv)) or 0)
    assert ran == [["loginctl", "lock-sessions"]]
    assert not lock_screen("macos", run=lambda argv: 1)

    asked: list[str] = []

    class User32:
        def LockWorkStation(self) -> int:
            asked.append("LockWorkStation")
            return 1

    def win_dll(name: str) -> Any:
        assert name == "user32"
        return User32()

    assert not lock_screen("windows"), "no user32 here: refused, never raised"
    monkeypatch.setattr(ctypes, "WinDLL", win_dll, raising=False)
    assert lock_screen("windows")
    assert asked == ["LockWorkStation"]
