"""The only door from a check to the operating system.

Checks ask for raw facts here (a command's output, a file, a registry key, a
CIM class, the process list) and hand them to pure parsers. Three kinds of
`Probes` exist: `LiveProbes` asks this machine, `RecordingProbes` asks another
`Probes` and keeps every answer (that is what `homeroom-agent diagnose` saves),
and `ReplayProbes` answers from such a recording on any OS. Because every
answer is plain data, Windows and macOS behaviour can be exercised on Linux.

Beside this module: `facts` (which OS, version, user, desktop, admin rights,
detected once) and one module per OS for the helpers several checks share
(`windows`: how Windows says no; `macos`: property lists and the version;
`linux`: desktop INI files). An OS word in a name means that OS and nothing else.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

NOT_FOUND = "not found"
PERMISSION_DENIED = "permission denied"
NOT_RECORDED = "not recorded in the bundle"
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_OUTPUT_CHARS = 4 * 1024 * 1024
# Checks read these daemons' command lines to find their configuration files.
CMDLINE_KEPT_FOR = frozenset({"clamd"})


@dataclass(frozen=True)
class CommandOutput:
    argv: tuple[str, ...]
    exit_code: int | None
    stdout: str = ""
    stderr: str = ""
    # Why the command produced no exit code: "not found", "timed out after 10 s", ...
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.exit_code == 0

    @property
    def missing(self) -> bool:
        return self.error == NOT_FOUND

    def describe(self) -> str:
        """A short account of a failure, for evidence and error summaries."""
        if self.error:
            return f"{self.argv[0]}: {self.error}"
        detail = (self.stderr or self.stdout).strip().splitlines()
        first = detail[0] if detail else "no output"
        return f"{self.argv[0]} exited {self.exit_code}: {first}"


@dataclass(frozen=True)
class FileContent:
    path: str
    text: str | None
    error: str | None = None
    mtime: float | None = None

    @property
    def missing(self) -> bool:
        return self.error == NOT_FOUND

    @property
    def denied(self) -> bool:
        return self.error == PERMISSION_DENIED


@dataclass(frozen=True)
class DirListing:
    path: str
    entries: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class RegistryKey:
    """One registry key: its values (name -> data) and the names of its subkeys.

    `path` starts with the hive: HKLM, HKCU or HKU.
    """

    path: str
    values: dict[str, Any] = field(default_factory=dict)
    subkeys: tuple[str, ...] = ()
    error: str | None = None

    @property
    def missing(self) -> bool:
        return self.error == NOT_FOUND

    def value(self, name: str, default: Any = None) -> Any:
        """The value `name`, its spelling ignored as Windows ignores it.

        `reg add ... /v ScreenSaveTimeout` creates a value Windows reads as
        ScreenSaveTimeOut (seen in a public capture, tests/fixtures/corpus/SOURCES.md).
        """
        if name in self.values:
            return self.values[name]
        folded = name.casefold()
        return next((data for key, data in self.values.items() if key.casefold() == folded), default)

    def values_named(self, names: tuple[str, ...]) -> dict[str, Any]:
        """The values among `names` that the key holds, under those spellings."""
        found = {name: self.value(name, _ABSENT) for name in names}
        return {name: data for name, data in found.items() if data is not _ABSENT}


_ABSENT = object()


@dataclass(frozen=True)
class ProcessInfo:
    name: str
    exe: str | None = None
    username: str | None = None
    # Only for the daemons in CMDLINE_KEPT_FOR: command lines can carry secrets.
    cmdline: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProcessList:
    processes: tuple[ProcessInfo, ...] = ()
    error: str | None = None


class Probes(Protocol):
    def run(self, argv: Sequence[str], timeout: float = 15.0, probe_id: str | None = None) -> CommandOutput:
        """`probe_id` (e.g. "windows.bitlocker.volume") is the answer's name in a bundle."""
        ...

    def read_file(self, path: str, limit: int = MAX_FILE_BYTES) -> FileContent: ...

    def list_dir(self, path: str) -> DirListing: ...

    def registry_key(self, path: str) -> RegistryKey: ...

    def cim(self, namespace: str, class_name: str) -> CommandOutput: ...

    def processes(self) -> ProcessList: ...


