"""The server's settings, in one typed object built from flags and environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from server.config_file import ServerConfig, load_config


@dataclass(frozen=True)
class Settings:
    database_url: str
    data_dir: Path
    max_clock_skew_seconds: int = 300
    # How long a device's key and record stay cached in a server process; a
    # re-enrolment elsewhere is seen after this at the latest (and at once on a signature mismatch).
    device_cache_seconds: float = 30.0
    requirements_cache_seconds: float = 5.0
    # Slow clients: a request's headers must arrive within this (server.http_protocol), its body
    # within body_timeout after them (server.middleware.RequestGuard); idle keep-alive closes after 5 s.
    # A 1 MB report at 30 s is 35 kB/s, far below any school network.
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    # An enrolment may re-key a known laptop's record by itself only once the old key has been
    # silent this long (above the agent's 15-minute heartbeat); the old key is kept for the second
    # figure so that, if it signs again, the re-key is undone (docs/architecture.md).
    rekey_quiet_minutes: int = 60
    previous_key_keep_days: int = 30
    # server.toml: lost mode, SMTP and who is notified (server/config_file.py).
    config: ServerConfig = field(default_factory=ServerConfig)


def default_data_dir() -> Path:
    return Path(os.environ.get("HOMEROOM_DATA_DIR") or ".")


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


def resolve_database_url(flag: str | None, data_dir: Path) -> str:
    """--database, then HOMEROOM_DATABASE_URL, then var/homeroom.db under the data directory."""
    return flag or os.environ.get("HOMEROOM_DATABASE_URL") or sqlite_url(data_dir / "var" / "homeroom.db")


BODY_TIMEOUT_VARIABLE = "HOMEROOM_BODY_TIMEOUT"
# For benchmarks only: 0 turns the device-key cache off, so a small benchmark fleet's requests each
# look their device up as a real fleet's do (a laptop heartbeats every 15 minutes, the cache keeps 30 s).
DEVICE_CACHE_VARIABLE = "HOMEROOM_DEVICE_CACHE_SECONDS"
HEADER_TIMEOUT_VARIABLE = "HOMEROOM_HEADER_TIMEOUT"


def settings_from_environment() -> Settings:
    """What `homeroom-server serve` hands its uvicorn workers, which build the app themselves."""
    data_dir = default_data_dir()
    settings = Settings(
        database_url=resolve_database_url(None, data_dir), data_dir=data_dir, config=load_config(data_dir)
    )
    timeout = os.environ.get(BODY_TIMEOUT_VARIABLE)
    if timeout:
        settings = replace(settings, body_timeout_seconds=float(timeout))
    cache = os.environ.get(DEVICE_CACHE_VARIABLE)
    return replace(settings, device_cache_seconds=float(cache)) if cache else settings
