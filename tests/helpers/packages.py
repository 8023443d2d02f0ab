"""Real Debian packages, built in the test with dpkg-deb and installed with the real dpkg.

Several engineers' tests install packages on this one machine at once: dpkg takes a lock, so a call
that finds it held waits and tries again rather than failing the test.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from pathlib import Path

LOCK_WAIT_SECONDS = 120.0


def dpkg_available() -> bool:
    return shutil.which("dpkg") is not None and shutil.which("dpkg-deb") is not None


def unique_name(topic: str = "swwatch") -> str:
    return f"hr-{topic}-{uuid.uuid4().hex[:10]}"


def build_package(folder: Path, name: str, version: str = "1.0") -> Path:
    """A tiny architecture-independent package holding one documentation file."""
    root = folder / f"{name}_{version}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {name}\n"
        f"Version: {version}\n"
        "Architecture: all\n"
        "Maintainer: Homeroom tests <tests@homeroom.invalid>\n"
        "Description: Homeroom test package\n"
        " Installed and removed by Homeroom's tests of the install watch.\n",
        encoding="utf-8",
    )
    doc = root / "usr" / "share" / "doc" / name
    doc.mkdir(parents=True)
    (doc / "README").write_text("A test package; safe to remove.\n", encoding="utf-8")
    deb = folder / f"{name}_{version}_all.deb"
    subprocess.run(
        ["dpkg-deb", "--build", "--root-owner-group", str(root), str(deb)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return deb


def dpkg(*args: str) -> subprocess.CompletedProcess[str]:
    """`dpkg ARGS`, waiting while another process holds dpkg's lock."""
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        done = subprocess.run(["dpkg", *args], capture_output=True, text=True, timeout=120, check=False)
        locked = done.returncode != 0 and "lock" in (done.stderr + done.stdout).lower()
        if not locked or time.monotonic() > deadline:
            assert done.returncode == 0, f"dpkg {' '.join(args)}: {done.stdout}{done.stderr}"
            return done
        time.sleep(0.2)


def installed(name: str) -> bool:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f", "${db:Status-Abbrev}", name], capture_output=True, text=True, check=False
    )
    return done.returncode == 0 and done.stdout.startswith("ii")


def purge(name: str) -> None:
    """Teardown: gone whatever state the test left it in (a lock held by others is waited for)."""
    if subprocess.run(["dpkg-query", "-W", name], capture_output=True, check=False).returncode == 0:
        dpkg("--purge", name)