def cim_command(namespace: str, class_name: str) -> list[str]:
    """The PowerShell call that reads a CIM/WMI class as JSON.

    Windows PowerShell 5.1 is on every supported Windows, so it is used rather
    than pwsh. `-ErrorAction Stop` turns "Access denied" and "Invalid class"
    into a non-zero exit with the reason on stderr.
    """
    script = (
        f"Get-CimInstance -Namespace '{namespace}' -ClassName '{class_name}' -ErrorAction Stop"
        " | ConvertTo-Json -Depth 4 -Compress"
    )
    return ["powershell.exe", "-NoProfile", "-NonInteractive", "-Command", script]


SYSTEM_BIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin")


def with_system_dirs(path: str) -> str:
    """PATH plus the sbin directories, where ufw, nft and cryptsetup live.

    An unprivileged user's PATH on Debian lacks /usr/sbin; without this a
    tool that is installed would look absent, and "absent" can mean "fail".
    """
    if os.name == "nt":
        return path
    parts = [p for p in path.split(os.pathsep) if p]
    parts += [d for d in SYSTEM_BIN_DIRS if d not in parts]
    return os.pathsep.join(parts)


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")[:MAX_OUTPUT_CHARS]


class LiveProbes:
    """Asks this machine. Never uses a shell; every command has a timeout."""

    def run(self, argv: Sequence[str], timeout: float = 15.0, probe_id: str | None = None) -> CommandOutput:
        args = tuple(argv)
        env = dict(os.environ)
        # Parsers read English output; the C locale keeps it stable.
        env.update({"LC_ALL": "C", "LANG": "C"})
        env["PATH"] = with_system_dirs(env.get("PATH", ""))
        try:
            done = subprocess.run(
                args,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
                env=env,
                check=False,
            )
        except FileNotFoundError:
            return CommandOutput(args, None, error=NOT_FOUND)
        except PermissionError:
            return CommandOutput(args, None, error=PERMISSION_DENIED)
        except subprocess.TimeoutExpired:
            return CommandOutput(args, None, error=f"timed out after {timeout:g} s")
        except OSError as exc:
            return CommandOutput(args, None, error=str(exc))
        return CommandOutput(args, done.returncode, _decode(done.stdout), _decode(done.stderr))

    def read_file(self, path: str, limit: int = MAX_FILE_BYTES) -> FileContent:
        """`limit` bytes at most: a signature database's header, not its 60 MB body."""
        try:
            with open(path, "rb") as handle:
                data = handle.read(min(limit, MAX_FILE_BYTES))
                mtime = os.fstat(handle.fileno()).st_mtime
        except FileNotFoundError:
            return FileContent(path, None, NOT_FOUND)
        except PermissionError:
            return FileContent(path, None, PERMISSION_DENIED)
        except OSError as exc:
            return FileContent(path, None, exc.strerror or str(exc))
        return FileContent(path, data.decode("utf-8", errors="replace"), None, mtime)

    def list_dir(self, path: str) -> DirListing:
        try:
            return DirListing(path, tuple(sorted(os.listdir(path))))
        except FileNotFoundError:
            return DirListing(path, (), NOT_FOUND)
        except PermissionError:
            return DirListing(path, (), PERMISSION_DENIED)
        except OSError as exc:
            return DirListing(path, (), exc.strerror or str(exc))

    def registry_key(self, path: str) -> RegistryKey:
        return _read_registry_key(path)

    def cim(self, namespace: str, class_name: str) -> CommandOutput:
        return self.run(cim_command(namespace, class_name), timeout=30.0)

    def processes(self) -> ProcessList:
        import psutil

        found: list[ProcessInfo] = []
        for proc in psutil.process_iter(["name", "exe", "username"]):
            info = proc.info
            name = info.get("name") or ""
            cmdline: tuple[str, ...] = ()
            if name in CMDLINE_KEPT_FOR:
                try:
                    cmdline = tuple(proc.cmdline())
                except psutil.Error:
                    cmdline = ()
            found.append(ProcessInfo(name, info.get("exe"), info.get("username"), cmdline))
        return ProcessList(tuple(found))


