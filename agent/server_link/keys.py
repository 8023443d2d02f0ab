"""The device's Ed25519 key: made at enrolment, kept in the OS keyring, or a 0600 file where none works.

A headless Linux service usually has no keyring backend (no D-Bus session,
no Secret Service); then the key lives in the state directory, readable by
the service's user only, and `homeroom-agent status` says so.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from agent import windows_acl
from agent.errors import KeyStoreError

KEYRING_SERVICE = "homeroom-agent"
KEY_FILE = "device-key.pem"
ON_WINDOWS = os.name == "nt"


@dataclass(frozen=True)
class KeyStore:
    """Where this agent's key lives; `description` is what `status` shows."""

    state_dir: Path
    backend: str  # "keyring" or "file"
    description: str

    @property
    def _username(self) -> str:
        # Several agents side by side (tests, benchmarks) each have their own state dir and key.
        return "device-key:" + hashlib.sha256(str(self.state_dir.resolve()).encode()).hexdigest()[:16]

    def load(self) -> Ed25519PrivateKey | None:
        if self.backend == "keyring":
            import keyring

            text = keyring.get_password(KEYRING_SERVICE, self._username)
            if text is None:
                return None
            return Ed25519PrivateKey.from_private_bytes(base64.b64decode(text))
        path = self.state_dir / KEY_FILE
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        key = load_pem_private_key(data, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyStoreError(f"{path} does not hold an Ed25519 key")
        return key

    def save(self, key: Ed25519PrivateKey) -> None:
        if self.backend == "keyring":
            import keyring

            raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
            keyring.set_password(KEYRING_SERVICE, self._username, base64.b64encode(raw).decode("ascii"))
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path = self.state_dir / KEY_FILE
        temporary = path.with_suffix(".tmp")
        temporary.unlink(missing_ok=True)
        pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
        if ON_WINDOWS:  # the mode means nothing there: an ACL before the key is written
            try:
                windows_acl.apply(temporary, windows_acl.KEY_FILE_ACL)
            except BaseException:
                os.close(handle)
                temporary.unlink(missing_ok=True)
                raise
        with os.fdopen(handle, "wb") as out:
            out.write(pem)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)


def open_key_store(state_dir: Path) -> KeyStore:
    """The OS keyring when a working backend exists, else the 0600 file."""
    try:
        import keyring
        from keyring.backends import fail

        backend = keyring.get_keyring()
        if isinstance(backend, fail.Keyring) or getattr(backend, "priority", 0) <= 0:
            raise RuntimeError("no keyring backend")
        name = f"{type(backend).__module__}.{type(backend).__name__}"
        return KeyStore(state_dir, "keyring", f"OS keyring ({name.removeprefix('keyring.backends.')})")
    except Exception:  # noqa: BLE001 - any keyring failure means: use the file
        path = state_dir / KEY_FILE
        return KeyStore(
            state_dir,
            "file",
            f"file {path} (mode 0600; no OS keyring is available to this process)",
        )
