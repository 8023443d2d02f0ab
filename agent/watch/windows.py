"""Windows installs, seen through the registry's change notification on the Uninstall keys.

No file changes reliably when Windows software is installed (MSI, an exe installer, a per-user
installer each write somewhere else), but every program Settings → Apps lists has an Uninstall
entry. So the keys the inventory reads are watched with RegNotifyChangeKeyValue: machine-wide 64-
and 32-bit, and each signed-in user's own (HKU\\<SID>, loaded while the user is signed in).

A notification fires once: the key is armed again after each change. A change to HKEY_USERS itself
(a user signed in, a hive was loaded) or to a user's CurrentVersion key (their Uninstall key was
created) changes which keys exist, so then every key is opened and armed afresh. One thread waits
on all the events at once, with no timeout, and on a stop event: idle, it is asleep.

Every call into Windows is in `Win32` (ctypes: advapi32 and kernel32), made by the real DLLs on
Windows; the rest of this module is plain Python, and the tests run it on Linux against a registry
kept in memory behind the same calls.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("homeroom.agent")

# winreg.h / winnt.h / winbase.h / winerror.h
HKEY_LOCAL_MACHINE = 0x80000002
HKEY_USERS = 0x80000003
KEY_ENUMERATE_SUB_KEYS = 0x0008
KEY_NOTIFY = 0x0010
KEY_WOW64_64KEY = 0x0100
KEY_WOW64_32KEY = 0x0200
REG_NOTIFY_CHANGE_NAME = 0x00000001  # a subkey added or deleted
REG_NOTIFY_CHANGE_LAST_SET = 0x00000004  # a value set (an upgrade rewrites DisplayVersion)
ERROR_SUCCESS = 0
ERROR_NO_MORE_ITEMS = 259
WAIT_OBJECT_0 = 0
WAIT_FAILED = 0xFFFFFFFF
INFINITE = 0xFFFFFFFF
MAXIMUM_WAIT_OBJECTS = 64

UNINSTALL = "SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall"
USER_CURRENT_VERSION = "Software\\Microsoft\\Windows\\CurrentVersion"
USER_UNINSTALL = USER_CURRENT_VERSION + "\\Uninstall"
ROOT_NAMES = {HKEY_LOCAL_MACHINE: "HKLM", HKEY_USERS: "HKU"}


@dataclass(frozen=True)
class Key:
    root: int
    path: str
    what: str
    view: int = 0  # KEY_WOW64_64KEY or KEY_WOW64_32KEY: which registry a 64-bit Windows shows
    subtree: bool = True
    # A change here changes which keys there are to watch: open and arm them all again.
    changes_the_keys: bool = False

    @property
    def name(self) -> str:
        where = (
            f"{ROOT_NAMES.get(self.root, hex(self.root))}\\{self.path}"
            if self.path
            else ROOT_NAMES[self.root]
        )
        return where + (" (32-bit)" if self.view == KEY_WOW64_32KEY else "")


MACHINE_KEYS = (
    Key(HKEY_LOCAL_MACHINE, UNINSTALL, "machine-wide programs", KEY_WOW64_64KEY),
    Key(HKEY_LOCAL_MACHINE, UNINSTALL, "machine-wide 32-bit programs", KEY_WOW64_32KEY),
    Key(HKEY_USERS, "", "users signing in (their hives loaded)", subtree=False, changes_the_keys=True),
)


def user_hives(subkeys: list[str]) -> list[str]:
    """HKEY_USERS' subkeys that are a user's own hive: not the `<SID>_Classes` companions."""
    return [name for name in subkeys if not name.lower().endswith("_classes")]


def keys_to_watch(hives: list[str], has_uninstall: Callable[[str], bool]) -> list[Key]:
    """Machine keys, HKEY_USERS, and per loaded hive its Uninstall key, or its CurrentVersion key
    (names only) until the user's first per-user install creates Uninstall (pure)."""
    keys = list(MACHINE_KEYS)
    for sid in hives:
        if has_uninstall(sid):
            keys.append(Key(HKEY_USERS, f"{sid}\\{USER_UNINSTALL}", "a user's own programs"))
        else:
            keys.append(
                Key(
                    HKEY_USERS,
                    f"{sid}\\{USER_CURRENT_VERSION}",
                    "a user's own programs (none yet)",
                    subtree=False,
                    changes_the_keys=True,
                )
            )
    return keys[: MAXIMUM_WAIT_OBJECTS - 1]  # one wait holds at most 64 handles, the stop event is one


