"""The server's own Ed25519 key, and the signature it puts on every answer to a signed request.

An agent acts only on answers signed by the key it pinned at enrolment (contract.wire, "answers"),
so a machine on the school network that answers in the server's place cannot switch checks off,
replace a policy or send commands.

The key lives in the database (table `server_keys`), not in a file in the data directory:
several server processes on several machines share one PostgreSQL database behind a load
balancer, and each must sign with the same key or agents would refuse the answers of all but
one. A file would have to be copied to every machine by hand, and two machines that each made
one lazily would disagree; in the database the first insert wins (its primary key) and every
process reads that one. Whoever can read the database can sign answers — but whoever can write
it can already publish requirements, so the key adds no new power to database access; keep the
database's backups as private as the database.
"""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from sqlalchemy import Engine, Table, select

from contract.wire import (
    HEADER_ANSWER_SIGNATURE,
    HEADER_DEVICE,
    HEADER_REQUEST_ID,
    HEADER_SERVER_KEY,
    HEADER_TIMESTAMP,
    public_key_text,
    sign_answer,
)
from server.auth import SignedRequest
from server.db.models import ServerKey
from server.db.statements import insert_if_new
from server.sodium_keys import ServerSigner

ANSWERS = "answers"
SERVER_KEYS: Table = ServerKey.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class SigningKey:
    private_key: Ed25519PrivateKey
    public_key: str  # base64 of the raw 32 bytes, as enrolment answers carry it

    @cached_property
    def signer(self) -> ServerSigner:
        """The same key signing through libsodium: every answer is signed (`server.sodium_keys`)."""
        return ServerSigner(self.private_key)


def _private_text(key: Ed25519PrivateKey) -> str:
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return base64.b64encode(raw).decode("ascii")


def load_or_create_signing_key(engine: Engine) -> SigningKey:
    """The answers key in the database, made now if there is none (a database from before keys).

    Safe when many processes start at once: each offers a new key, only the first insert is kept,
    and all of them read back the one that was kept.
    """
    with engine.begin() as connection:
        row = connection.execute(
            select(SERVER_KEYS.c.private_key).where(SERVER_KEYS.c.purpose == ANSWERS)
        ).first()
        if row is None:
            offered = Ed25519PrivateKey.generate()
            insert_if_new(
                connection,
                SERVER_KEYS,
                {
                    "purpose": ANSWERS,
                    "private_key": _private_text(offered),
                    "public_key": public_key_text(offered),
                    "created_at": datetime.now(timezone.utc),
                },
            )
            row = connection.execute(
                select(SERVER_KEYS.c.private_key).where(SERVER_KEYS.c.purpose == ANSWERS)
            ).one()
    private_key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(row.private_key))
    return SigningKey(private_key, public_key_text(private_key))


class AnswerSigner:
    """Signs answers with the database's key, read once per process on first use.

    Read lazily, not when the app is built: the app of a worker process may be built before
    `homeroom-server init` has migrated the database it will serve.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._key: SigningKey | None = None
        self._lock = threading.Lock()

    def key(self) -> SigningKey:
        if self._key is None:
            with self._lock:
                if self._key is None:
                    self._key = load_or_create_signing_key(self.engine)
        return self._key

    def public_key(self) -> str:
        return self.key().public_key

    def headers(self, signed: SignedRequest, body: bytes, status: int = 200) -> dict[str, str]:
        """The answer's signature (and the public key, for agents enrolled before keys were pinned);
        a refusal's covers its status (`server.api.signed_refusals`)."""
        key = self.key()
        request_headers = {
            HEADER_DEVICE: signed.device_id,
            HEADER_TIMESTAMP: signed.timestamp,
            HEADER_REQUEST_ID: signed.request_id,
        }
        signature = sign_answer(key.signer, signed.method, signed.path, request_headers, body, status)
        return {HEADER_ANSWER_SIGNATURE: signature, HEADER_SERVER_KEY: key.public_key}
