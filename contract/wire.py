"""The agent–server wire contract, shared by both ends so they cannot drift apart.

Every request after enrolment is signed with the device's Ed25519 key over
the method, the path, a timestamp, a request id that is never reused, and the
SHA-256 of the body. The server refuses a request whose timestamp is more
than `MAX_CLOCK_SKEW_SECONDS` off its own clock and any request id it has
seen before, so a captured request cannot be replayed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

API_PREFIX = "/api/v1"
SIGNATURE_SCHEME = "homeroom-v1"
HEADER_DEVICE = "X-Homeroom-Device"
HEADER_TIMESTAMP = "X-Homeroom-Timestamp"
HEADER_REQUEST_ID = "X-Homeroom-Request-Id"
HEADER_SIGNATURE = "X-Homeroom-Signature"
MAX_CLOCK_SKEW_SECONDS = 300
MAX_BODY_BYTES = 1024 * 1024


def signing_string(method: str, path: str, timestamp: int, request_id: str, body: bytes) -> bytes:
    """What is signed: one line per element, so no element can bleed into the next."""
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join((SIGNATURE_SCHEME, method.upper(), path, str(timestamp), request_id, digest)).encode()


def public_key_text(private_key: Ed25519PrivateKey) -> str:
    raw = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def load_public_key(text: str) -> Ed25519PublicKey:
    """Raises ValueError with a reason when the text is not a base64 32-byte Ed25519 key."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("public_key is not base64") from None
    if len(raw) != 32:
        raise ValueError("public_key must be 32 bytes (a raw Ed25519 key)")
    return Ed25519PublicKey.from_public_bytes(raw)


def signed_headers(
    private_key: Ed25519PrivateKey,
    device_id: str,
    method: str,
    path: str,
    body: bytes,
    now: float,
    request_id: str | None = None,
) -> dict[str, str]:
    request_id = request_id or uuid.uuid4().hex
    timestamp = int(now)
    signature = private_key.sign(signing_string(method, path, timestamp, request_id, body))
    return {
        HEADER_DEVICE: device_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_REQUEST_ID: request_id,
        HEADER_SIGNATURE: base64.b64encode(signature).decode("ascii"),
    }


def signature_valid(public_key: Ed25519PublicKey, signature_text: str, message: bytes) -> bool:
    try:
        signature = base64.b64decode(signature_text, validate=True)
        public_key.verify(signature, message)
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True