class Win32:
    """The Windows calls this watcher makes, through ctypes, and nothing else.

    `advapi32` and `kernel32` are the DLLs (ctypes.WinDLL), loaded on first use; tests hand in
    objects with the same functions. Out-parameters are passed as ctypes pointers.
    """

    def __init__(self, advapi32: Any = None, kernel32: Any = None) -> None:
        import ctypes
        from ctypes import wintypes

        self.ctypes = ctypes
        self.wintypes = wintypes
        if advapi32 is None or kernel32 is None:
            advapi32, kernel32 = self._load()
        self.advapi32 = advapi32
        self.kernel32 = kernel32
        self._declare()

    def _load(self) -> tuple[Any, Any]:
        windll: Any = getattr(self.ctypes, "WinDLL")  # noqa: B009 - only Windows has it
        return windll("advapi32", use_last_error=True), windll("kernel32", use_last_error=True)

    def _declare(self) -> None:
        c, w = self.ctypes, self.wintypes
        a, k = self.advapi32, self.kernel32
        a.RegOpenKeyExW.argtypes = [w.HKEY, w.LPCWSTR, w.DWORD, w.DWORD, c.POINTER(w.HKEY)]
        a.RegOpenKeyExW.restype = w.LONG
        a.RegEnumKeyExW.argtypes = [
            w.HKEY, w.DWORD, w.LPWSTR, c.POINTER(w.DWORD), c.POINTER(w.DWORD), w.LPWSTR,
            c.POINTER(w.DWORD), c.c_void_p,
        ]  # fmt: skip
        a.RegEnumKeyExW.restype = w.LONG
        a.RegNotifyChangeKeyValue.argtypes = [w.HKEY, w.BOOL, w.DWORD, w.HANDLE, w.BOOL]
        a.RegNotifyChangeKeyValue.restype = w.LONG
        a.RegCloseKey.argtypes = [w.HKEY]
        a.RegCloseKey.restype = w.LONG
        k.CreateEventW.argtypes = [c.c_void_p, w.BOOL, w.BOOL, w.LPCWSTR]
        k.CreateEventW.restype = w.HANDLE
        k.SetEvent.argtypes = [w.HANDLE]
        k.SetEvent.restype = w.BOOL
        k.CloseHandle.argtypes = [w.HANDLE]
        k.CloseHandle.restype = w.BOOL
        k.WaitForMultipleObjects.argtypes = [w.DWORD, c.POINTER(w.HANDLE), w.BOOL, w.DWORD]
        k.WaitForMultipleObjects.restype = w.DWORD

    def _error(self, call: str, code: int | None = None) -> OSError:
        last = getattr(self.ctypes, "get_last_error", lambda: 0)  # Windows-only in ctypes
        code = last() if code is None else code
        return OSError(code, f"{call} failed with Windows error {code}")

    def open_key(self, root: int, path: str, access: int) -> int:
        handle = self.wintypes.HKEY()
        code = self.advapi32.RegOpenKeyExW(root, path, 0, access, self.ctypes.pointer(handle))
        if code != ERROR_SUCCESS:
            raise self._error("RegOpenKeyExW", code)
        return int(handle.value or 0)

    def subkeys(self, key: int) -> list[str]:
        names: list[str] = []
        buffer = self.ctypes.create_unicode_buffer(256)  # the longest key name the registry allows is 255
        while True:
            size = self.wintypes.DWORD(len(buffer))
            code = self.advapi32.RegEnumKeyExW(
                key, len(names), buffer, self.ctypes.pointer(size), None, None, None, None
            )
            if code == ERROR_NO_MORE_ITEMS:
                return names
            if code != ERROR_SUCCESS:
                raise self._error("RegEnumKeyExW", code)
            names.append(buffer.value)

    def close_key(self, key: int) -> None:
        self.advapi32.RegCloseKey(key)

    def new_event(self) -> int:
        """An auto-reset event: a wait that returns it also resets it."""
        handle = self.kernel32.CreateEventW(None, False, False, None)
        if not handle:
            raise self._error("CreateEventW")
        return int(handle)

    def notify(self, key: int, subtree: bool, event: int) -> None:
        """Arm `event` for the next change of `key`: once, asynchronously."""
        flags = REG_NOTIFY_CHANGE_NAME | REG_NOTIFY_CHANGE_LAST_SET
        code = self.advapi32.RegNotifyChangeKeyValue(key, subtree, flags, event, True)
        if code != ERROR_SUCCESS:
            raise self._error("RegNotifyChangeKeyValue", code)

    def wait_any(self, events: list[int]) -> int:
        """Block, with no timeout, until one event is set; its index in `events`."""
        array = (self.wintypes.HANDLE * len(events))(*events)
        index = int(self.kernel32.WaitForMultipleObjects(len(events), array, False, INFINITE))
        if index == WAIT_FAILED or not WAIT_OBJECT_0 <= index < WAIT_OBJECT_0 + len(events):
            raise self._error("WaitForMultipleObjects")
        return index - WAIT_OBJECT_0

    def set_event(self, event: int) -> None:
        self.kernel32.SetEvent(event)

    def close_handle(self, handle: int) -> None:
        self.kernel32.CloseHandle(handle)


