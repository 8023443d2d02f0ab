"""uvicorn's httptools protocol with limits on request headers: in time and in size.

uvicorn times only the idle gap between keep-alive requests: a client that opens a
connection and then sends its headers one byte at a time (slowloris), or never
finishes them, holds the connection for ever, and headers have no size limit. Here
a request's headers must be complete within `HOMEROOM_HEADER_TIMEOUT` seconds of the
connection opening or of the request's first byte, and within MAX_HEADER_BYTES; else
the server answers 408 or 431 and closes. (Bodies are timed by
`server.middleware.RequestGuard`.) `homeroom-server serve` selects this class by its
import path, so each uvicorn worker builds it itself.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from server.settings import HEADER_TIMEOUT_VARIABLE

DEFAULT_HEADER_TIMEOUT_SECONDS = 10.0
MAX_HEADER_BYTES = 64 * 1024

# What `homeroom-server serve` hands uvicorn besides host, port and workers (this protocol among
# them); scripts/bench_floor_app.py serves the benchmark's floor with the very same.
UVICORN_OPTIONS: dict[str, Any] = {
    "http": "server.http_protocol:TimedHeadersProtocol",
    "timeout_keep_alive": 5,
    "log_level": "warning",
    "access_log": False,
}


def header_timeout() -> float:
    try:
        return float(os.environ.get(HEADER_TIMEOUT_VARIABLE, DEFAULT_HEADER_TIMEOUT_SECONDS))
    except ValueError:
        return DEFAULT_HEADER_TIMEOUT_SECONDS


def _refusal(status: str) -> bytes:
    return f"HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode("ascii")


class HeldHeadTransport:
    """The connection's transport as uvicorn's protocol uses it, but a response's status line and
    headers are held until the body's first write, so that both leave in one `send()`.

    uvicorn writes the head of every answer at once and its body next: two system calls and two
    TCP segments per answer (the client wakes twice), on every request of the hot path. The head
    is held only until the next write, or the end of this turn of the event loop if the app waits
    between them (a streamed answer), and before a close; bytes are never reordered. An interim
    `100 Continue` is not held: the client waits for it before it sends the body.
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._flush_soon: asyncio.Handle | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._take_held()
        if held is not None:
            self._transport.write(held + bytes(data))
        elif data[:9] == b"HTTP/1.1 " and data[9:10] != b"1":
            self._held = bytes(data)
            self._flush_soon = self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def _take_held(self) -> bytes | None:
        held, self._held = self._held, None
        if self._flush_soon is not None:
            self._flush_soon.cancel()
            self._flush_soon = None
        return held

    def flush(self) -> None:
        held = self._take_held()
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def writelines(self, lines: Any) -> None:
        self.flush()
        self._transport.writelines(lines)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._take_held()
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class TimedHeadersProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout()
        self._header_timer: asyncio.TimerHandle | None = None
        self._reading_headers = True
        self._header_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = cast(asyncio.Transport, HeldHeadTransport(transport, self.loop))
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._reading_headers:
            self._header_bytes += len(data)
        super().data_received(data)
        # Checked after parsing: the chunk that completes the headers may carry the body's start.
        if self._reading_headers and self._header_bytes > MAX_HEADER_BYTES:
            self._refuse("431 Request Header Fields Too Large")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_headers = True
        if self._header_timer is None:
            self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        self._header_bytes = 0
        self._cancel_header_timer()
        super().on_headers_complete()

    def _arm_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        self._refuse("408 Request Timeout")

    def _refuse(self, status: str) -> None:
        self._cancel_header_timer()
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(_refusal(status))
        self.transport.close()
