"""The ASGI entry point uvicorn imports in each worker process; settings come from the environment."""

from __future__ import annotations

from server.app import create_app
from server.settings import settings_from_environment

app = create_app(settings_from_environment())