@dataclass
class Armed:
    key: Key
    handle: int
    event: int


class RegistryWatch:
    """The watching thread. `watching` names the keys armed; `problems` those that could not be."""

    def __init__(self, poke: Callable[[], None], win32: Win32 | None = None) -> None:
        self.poke = poke
        self.win32 = win32 or Win32()
        self.armed: list[Armed] = []
        self.problems: list[str] = []
        self._stop_event = self.win32.new_event()
        self._stopping = False
        self.thread = threading.Thread(target=self._run, name="homeroom-watch-registry", daemon=True)

    @property
    def watching(self) -> list[Key]:
        return [armed.key for armed in self.armed]

    def start(self) -> None:
        self._arm_all()
        self.thread.start()

    def stop(self) -> None:
        self._stopping = True
        self.win32.set_event(self._stop_event)
        if self.thread.is_alive():
            self.thread.join(5)
        self._close_all()
        self.win32.close_handle(self._stop_event)

    # --- the keys ---------------------------------------------------------------------------

    def _hives(self) -> list[str]:
        try:
            users = self.win32.open_key(HKEY_USERS, "", KEY_ENUMERATE_SUB_KEYS)
        except OSError as exc:
            self.problems.append(f"HKU: {exc}")
            return []
        try:
            return user_hives(self.win32.subkeys(users))
        except OSError as exc:
            self.problems.append(f"HKU: {exc}")
            return []
        finally:
            self.win32.close_key(users)

    def _has_uninstall(self, sid: str) -> bool:
        try:
            self.win32.close_key(self.win32.open_key(HKEY_USERS, f"{sid}\\{USER_UNINSTALL}", KEY_NOTIFY))
        except OSError:
            return False
        return True

    def _arm_all(self) -> None:
        """Open and arm every key; one that cannot be opened or armed is named, the rest are armed."""
        self._close_all()
        self.problems = []
        for key in keys_to_watch(self._hives(), self._has_uninstall):
            try:
                handle = self.win32.open_key(key.root, key.path, KEY_NOTIFY | key.view)
            except OSError as exc:
                self.problems.append(f"{key.name}: {exc}")
                continue
            try:
                event = self.win32.new_event()
                self.win32.notify(handle, key.subtree, event)
            except OSError as exc:
                self.win32.close_key(handle)
                self.problems.append(f"{key.name}: {exc}")
                continue
            self.armed.append(Armed(key, handle, event))

    def _close_all(self) -> None:
        for armed in self.armed:
            self.win32.close_key(armed.handle)
            self.win32.close_handle(armed.event)
        self.armed = []

    # --- the thread -------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping:
            try:
                index = self.win32.wait_any([self._stop_event] + [armed.event for armed in self.armed])
            except OSError:
                log.exception("the registry watch stopped; installs are seen at the scheduled check")
                return
            if index == 0 or self._stopping:
                return
            fired = self.armed[index - 1]
            # Armed again before the service is told: a change from here on fires again, and one made
            # before is in the inventory the service takes after this poke.
            if fired.key.changes_the_keys:
                self._arm_all()
            else:
                try:
                    self.win32.notify(
                        fired.handle, fired.key.subtree, fired.event
                    )  # a notification fires once
                except OSError as exc:  # the key was deleted: open what there is now
                    log.warning("could not watch %s again (%s): opening the keys afresh", fired.key.name, exc)
                    self._arm_all()
            self.poke()
