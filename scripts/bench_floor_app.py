#!/usr/bin/env python3
"""The floor `scripts/bench_server.py` measures Homeroom against: the least a signed request can cost.

A bare ASGI app, no framework and no database: it reads the body, finds the device's public key
among the enrolled fleet's (loaded once at start from the file named by BENCH_FLOOR_KEYS: one
`device_id<TAB>base64 key` per line), verifies the one Ed25519 signature with the contract's own
message format (`contract.wire.signing_string`) and the server's own key type (libsodium:
`server.sodium_keys`, so the floor is not slowed by a slower library than Homeroom uses), and
answers 200 (401 when the signature does not verify, so a broken benchmark cannot pass for a fast
floor). Served by uvicorn with the options
`homeroom-server serve` uses (`server.http_protocol.UVICORN_OPTIONS`) and the same worker count:

    BENCH_FLOOR_KEYS=keys.tsv python scripts/bench_floor_app.py --port 8100 --workers 2
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contract.wire import load_public_key, signature_valid, signing_string  # noqa: E402
from server.collector import settle_after_start  # noqa: E402
from server.sodium_keys import load_device_key  # noqa: E402

KEYS_VARIABLE = "BENCH_FLOOR_KEYS"
# "openssl": cryptography's keys instead, the server's library before PyNaCl (older figures' floor).
LIBRARY_VARIABLE = "BENCH_FLOOR_LIBRARY"
Message = MutableMapping[str, Any]


def _load_keys() -> dict[str, Any]:
    path = os.environ.get(KEYS_VARIABLE)
    if not path:
        return {}
    load = load_public_key if os.environ.get(LIBRARY_VARIABLE) == "openssl" else load_device_key
    keys = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        device_id, _, key = line.partition("\t")
        keys[device_id] = load(key)
    return keys


KEYS = _load_keys()
OK = b'{"ok":true}'
REFUSED = b'{"detail":"signature not accepted"}'


async def app(
    scope: Message, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]
) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                settle_after_start()  # as each Homeroom server process does: no advantage either way
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    headers = dict(scope["headers"])
    key = KEYS.get(headers.get(b"x-homeroom-device", b"").decode("latin-1"))
    valid = False
    if key is not None:
        try:
            timestamp = int(headers.get(b"x-homeroom-timestamp", b""))
        except ValueError:
            timestamp = 0
        message_signed = signing_string(
            scope["method"],
            scope["path"],
            timestamp,
            headers.get(b"x-homeroom-request-id", b"").decode("latin-1"),
            body,
        )
        valid = signature_valid(
            key, headers.get(b"x-homeroom-signature", b"").decode("latin-1"), message_signed
        )
    answer = OK if valid else REFUSED
    await send(
        {
            "type": "http.response.start",
            "status": 200 if valid else 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(answer)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": answer})


def main() -> int:
    import uvicorn

    from server.http_protocol import UVICORN_OPTIONS

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    uvicorn.run(
        "bench_floor_app:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        app_dir=str(Path(__file__).resolve().parent),
        **UVICORN_OPTIONS,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
