"""The ASGI entry point uvicorn imports in each worker process; settings come from the environment."""

from __future__ import annotations

from server.app import create_app
from server.settings import Settings, default_data_dir, resolve_database_url

_data_dir = default_data_dir()
app = create_app(Settings(database_url=resolve_database_url(None, _data_dir), data_dir=_data_dir))
