"""Where the agent keeps what must outlive a restart, and the software baseline kept there.

The system service and each user's tray must agree on one directory, so it
is chosen in one place: `--state-dir`, then `HOMEROOM_STATE_DIR`, then the
config file, then the OS's machine-wide location (or a per-user one when not
running with admin rights, so `homeroom-agent check` works for anyone).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import replace
from pathlib import Path

from agent.platform_facts import PlatformFacts

BASELINE_FILE = "software-baseline.json"


def default_state_dir(platform: PlatformFacts) -> Path:
    if platform.os == "windows":
        base = os.environ.get("PROGRAMDATA", r"C:\ProgramData") if platform.is_admin else None
        return Path(base or os.environ.get("LOCALAPPDATA", platform.home)) / "Homeroom"
    if platform.os == "macos":
        if platform.is_admin:
            return Path("/Library/Application Support/Homeroom")
        return Path(platform.home) / "Library" / "Application Support" / "Homeroom"
    if platform.is_admin:
        return Path("/var/lib/homeroom")
    xdg = os.environ.get("XDG_STATE_HOME") or os.path.join(platform.home, ".local", "state")
    return Path(xdg) / "homeroom"


def resolve_state_dir(
    flag: str | None, configured: str, platform: PlatformFacts, service_side: bool = False
) -> Path:
    """`service_side`: the user's tray and sign-off read the *service's* directory, whoever runs them."""
    chosen = flag or os.environ.get("HOMEROOM_STATE_DIR") or configured
    if chosen:
        return Path(chosen)
    return default_state_dir(replace(platform, is_admin=True) if service_side else platform)


def write_atomically(path: Path, text: str) -> None:
    """Write-then-rename, so a crash leaves the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class BaselineFile:
    """The software baseline as a JSON file in the state directory."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / BASELINE_FILE

    def load(self) -> frozenset[str] | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ValueError(f"{self.path} is unreadable ({exc}); delete it to take a new baseline") from exc
        return frozenset(str(item) for item in data.get("items", []))

    def establish(self, current: frozenset[str]) -> frozenset[str]:
        existing = self.load()
        if existing is not None:
            return existing
        write_atomically(self.path, json.dumps({"items": sorted(current)}, indent=1))
        return current


class FixedBaseline:
    """A baseline that is only read: the one carried in a diagnostic bundle."""

    def __init__(self, items: frozenset[str]) -> None:
        self.items = items

    def establish(self, current: frozenset[str]) -> frozenset[str]:
        return self.items
