"""The secret that binds the sign-in form's CSRF token to its cookie, before anyone has a session.

Kept in `server_keys` (purpose "console-forms") for the reason the answers key is: every server
process sharing the database must accept a form another one served; the first insert wins.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from datetime import datetime, timezone

from sqlalchemy import Engine, select

from server.console.tables import SERVER_KEYS
from server.db.statements import insert_if_new

PURPOSE = "console-forms"


def load_or_create(engine: Engine) -> bytes:
    with engine.begin() as connection:
        query = select(SERVER_KEYS.c.private_key).where(SERVER_KEYS.c.purpose == PURPOSE)
        row = connection.execute(query).first()
        if row is None:
            insert_if_new(
                connection,
                SERVER_KEYS,
                {
                    "purpose": PURPOSE,
                    "private_key": base64.b64encode(secrets.token_bytes(32)).decode("ascii"),
                    "public_key": "",
                    "created_at": datetime.now(timezone.utc),
                },
            )
            row = connection.execute(query).one()
    return base64.b64decode(row.private_key)


class FormSecret:
    """Read once per process, on first use (the app may be built before `init` migrated)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._secret: bytes | None = None
        self._lock = threading.Lock()

    def token_for(self, nonce: str) -> str:
        with self._lock:
            if self._secret is None:
                self._secret = load_or_create(self._engine)
            secret = self._secret
        return hmac.new(secret, b"sign-in:" + nonce.encode(), hashlib.sha256).hexdigest()
