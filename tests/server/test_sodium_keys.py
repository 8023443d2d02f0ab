"""The server's libsodium Ed25519 (server/sodium_keys.py) against the agents' cryptography (OpenSSL).

Agents sign with cryptography and verify the server's answers with it; the server verifies and
signs with libsodium. Ed25519 signatures are deterministic (RFC 8032), so the two libraries must
give the very same bytes, and each must accept exactly what the other signs.
"""

from __future__ import annotations

import base64
import os

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract.wire import (
    HEADER_DEVICE,
    HEADER_REQUEST_ID,
    HEADER_TIMESTAMP,
    answer_signature_valid,
    load_public_key,
    public_key_text,
    sign_answer,
    signature_valid,
)
from server.sodium_keys import DevicePublicKey, ServerSigner, load_device_key


def test_what_an_agent_signs_verifies_and_nothing_else_does() -> None:
    agent = Ed25519PrivateKey.generate()
    key = load_device_key(public_key_text(agent))
    message = os.urandom(200)
    signature = agent.sign(message)

    key.verify(signature, message)
    refused = {
        "another message": (signature, message + b"x"),
        "a flipped bit": (bytes([signature[0] ^ 1]) + signature[1:], message),
        "63 bytes": (signature[:-1], message),
        "65 bytes": (signature + b"\0", message),
        # libsodium reads its signature from the front of what it is given: a short signature must
        # not be made whole from the message's first bytes.
        "short, the rest taken from the message": (signature[:32], signature[32:] + message),
        "empty": (b"", message),
        "another key's": (Ed25519PrivateKey.generate().sign(message), message),
    }
    for name, (bad_signature, bad_message) in refused.items():
        with pytest.raises(InvalidSignature):
            key.verify(bad_signature, bad_message)
        text = base64.b64encode(bad_signature).decode()
        assert not signature_valid(key, text, bad_message), name
    assert signature_valid(key, base64.b64encode(signature).decode(), message)
    assert not signature_valid(key, "not base64!", message)


def test_the_server_signs_the_same_bytes_as_openssl_and_agents_accept_them() -> None:
    server = Ed25519PrivateKey.generate()
    signer = ServerSigner(server)
    for size in (0, 1, 64, 5000):
        message = os.urandom(size)
        assert signer.sign(message) == server.sign(message)
        server.public_key().verify(signer.sign(message), message)

    headers = {HEADER_DEVICE: "d1", HEADER_TIMESTAMP: "1700000000", HEADER_REQUEST_ID: "r1"}
    body = b'{"ok": true}'
    signature = sign_answer(signer, "POST", "/api/v1/heartbeat", headers, body)
    pinned = load_public_key(public_key_text(server))
    assert answer_signature_valid(pinned, signature, "POST", "/api/v1/heartbeat", headers, body)
    assert not answer_signature_valid(pinned, signature, "POST", "/api/v1/reports", headers, body)


def test_a_bad_key_text_gets_the_contracts_own_reasons() -> None:
    for text in ("not base64!", base64.b64encode(b"short").decode(), base64.b64encode(bytes(33)).decode()):
        with pytest.raises(ValueError) as sodium:
            load_device_key(text)
        with pytest.raises(ValueError) as openssl:
            load_public_key(text)
        assert str(sodium.value) == str(openssl.value)


def test_keys_compare_by_their_bytes() -> None:
    raw = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    assert DevicePublicKey(raw) == DevicePublicKey(bytes(raw))
    assert len({DevicePublicKey(raw), DevicePublicKey(bytes(raw))}) == 1
    assert DevicePublicKey(raw) != DevicePublicKey(bytes(32))
