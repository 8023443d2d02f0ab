"""The Windows registry watch, run on Linux with what Windows lacks taken away.

Everything but the DLL calls is the real code: `Win32` declares and calls advapi32 and kernel32 through
ctypes exactly as on Windows, and the DLLs are replaced by a registry and kernel events kept in memory
that behave as Microsoft documents them: RegNotifyChangeKeyValue signals its event once per arming
(https://learn.microsoft.com/windows/win32/api/winreg/nf-winreg-regnotifychangekeyvalue), a 32-bit
view of HKLM\\SOFTWARE is WOW6432Node (the registry redirector,
https://learn.microsoft.com/windows/win32/winprog64/registry-redirector), auto-reset events reset
when a wait returns them, and WaitForMultipleObjects returns the lowest signalled index.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
import types
from collections.abc import Iterator
from typing import Any

import pytest

from agent.watch import start_install_watch, windows
from agent.watch.windows import (
    ERROR_NO_MORE_ITEMS,
    ERROR_SUCCESS,
    INFINITE,
    KEY_NOTIFY,
    KEY_WOW64_32KEY,
    REG_NOTIFY_CHANGE_LAST_SET,
    REG_NOTIFY_CHANGE_NAME,
    RegistryWatch,
    Win32,
    keys_to_watch,
    user_hives,
)

POSIX_ONLY = ("fork", "getuid", "geteuid", "fchmod", "fchown", "chown", "getpwnam", "pread", "pwrite")
ERROR_FILE_NOT_FOUND = 2
UNINSTALL = "SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall"
ADA = "S-1-5-21-1004336348-1177238915-682003330-1001"
ROOTS = {windows.HKEY_LOCAL_MACHINE: "HKLM", windows.HKEY_USERS: "HKU"}


class Kernel:
    """Registry keys and events as Windows keeps them; the watcher reaches them only through the DLLs."""

    def __init__(self) -> None:
        self.keys: set[str] = {"HKLM", "HKU", "HKLM\\SOFTWARE\\WOW6432Node"}
        self.condition = threading.Condition()
        self.next_handle = 100
        self.open_keys: dict[int, str] = {}
        self.events: dict[int, bool] = {}
        self.armed: dict[int, tuple[int, str, bool]] = {}  # event -> (key handle, key, subtree)
        self.notify_flags: set[int] = set()
        self.waits: list[int] = []
        for path in (UNINSTALL, "SOFTWARE\\WOW6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall"):
            self.add(f"HKLM\\{path}")

    def add(self, key: str) -> None:
        """A key and its parents appear (an installer writes its entry); armed watchers are told."""
        with self.condition:
            parts = key.split("\\")
            for end in range(1, len(parts) + 1):
                created = "\\".join(parts[:end])
                if created not in self.keys:
                    self.keys.add(created)
                    self._changed(created)

    def remove(self, key: str) -> None:
        with self.condition:
            self.keys = {k for k in self.keys if k != key and not k.startswith(key + "\\")}
            self._changed(key)

    def _changed(self, key: str) -> None:
        parent = key.rsplit("\\", 1)[0]
        for event, (_handle, watched, subtree) in list(self.armed.items()):
            if watched == parent or (subtree and key.startswith(watched + "\\")):
                del self.armed[event]  # once per arming
                self.events[event] = True
        self.condition.notify_all()

    def _handle(self) -> int:
        self.next_handle += 1
        return self.next_handle

    @staticmethod
    def path(root: int, sub: str, access: int) -> str:
        if access & KEY_WOW64_32KEY and sub.upper().startswith("SOFTWARE\\"):
            sub = "SOFTWARE\\WOW6432Node\\" + sub[len("SOFTWARE\\") :]
        return f"{ROOTS[root]}\\{sub}" if sub else ROOTS[root]

    # advapi32
    def RegOpenKeyExW(self, root: Any, sub: str, options: int, access: int, out: Any) -> int:
        with self.condition:
            key = self.path(root, sub, access)
            if key not in self.keys:
                return ERROR_FILE_NOT_FOUND
            handle = self._handle()
            self.open_keys[handle] = key
            out.contents.value = handle
            return ERROR_SUCCESS

    def RegEnumKeyExW(self, key: int, index: int, buffer: Any, size: Any, *_: Any) -> int:
        with self.condition:
            parent = self.open_keys[key]
            children = sorted(k[len(parent) + 1 :] for k in self.keys if k.startswith(parent + "\\"))
            children = [name for name in children if "\\" not in name]
            if index >= len(children):
                return ERROR_NO_MORE_ITEMS
            buffer.value = children[index]
            size.contents.value = len(children[index])
            return ERROR_SUCCESS

    def RegNotifyChangeKeyValue(
        self, key: int, subtree: bool, flags: int, event: int, asynchronous: bool
    ) -> int:
        assert asynchronous, "the watcher never blocks in RegNotifyChangeKeyValue"
        with self.condition:
            self.notify_flags.add(flags)
            self.armed[event] = (key, self.open_keys[key], bool(subtree))
            return ERROR_SUCCESS

    def RegCloseKey(self, key: int) -> int:
        with self.condition:
            del self.open_keys[key]
            for event, armed in list(self.armed.items()):
                if armed[0] == key:
                    del self.armed[event]
            return ERROR_SUCCESS

    # kernel32
    def CreateEventW(self, attributes: Any, manual_reset: bool, initial: bool, name: Any) -> int:
        assert not manual_reset and not initial and name is None
        with self.condition:
            handle = self._handle()
            self.events[handle] = False
            return handle

    def SetEvent(self, event: int) -> int:
        with self.condition:
            self.events[event] = True
            self.condition.notify_all()
            return 1

    def CloseHandle(self, handle: int) -> int:
        with self.condition:
            del self.events[handle]
            return 1

    def WaitForMultipleObjects(self, count: int, handles: Any, wait_all: bool, timeout: int) -> int:
        assert timeout == INFINITE and not wait_all, "one wait, no timeout: no polling"
        listed = [handles[i] for i in range(count)]
        with self.condition:
            self.waits.append(count)
            while True:
                for index, handle in enumerate(listed):
                    if self.events.get(handle):
                        self.events[handle] = False  # auto-reset
                        return index
                self.condition.wait()


ADVAPI32 = ("RegOpenKeyExW", "RegEnumKeyExW", "RegNotifyChangeKeyValue", "RegCloseKey")
KERNEL32 = ("CreateEventW", "SetEvent", "CloseHandle", "WaitForMultipleObjects")


def dll(kernel: Kernel, names: tuple[str, ...]) -> types.SimpleNamespace:
    """A DLL as ctypes shows it: functions that take `argtypes` and `restype`, calling into the kernel."""

    def function(method: Any) -> Any:
        def call(*args: Any) -> Any:
            assert hasattr(call, "argtypes") and hasattr(call, "restype"), "declared before it is called"
            return method(*args)

        return call

    return types.SimpleNamespace(**{name: function(getattr(kernel, name)) for name in names})


def win32(kernel: Kernel) -> Win32:
    return Win32(dll(kernel, ADVAPI32), dll(kernel, KERNEL32))


class Counter:
    def __init__(self) -> None:
        self.count = 0
        self.condition = threading.Condition()

    def __call__(self) -> None:
        with self.condition:
            self.count += 1
            self.condition.notify_all()

    def reaches(self, count: int, timeout: float = 2) -> bool:
        with self.condition:
            return self.condition.wait_for(lambda: self.count >= count, timeout)


@pytest.fixture
def kernel(monkeypatch: pytest.MonkeyPatch) -> Kernel:
    """Windows' os module has no fork, uids or pwd: a call to any of them fails these tests."""
    for name in POSIX_ONLY:
        monkeypatch.delattr(os, name, raising=False)
    monkeypatch.setitem(sys.modules, "pwd", None)
    return Kernel()


