"""A systemd unit's commands run the way systemd runs them, on a machine where systemd is not PID 1.

What is reproduced (systemd.exec(5), systemd.service(5)): the Environment= lines over systemd's
small environment (no inherited variables), StateDirectory= made with its mode, UMask=, stdin from
/dev/null, stdout and stderr to one stream named by JOURNAL_STREAM (a file here, a journald socket
there: the agent checks the stream's device and inode either way), ExecStartPre= before
ExecStart= with "-" meaning a failure is ignored, the working directory /, and SIGTERM to stop.
The sandboxing options need the service manager itself; `sandboxed` applies the file-system ones
by hand (a private mount namespace with read-only binds, as systemd.exec(5) describes them), and
the capability bounding set and NoNewPrivileges with setpriv, so a test can see the checks read the
same inside them; the rest (address families, namespaces) are left to `systemd-analyze security`.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Unit:
    path: Path
    service: dict[str, list[str]]

    @classmethod
    def read(cls, path: Path) -> Unit:
        """Every value of every key (a key may repeat, as Environment= does)."""
        service: dict[str, list[str]] = {}
        section = ""
        for raw in path.read_text(encoding="utf-8").splitlines():
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            if section == "Service":
                key, _, value = line.partition("=")
                service.setdefault(key.strip(), []).append(value.strip())
        return cls(path, service)

    def one(self, key: str, default: str = "") -> str:
        values = self.service.get(key, [])
        return values[-1] if values else default

    def environment(self, journal: IO[bytes]) -> dict[str, str]:
        info = os.fstat(journal.fileno())
        env = {"PATH": SYSTEMD_PATH, "LANG": "C.UTF-8", "JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"}
        for value in self.service.get("Environment", []):
            for pair in shlex.split(value):
                name, _, setting = pair.partition("=")
                env[name] = setting
        return env

    def make_state_directory(self) -> Path | None:
        name = self.one("StateDirectory")
        if not name:
            return None
        path = Path("/var/lib") / name
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(int(self.one("StateDirectoryMode", "0755"), 8))
        return path

    def _popen(self, command: str, journal: IO[bytes]) -> tuple[bool, subprocess.Popen[bytes]]:
        ignore_failure = command.startswith("-")
        argv = shlex.split(command.lstrip("-@:+!"))
        umask = int(self.one("UMask", "0022"), 8)
        process = subprocess.Popen(
            argv,
            cwd="/",
            env=self.environment(journal),
            stdin=subprocess.DEVNULL,
            stdout=journal,
            stderr=journal,
            umask=umask,
            start_new_session=True,
        )
        return ignore_failure, process

    def start(self, journal: IO[bytes], timeout: float = 120) -> subprocess.Popen[bytes]:
        """ExecStartPre= in order (a failing one without "-" fails the start), then ExecStart=."""
        self.make_state_directory()
        for command in self.service.get("ExecStartPre", []):
            ignore_failure, process = self._popen(command, journal)
            code = process.wait(timeout)
            if code and not ignore_failure:
                raise AssertionError(f"ExecStartPre {command!r} exited {code}")
        _ignore, main = self._popen(self.one("ExecStart"), journal)
        return main


def stop(process: subprocess.Popen[bytes], timeout: float = 30) -> int:
    """systemctl stop: SIGTERM, then SIGKILL after TimeoutStopSec."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    return process.wait(timeout)


# systemd.exec(5): what each option makes read-only (or private) for the service.
READ_ONLY = {
    ("ProtectSystem", "yes"): ("/usr", "/boot", "/efi"),
    ("ProtectSystem", "full"): ("/usr", "/boot", "/efi", "/etc"),
    ("ProtectHome", "read-only"): ("/home", "/root", "/run/user"),
    ("ProtectKernelTunables", "yes"): ("/proc/sys", "/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus"),
    ("ProtectControlGroups", "yes"): ("/sys/fs/cgroup",),
}
PRIVATE_TMP = ("/tmp", "/var/tmp")


def sandboxed(unit: Unit, argv: list[str]) -> list[str]:
    """`argv` inside the unit's file-system protections, NoNewPrivileges and capability bounding set
    (unshare and setpriv)."""
    steps = []
    for (key, value), paths in READ_ONLY.items():
        if unit.one(key) == value:
            for path in paths:
                steps.append(
                    f"if [ -e {path} ]; then mount --rbind {path} {path} && "
                    f"mount -o remount,bind,ro {path}; fi"
                )
    if unit.one("PrivateTmp") == "yes":
        steps += [f"mount -t tmpfs tmpfs {path}" for path in PRIVATE_TMP]
    privileges = ["--no-new-privs"] if unit.one("NoNewPrivileges") == "yes" else []
    dropped = unit.one("CapabilityBoundingSet")
    if dropped.startswith("~"):  # the capabilities named are taken out of the bounding set
        names = [name.removeprefix("CAP_").lower() for name in dropped[1:].split()]
        privileges += ["--bounding-set", ",".join(f"-{name}" for name in names)]
    inner = ["setpriv", *privileges, *argv] if privileges else argv
    script = " && ".join([*steps, 'exec "$@"'])
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "-", *inner]
