"""The agent–server wire contract, shared by both ends so they cannot drift apart.

Every request after enrolment is signed with the device's Ed25519 key over
the method, the path, a timestamp, a request id that is never reused, and the
SHA-256 of the body. The server refuses a request whose timestamp is more
than `MAX_CLOCK_SKEW_SECONDS` off its own clock and any request id it has
seen before, so a captured request cannot be replayed.

Answers go the other way, signed by the server's own Ed25519 key, which the agent
pinned at enrolment (see "answers" below).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from typing import Protocol

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


class Verifier(Protocol):
    """An Ed25519 public key as the contract uses one: cryptography's, or the server's libsodium
    key (`server.sodium_keys`); `verify` raises InvalidSignature."""

    def verify(self, signature: bytes, data: bytes, /) -> None: ...


class Signer(Protocol):
    """An Ed25519 private key as the contract uses one: `sign` gives the 64-byte signature."""

    def sign(self, data: bytes, /) -> bytes: ...


def signing_string(method: str, path: str, timestamp: int, request_id: str, body: bytes) -> bytes:
    """What is signed: one line per element, so no element can bleed into the next."""
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join((SIGNATURE_SCHEME, method.upper(), path, str(timestamp), request_id, digest)).encode()


def public_key_text(private_key: Ed25519PrivateKey) -> str:
    raw = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def public_key_bytes(text: str) -> bytes:
    """The raw 32 bytes of a base64 Ed25519 public key; ValueError with a reason when it is not one."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("public_key is not base64") from None
    if len(raw) != 32:
        raise ValueError("public_key must be 32 bytes (a raw Ed25519 key)")
    return raw


def load_public_key(text: str) -> Ed25519PublicKey:
    """Raises ValueError with a reason when the text is not a base64 32-byte Ed25519 key."""
    return Ed25519PublicKey.from_public_bytes(public_key_bytes(text))


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


def signature_valid(public_key: Verifier, signature_text: str, message: bytes) -> bool:
    try:
        signature = base64.b64decode(signature_text, validate=True)
        public_key.verify(signature, message)
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True


# --- answers: signed by the server's own key, pinned by the agent at enrolment -------------------
#
# Every answer that can change what the agent does (requirements, policies, commands; lost mode
# soon) is signed by the server. The signature covers the request it answers (method, path, device,
# the request's timestamp and request id) and the SHA-256 of the answer body: the agent makes a new
# request id for every attempt, so an answer captured once cannot be replayed to another request,
# and a server without the district's key cannot make one the agent accepts.

ANSWER_SIGNATURE_SCHEME = "homeroom-answer-v1"
# A refusal of a request whose signature verified (400, 403, 422 ...) is signed too, with its status:
# the agent sets a record aside only on its own server's word, not on a web filter's 403.
REFUSAL_SIGNATURE_SCHEME = "homeroom-refusal-v1"
HEADER_ANSWER_SIGNATURE = "X-Homeroom-Answer-Signature"
# The server's public key, sent beside the signature: only an agent enrolled before keys were pinned
# uses it, to pin the key of the first signed answer it gets over https (docs/architecture.md).
HEADER_SERVER_KEY = "X-Homeroom-Server-Key"


def answer_signing_string(
    method: str,
    path: str,
    device_id: str,
    timestamp: str,
    request_id: str,
    body: bytes,
    status: int = 200,
) -> bytes:
    """What the server signs in an answer: the request's own headers as sent, and the answer's hash.

    A refusal (any status outside 2xx) is signed under a scheme of its own that names its status, so
    a signed 200 cannot be passed off as a refusal (and the record moved aside) or a signed refusal
    as a 200; a 2xx keeps the string agents have always checked."""
    digest = hashlib.sha256(body).hexdigest()
    if 200 <= status < 300:
        head: tuple[str, ...] = (ANSWER_SIGNATURE_SCHEME,)
    else:
        head = (REFUSAL_SIGNATURE_SCHEME, str(status))
    return "\n".join((*head, method.upper(), path, device_id, timestamp, request_id, digest)).encode()


def sign_answer(
    private_key: Signer,
    method: str,
    path: str,
    request_headers: dict[str, str],
    body: bytes,
    status: int = 200,
) -> str:
    """The X-Homeroom-Answer-Signature value for an answer to a request with these signed headers."""
    message = answer_signing_string(
        method,
        path,
        request_headers[HEADER_DEVICE],
        request_headers[HEADER_TIMESTAMP],
        request_headers[HEADER_REQUEST_ID],
        body,
        status,
    )
    return base64.b64encode(private_key.sign(message)).decode("ascii")


def answer_signature_valid(
    public_key: Ed25519PublicKey,
    signature_text: str,
    method: str,
    path: str,
    request_headers: dict[str, str],
    body: bytes,
    status: int = 200,
) -> bool:
    """True only when the answer was signed by `public_key` for exactly this request and status."""
    try:
        message = answer_signing_string(
            method,
            path,
            request_headers[HEADER_DEVICE],
            request_headers[HEADER_TIMESTAMP],
            request_headers[HEADER_REQUEST_ID],
            body,
            status,
        )
    except KeyError:
        return False
    return signature_valid(public_key, signature_text, message)


def key_fingerprint(key_text: str) -> str:
    """A short name for a public key that people can compare by eye: SHA-256 of the raw key, 16 hex."""
    raw = base64.b64decode(key_text, validate=True)
    return hashlib.sha256(raw).hexdigest()[:16]
