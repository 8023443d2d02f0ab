"""Where the device key lives: a real Secret Service keyring when there is one, else a 0600 file."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.server_link.keys import open_key_store
from contract.wire import public_key_text
from tests.helpers.need import need
from tests.helpers.paths import ROOT
from tests.helpers.servers import ServerProcess


def test_without_a_keyring_the_key_is_a_0600_file(state_dir: Path) -> None:
    store = open_key_store(state_dir)  # the test process has no D-Bus session: no keyring backend
    assert store.backend == "file"
    assert "no OS keyring" in store.description
    key = Ed25519PrivateKey.generate()
    store.save(key)
    path = state_dir / "device-key.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = store.load()
    assert loaded is not None and public_key_text(loaded) == public_key_text(key)


def test_enrolment_keeps_the_key_in_a_real_secret_service(server: ServerProcess, tmp_path: Path) -> None:
    for tool in ("dbus-run-session", "gnome-keyring-daemon"):
        need(shutil.which(tool) is not None, f"{tool} is not installed (./scripts/test installs it as root)")
    home = tmp_path / "home"
    home.mkdir()
    state = tmp_path / "state"
    token = server.token()
    agent_cmd = f'"{sys.executable}" -m agent.cli'
    script = (
        'eval "$(printf "pw\\n" | gnome-keyring-daemon --unlock --components=secrets)" && '
        f"{agent_cmd} enroll --server {server.url} --token {token} --state-dir {state} && "
        f"{agent_cmd} status --state-dir {state} && "
        f"{agent_cmd} run --once --state-dir {state}"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBUS_", "XDG_RUNTIME"))}
    env["HOME"] = str(home)
    done = subprocess.run(
        ["dbus-run-session", "--", "sh", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Device key: OS keyring (SecretService.Keyring)" in done.stdout
    assert not (state / "device-key.pem").exists(), "with a keyring, no key file is written"
    assert "sent: 1" in done.stdout
