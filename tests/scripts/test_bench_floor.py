"""scripts/bench_floor_app.py, the floor the server benchmark divides by: served by uvicorn with the
server's own options, it answers 200 only to a request its device really signed (so a broken benchmark
cannot pass for a fast floor), with several workers as the server runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract.wire import API_PREFIX, public_key_text, signed_headers
from tests.helpers.paths import ROOT
from tests.helpers.servers import free_port


def test_the_floor_verifies_each_signature(tmp_path: Path) -> None:
    key, stranger = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    keys = tmp_path / "keys.tsv"
    keys.write_text(f"device-1\t{public_key_text(key)}\n", encoding="utf-8")
    port = free_port()
    floor = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "bench_floor_app.py"), "--port", str(port), "--workers", "2"],
        cwd=ROOT,
        env={**os.environ, "BENCH_FLOOR_KEYS": str(keys)},
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}{API_PREFIX}/heartbeat"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(url, timeout=1)
                break
            except requests.RequestException:
                assert time.monotonic() < deadline and floor.poll() is None, "the floor did not start"
                time.sleep(0.1)
        body = json.dumps({"heartbeat_id": "x" * 32}).encode()
        path = f"{API_PREFIX}/heartbeat"

        def post(signer: Ed25519PrivateKey, device: str = "device-1", sent: bytes = body) -> int:
            headers = signed_headers(signer, device, "POST", path, body, time.time())
            return requests.post(url, data=sent, headers=headers, timeout=10).status_code

        assert post(key) == 200
        assert post(stranger) == 401
        assert post(key, device="device-2") == 401
        assert post(key, sent=body + b" ") == 401
    finally:
        os.killpg(floor.pid, signal.SIGTERM)
        floor.wait(30)