@pytest.fixture
def watch(kernel: Kernel) -> Iterator[tuple[RegistryWatch, Counter]]:
    counter = Counter()
    running = RegistryWatch(counter, win32(kernel))
    running.start()
    try:
        yield running, counter
    finally:
        running.stop()


def test_machine_wide_installs_are_seen_each_time_the_key_is_armed_again(
    watch: tuple[RegistryWatch, Counter], kernel: Kernel
) -> None:
    running, counter = watch
    assert [key.name for key in running.watching] == [
        f"HKLM\\{UNINSTALL}",
        f"HKLM\\{UNINSTALL} (32-bit)",
        "HKU",
    ]
    assert running.problems == []
    assert kernel.notify_flags == {REG_NOTIFY_CHANGE_NAME | REG_NOTIFY_CHANGE_LAST_SET}
    kernel.add(f"HKLM\\{UNINSTALL}\\{{90160000-0011-0000-1000-0000000FF1CE}}")
    assert counter.reaches(1)
    kernel.add(f"HKLM\\{UNINSTALL}\\Zoom")
    assert counter.reaches(2), "re-armed after the first change: a notification fires once"
    kernel.remove(f"HKLM\\{UNINSTALL}\\Zoom")
    assert counter.reaches(3)


def test_a_32_bit_install_is_seen_through_the_32_bit_view(
    watch: tuple[RegistryWatch, Counter], kernel: Kernel
) -> None:
    _, counter = watch
    kernel.add("HKLM\\SOFTWARE\\WOW6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\7-Zip")
    assert counter.reaches(1)


