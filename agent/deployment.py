"""Where a silent install leaves the server address and the enrolment token for the first enrolment.

District IT pushes one package to thousands of laptops and nobody types `homeroom-agent enroll`:

- **Windows**: `msiexec /i homeroom.msi /qn HOMEROOM_SERVER_URL=… HOMEROOM_TOKEN=…`. The MSI's
  custom action (running as SYSTEM: `homeroom-service.exe after-install`) stages both in
  `STATE/enrolment-token.json`, which gets a DACL for SYSTEM alone *before* the token is written
  into it (the state folder under ProgramData is readable by every user). The service enrols with
  it at its first start and deletes it once enrolled: the token is not left lying on the laptop.
- **macOS**: the district's MDM deploys a configuration profile (installer/macos/homeroom.mobileconfig)
  whose payload macOS writes to `/Library/Managed Preferences/org.homeroom.agent.plist`, keys
  `ServerURL` and `EnrolmentToken`; the package's postinstall enrols from it. That file belongs to
  the MDM (it is readable by every user, as managed preferences are): IT should give the profile a
  token with an expiry, or revoke it once the roll-out is done.

`homeroom-agent enroll` takes its server and token from the flags, then agent.toml, then what is
here (`deployed_enrolment`). Parsing is pure (bytes or text in, `Deployment` out); only
`stage_token_file` and `read_*` touch files.
"""

from __future__ import annotations

import json
import os
import plistlib
from dataclasses import dataclass
from pathlib import Path

from agent import windows_acl
from contract.errors import ConfigError

PREFERENCE_DOMAIN = "org.homeroom.agent"
MANAGED_PREFERENCES = Path("/Library/Managed Preferences") / f"{PREFERENCE_DOMAIN}.plist"
SERVER_KEY = "ServerURL"
TOKEN_KEY = "EnrolmentToken"
TOKEN_FILE = "enrolment-token.json"
# An enrolment token is 43 characters (server.auth.new_token); anything far longer is not one.
MAX_FIELD_LENGTH = 2048

# The staged token: the service's account alone (not even Administrators: they can take
# ownership if they must, which is audited; nobody reads it by accident).
TOKEN_FILE_ACL: tuple[windows_acl.Ace, ...] = (
    windows_acl.Ace(windows_acl.SYSTEM, windows_acl.FILE_ALL_ACCESS),
)
ON_WINDOWS = os.name == "nt"


@dataclass(frozen=True)
class Deployment:
    server_url: str
    token: str
    source: str  # where it came from, for messages


def _field(where: str, data: dict[str, object], key: str, fix: str) -> str:
    value = data.get(key)
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise ConfigError(where, None, f"{key} is a {type(value).__name__}, not text", fix)
    if len(value) > MAX_FIELD_LENGTH or any(ord(ch) < 32 or ch == "\x7f" for ch in value):
        raise ConfigError(where, None, f"{key} is not a server address or token", fix)
    return value.strip()


def _deployment(where: str, data: object, server_key: str, token_key: str, fix: str) -> Deployment | None:
    if not isinstance(data, dict):
        raise ConfigError(where, None, "it holds no settings dictionary", fix)
    server = _field(where, data, server_key, fix)
    token = _field(where, data, token_key, fix)
    if not server and not token:
        return None
    if not server or not token:
        missing = token_key if server else server_key
        raise ConfigError(where, None, f"{missing} is missing", fix)
    return Deployment(server, token, where)


PROFILE_FIX = (
    f"give the profile's {PREFERENCE_DOMAIN} payload the text keys {SERVER_KEY} "
    f'("https://homeroom.example.org") and {TOKEN_KEY} (from `homeroom-server token create`)'
)


def deployment_from_managed_preferences(
    data: bytes, where: str = str(MANAGED_PREFERENCES)
) -> Deployment | None:
    """The MDM's managed preferences (XML or binary plist); None when they carry neither key."""
    try:
        loaded = plistlib.loads(data)
    except (plistlib.InvalidFileException, ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        raise ConfigError(
            where, None, f"it is not a property list ({exc.__class__.__name__})", PROFILE_FIX
        ) from None
    return _deployment(where, loaded, SERVER_KEY, TOKEN_KEY, PROFILE_FIX)


STAGED_FIX = (
    "install the MSI again with HOMEROOM_SERVER_URL=… HOMEROOM_TOKEN=…, or run `homeroom-agent enroll`"
)


def deployment_from_token_file(text: str, where: str) -> Deployment | None:
    try:
        loaded = json.loads(text)
    except ValueError:
        raise ConfigError(where, None, "it is not JSON", STAGED_FIX) from None
    return _deployment(where, loaded, "server_url", "token", STAGED_FIX)


def read_managed_preferences(path: Path) -> Deployment | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(str(path), None, f"it cannot be read ({exc.strerror})", PROFILE_FIX) from None
    return deployment_from_managed_preferences(data, str(path))


def read_token_file(state_dir: Path) -> Deployment | None:
    path = state_dir / TOKEN_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), None, f"it cannot be read ({exc})", STAGED_FIX) from None
    return deployment_from_token_file(text, str(path))


def deployed_enrolment(os_name: str, state_dir: Path, managed: Path | None = None) -> Deployment | None:
    """What the installer or the MDM left for this laptop's first enrolment, if anything."""
    staged = read_token_file(state_dir)
    if staged is not None:
        return staged
    if os_name == "macos":
        return read_managed_preferences(managed or MANAGED_PREFERENCES)
    return None


def stage_token_file(state_dir: Path, server_url: str, token: str) -> Path:
    """Writes the staged enrolment; on Windows the file is SYSTEM's alone before the token is in it,
    elsewhere it is 0600 from its creation."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / TOKEN_FILE
    path.unlink(missing_ok=True)  # never write into a file someone else made (or linked)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    descriptor = os.open(path, flags, 0o600)
    try:
        if ON_WINDOWS:
            windows_acl.apply(path, TOKEN_FILE_ACL)
        body = json.dumps({"server_url": server_url, "token": token}).encode("utf-8")
        os.write(descriptor, body)
        os.fsync(descriptor)
    except BaseException:
        os.close(descriptor)
        path.unlink(missing_ok=True)
        raise
    os.close(descriptor)
    return path


def forget_token_file(state_dir: Path) -> bool:
    """After a successful enrolment the token has done its work: it is not kept on the laptop."""
    path = state_dir / TOKEN_FILE
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed
