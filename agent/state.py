"""Where the agent keeps what must outlive a restart, and the software baseline kept there.

The system service and each user's tray must agree on one directory, so it
is chosen in one place: `--state-dir`, then `HOMEROOM_STATE_DIR`, then the
config file, then the OS's machine-wide location (or a per-user one when not
running with admin rights, so `homeroom-agent check` works for anyone).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from agent.probes.facts import PlatformFacts
from contract.errors import ConfigError
from contract.requirements import Requirements, requirements_from_text

log = logging.getLogger("homeroom.agent")

# The state directory's layout, shared by the service (which writes) and the user's tray and
# sign-off (which read status.json, policies/ and server-requirements.toml, and add to inbox/).
BASELINE_FILE = "software-baseline.json"
INVENTORY_FILE = "software-inventory.json"  # the last inventory, to tell what an install changed
ENROLMENT_FILE = "enrolment.json"
SCHEDULE_FILE = "schedule.json"
SERVER_REQUIREMENTS_FILE = "server-requirements.toml"
OUTBOX_FILE = "outbox.sqlite3"
STATUS_FILE = "status.json"
POLICIES_DIR = "policies"
POLICIES_INDEX = "policies.json"
USERS_FILE = "users.json"
USER_RESULTS_FILE = "user-results.json"


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


def requirements_in_effect(state_dir: Path, fallback: Callable[[], Requirements]) -> Requirements:
    """The server's copy once one has arrived, else `fallback` (the local file): one rule for the
    service and the tray. A damaged server copy is logged and passed over, never fatal."""
    path = state_dir / SERVER_REQUIREMENTS_FILE
    try:
        return requirements_from_text(str(path), path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        pass
    except (ConfigError, OSError) as exc:
        log.warning("ignoring the server's requirements: %s", exc)
    return fallback()


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