if sys.platform == "win32":
    import winreg

    _HIVES = {
        "HKLM": winreg.HKEY_LOCAL_MACHINE,
        "HKCU": winreg.HKEY_CURRENT_USER,
        "HKU": winreg.HKEY_USERS,
    }

    def _read_registry_key(path: str) -> RegistryKey:
        hive_name, _, sub = path.partition("\\")
        if hive_name not in _HIVES:
            return RegistryKey(path, error=f"unknown hive {hive_name}")
        try:
            with winreg.OpenKey(_HIVES[hive_name], sub, 0, winreg.KEY_READ | winreg.KEY_WOW64_64KEY) as key:
                n_subkeys, n_values, _ = winreg.QueryInfoKey(key)
                values: dict[str, Any] = {}
                for index in range(n_values):
                    name, data, _kind = winreg.EnumValue(key, index)
                    values[name] = data.hex() if isinstance(data, bytes) else data
                subkeys = tuple(winreg.EnumKey(key, index) for index in range(n_subkeys))
        except FileNotFoundError:
            return RegistryKey(path, error=NOT_FOUND)
        except PermissionError:
            return RegistryKey(path, error=PERMISSION_DENIED)
        except OSError as exc:
            return RegistryKey(path, error=str(exc))
        return RegistryKey(path, values, subkeys)

else:

    def _read_registry_key(path: str) -> RegistryKey:
        return RegistryKey(path, error="no registry on this OS")


def probe_key(kind: str, subject: str) -> str:
    return f"{kind} {subject}"


def command_key(argv: Sequence[str]) -> str:
    """How bundles before probe ids named a command's answer: by its full text."""
    return probe_key("cmd", shlex.join(argv))


def record_key(argv: Sequence[str], probe_id: str | None) -> str:
    """A command's answer is kept under its probe id when it has one, else under its text."""
    return probe_id if probe_id else command_key(argv)


class RecordingProbes:
    """Asks another `Probes` and keeps every answer, keyed so it can be replayed.

    A command with a probe id is kept under that id, with the command beside it
    for people: rewording a PowerShell script then leaves old bundles readable.
    """

    def __init__(self, inner: Probes) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self.records: dict[str, dict[str, Any]] = {}

    def _keep(self, key: str, answer: Any, **beside: str) -> None:
        with self._lock:
            self.records[key] = {**asdict(answer), **beside}

    def run(self, argv: Sequence[str], timeout: float = 15.0, probe_id: str | None = None) -> CommandOutput:
        answer = self._inner.run(argv, timeout, probe_id)
        if probe_id:
            self._keep(probe_id, answer, probe=probe_id, command=shlex.join(argv))
        else:
            self._keep(command_key(argv), answer)
        return answer

    def read_file(self, path: str, limit: int = MAX_FILE_BYTES) -> FileContent:
        answer = self._inner.read_file(path, limit)
        self._keep(probe_key("file", path), answer)
        return answer

    def list_dir(self, path: str) -> DirListing:
        answer = self._inner.list_dir(path)
        self._keep(probe_key("dir", path), answer)
        return answer

    def registry_key(self, path: str) -> RegistryKey:
        answer = self._inner.registry_key(path)
        self._keep(probe_key("reg", path), answer)
        return answer

    def cim(self, namespace: str, class_name: str) -> CommandOutput:
        answer = self._inner.cim(namespace, class_name)
        self._keep(probe_key("cim", f"{namespace} {class_name}"), answer)
        return answer

    def processes(self) -> ProcessList:
        answer = self._inner.processes()
        self._keep("processes", answer)
        return answer


