"""Ed25519 on the server's hot path through libsodium (PyNaCl), not OpenSSL (cryptography).

Every signed request costs the server one verification and one signature (its answer). Measured
on the 2-core build machine, per call, quiet and loaded: OpenSSL 3 through cryptography 50.0,
verify 107-185 us and sign 32-43 us; libsodium through PyNaCl 1.6, verify 45-58 us and sign
20-22 us. OpenSSL 3 builds a verification context per call, which is most of that time;
libsodium has none to build.

It also matters where the time is spent: cryptography's Rust bindings hold the GIL for the whole
call, so while a database thread verified a batch the event loop could not read the next request.
PyNaCl calls libsodium through cffi, which releases the GIL for the call.

The keys and signatures are the same Ed25519 (RFC 8032) either way: an agent signs with
cryptography, the server verifies here, and an agent verifies the server's answers with
cryptography (`tests/server/test_sodium_keys.py` holds the two libraries to each other).
libsodium is the stricter of the two (it refuses non-canonical and small-order encodings),
which refuses nothing an honest agent sends.

The classes have the methods `contract.wire` calls (`verify` raising cryptography's
`InvalidSignature`, `sign` returning the 64-byte signature), so the contract's functions take
them as they take cryptography's keys.
"""

from __future__ import annotations

import nacl.bindings
import nacl.exceptions
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract.wire import public_key_bytes

SIGNATURE_BYTES = nacl.bindings.crypto_sign_BYTES


class DevicePublicKey:
    """A device's Ed25519 public key: 32 raw bytes (`contract.wire.public_key_bytes`), nothing built
    until a signature is checked."""

    __slots__ = ("raw",)

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def verify(self, signature: bytes, data: bytes) -> None:
        """Raises InvalidSignature unless `signature` is this key's over `data`."""
        # libsodium reads the signature as the first 64 bytes of what it is given: a shorter one
        # would take the rest from the message.
        if len(signature) != SIGNATURE_BYTES:
            raise InvalidSignature
        try:
            nacl.bindings.crypto_sign_open(signature + data, self.raw)
        except nacl.exceptions.BadSignatureError:
            raise InvalidSignature from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DevicePublicKey) and other.raw == self.raw

    def __hash__(self) -> int:
        return hash(self.raw)


def load_device_key(text: str) -> DevicePublicKey:
    """Raises ValueError with a reason when the text is not a base64 32-byte Ed25519 key (the
    contract's own reasons: `contract.wire.public_key_bytes`)."""
    return DevicePublicKey(public_key_bytes(text))


class ServerSigner:
    """The server's answers key, signing through libsodium."""

    __slots__ = ("_secret",)

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        # libsodium's secret key is the 32-byte seed (cryptography's raw private key) and the public
        # key after it.
        _public, self._secret = nacl.bindings.crypto_sign_seed_keypair(private_key.private_bytes_raw())

    def sign(self, data: bytes) -> bytes:
        # crypto_sign returns the signature followed by the message.
        signed: bytes = nacl.bindings.crypto_sign(data, self._secret)
        return signed[:SIGNATURE_BYTES]