def test_a_user_signing_in_and_installing_for_themselves_is_seen(
    watch: tuple[RegistryWatch, Counter], kernel: Kernel
) -> None:
    running, counter = watch
    kernel.add(f"HKU\\{ADA}\\Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall")  # Ada's hive loads
    assert counter.reaches(1)
    kernel.add(f"HKU\\{ADA}_Classes")
    assert counter.reaches(2)
    assert f"HKU\\{ADA}\\Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall" in [
        key.name for key in running.watching
    ]
    kernel.add(f"HKU\\{ADA}\\Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\Microsoft VS Code")
    assert counter.reaches(3), "a per-user install (VS Code's user installer)"


def test_a_users_first_own_install_creates_their_uninstall_key_and_is_seen(kernel: Kernel) -> None:
    kernel.add(f"HKU\\{ADA}\\Software\\Microsoft\\Windows\\CurrentVersion")
    counter = Counter()
    running = RegistryWatch(counter, win32(kernel))
    running.start()
    try:
        assert running.watching[-1].name == f"HKU\\{ADA}\\Software\\Microsoft\\Windows\\CurrentVersion"
        kernel.add(f"HKU\\{ADA}\\Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\Spotify")
        assert counter.reaches(1)
        kernel.add(f"HKU\\{ADA}\\Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\Zoom")
        assert counter.reaches(2), "now the Uninstall key itself is watched"
    finally:
        running.stop()


def test_a_key_that_cannot_be_opened_is_named_and_the_rest_are_watched(kernel: Kernel) -> None:
    kernel.remove("HKLM\\SOFTWARE\\WOW6432Node\\Microsoft")
    counter = Counter()
    running = RegistryWatch(counter, win32(kernel))
    running.start()
    try:
        assert len(running.problems) == 1 and "(32-bit)" in running.problems[0]
        assert "Windows error 2" in running.problems[0]
        kernel.add(f"HKLM\\{UNINSTALL}\\Zoom")
        assert counter.reaches(1)
    finally:
        running.stop()


def test_stopping_wakes_the_one_wait_and_closes_every_handle(kernel: Kernel) -> None:
    running = RegistryWatch(Counter(), win32(kernel))
    running.start()
    running.stop()
    assert not running.thread.is_alive()
    assert kernel.open_keys == {} and kernel.events == {}
    assert kernel.waits == [4], "one wait on the stop event and the three keys' events, until stopped"


def test_the_service_gets_the_windows_watch_through_the_one_os_choice(
    kernel: Kernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(windows, "Win32", lambda: win32(kernel))
    changed = threading.Event()
    watch = start_install_watch("windows", changed.set, quiet=0.1)
    try:
        assert watch.problems == [] and len(watch.watching) == 3
        kernel.add(f"HKLM\\{UNINSTALL}\\Zoom")
        assert changed.wait(2)
    finally:
        watch.stop()


def test_without_the_windows_dlls_the_watch_says_so_and_does_not_raise() -> None:
    assert not hasattr(ctypes, "WinDLL")
    watch = start_install_watch("windows", lambda: None)
    try:
        assert watch.watching == [] and len(watch.problems) == 1
        assert watch.problems[0].startswith("the install watcher could not start")
    finally:
        watch.stop()


def test_which_keys_per_signed_in_user() -> None:
    assert user_hives([".DEFAULT", "S-1-5-18", ADA, f"{ADA}_Classes"]) == [".DEFAULT", "S-1-5-18", ADA]
    keys = keys_to_watch([ADA, "S-1-5-18"], lambda sid: sid == ADA)
    assert [(key.name, key.subtree, key.changes_the_keys) for key in keys[3:]] == [
        (f"HKU\\{ADA}\\Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall", True, False),
        ("HKU\\S-1-5-18\\Software\\Microsoft\\Windows\\CurrentVersion", False, True),
    ]
    assert all(key.view == 0 or key.root == windows.HKEY_LOCAL_MACHINE for key in keys)
    assert KEY_NOTIFY == 0x10