class ReplayProbes:
    """Answers from a recording; anything not recorded is reported as such, and remembered.

    Each thread (the runner gives every check its own) keeps the list of what it
    asked for and the recording lacks, so a replay can say "not in the bundle"
    rather than pass the gap off as the OS's answer. Registry paths match
    without regard to case, as the registry itself does; CIM namespaces and
    classes too, as WMI does.
    """

    def __init__(self, records: dict[str, dict[str, Any]]) -> None:
        self._records = records
        self._folded = {key.casefold(): key for key in records if key.startswith(("reg ", "cim "))}
        self._lock = threading.Lock()
        self._missing: dict[int, list[str]] = {}

    def _note_missing(self, key: str) -> None:
        with self._lock:
            found = self._missing.setdefault(threading.get_ident(), [])
            if key not in found:
                found.append(key)

    def take_missing(self) -> list[str]:
        """What this thread asked for that the recording lacks, since the last call."""
        with self._lock:
            return self._missing.pop(threading.get_ident(), [])

    def _get(self, key: str, *older: str) -> dict[str, Any] | None:
        for candidate in (key, *older):
            found = self._records.get(candidate)
            if found is None and candidate.startswith(("reg ", "cim ")):
                original = self._folded.get(candidate.casefold())
                found = self._records.get(original) if original else None
            if found is not None:
                return found
        self._note_missing(key)
        return None

    def _command(self, argv: tuple[str, ...], key: str, *older: str) -> CommandOutput:
        found = self._get(key, *older)
        if found is None:
            return CommandOutput(argv, None, error=NOT_RECORDED)
        return CommandOutput(
            argv, found.get("exit_code"), found.get("stdout", ""), found.get("stderr", ""), found.get("error")
        )

    def run(self, argv: Sequence[str], timeout: float = 15.0, probe_id: str | None = None) -> CommandOutput:
        args = tuple(argv)
        if probe_id:
            # Bundles from before probe ids kept the answer under the command's text.
            return self._command(args, probe_id, command_key(args))
        return self._command(args, command_key(args))

    def read_file(self, path: str, limit: int = MAX_FILE_BYTES) -> FileContent:
        found = self._get(probe_key("file", path))
        if found is None:
            return FileContent(path, None, NOT_RECORDED)
        return FileContent(path, found.get("text"), found.get("error"), found.get("mtime"))

    def list_dir(self, path: str) -> DirListing:
        found = self._get(probe_key("dir", path))
        if found is None:
            return DirListing(path, (), NOT_RECORDED)
        return DirListing(path, tuple(found.get("entries", ())), found.get("error"))

    def registry_key(self, path: str) -> RegistryKey:
        found = self._get(probe_key("reg", path))
        if found is None:
            return RegistryKey(path, error=NOT_RECORDED)
        return RegistryKey(
            path, dict(found.get("values", {})), tuple(found.get("subkeys", ())), found.get("error")
        )

    def cim(self, namespace: str, class_name: str) -> CommandOutput:
        return self._command(
            tuple(cim_command(namespace, class_name)), probe_key("cim", f"{namespace} {class_name}")
        )

    def processes(self) -> ProcessList:
        found = self._get("processes")
        if found is None:
            return ProcessList((), NOT_RECORDED)
        return ProcessList(
            tuple(
                ProcessInfo(p["name"], p.get("exe"), p.get("username"), tuple(p.get("cmdline", ())))
                for p in found.get("processes", ())
            ),
            found.get("error"),
        )


def cim_instances(output: CommandOutput) -> list[dict[str, Any]]:
    """The instances in a `cim()` answer. ConvertTo-Json writes one object bare, several as a list."""
    text = output.stdout.strip()
    if not text:
        return []
    data = json.loads(text)
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list):
        return [item for item in data if isinstance(item, dict)]
    raise ValueError("CIM output is neither an object nor a list")
