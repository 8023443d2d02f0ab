"""An answer's head and body leave in one write (`server.http_protocol.HeldHeadTransport`).

The wrapper is checked against a transport that records each write it is given (what would be one
`send()` each); the real server's connections go through it in every other test of tests/server,
and the last test here reads answers from a real server process over one kept-alive connection.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

from contract.wire import API_PREFIX, signed_headers
from server.http_protocol import HeldHeadTransport
from tests.helpers.servers import ServerProcess
from tests.helpers.signed_device import Device, heartbeat

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class Recorded(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def get_write_buffer_size(self) -> int:
        return 7


def test_the_head_waits_for_the_body_and_both_go_in_one_write() -> None:
    async def scenario() -> None:
        recorded = Recorded()
        held = HeldHeadTransport(recorded, asyncio.get_running_loop())
        held.write(HEAD)
        assert recorded.writes == []
        held.write(b"{}")
        assert recorded.writes == [HEAD + b"{}"]
        await asyncio.sleep(0)  # the flush that was due finds nothing held
        assert recorded.writes == [HEAD + b"{}"]
        held.write(b"more body")  # not a head: straight through
        assert recorded.writes[-1] == b"more body"
        assert held.get_write_buffer_size() == 7  # the rest is the transport's own

    asyncio.run(scenario())


def test_a_head_with_no_body_yet_leaves_at_the_end_of_the_loop_s_turn() -> None:
    async def scenario() -> None:
        recorded = Recorded()
        held = HeldHeadTransport(recorded, asyncio.get_running_loop())
        held.write(HEAD)  # a streamed answer: the app awaits before its first chunk
        await asyncio.sleep(0)
        assert recorded.writes == [HEAD]
        held.write(b"{}")
        assert recorded.writes == [HEAD, b"{}"]

    asyncio.run(scenario())


def test_100_continue_is_never_held_and_close_flushes_first() -> None:
    async def scenario() -> None:
        recorded = Recorded()
        held = HeldHeadTransport(recorded, asyncio.get_running_loop())
        held.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # the client waits for it before its body
        assert recorded.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
        refusal = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        held.write(refusal)
        held.close()
        assert recorded.writes[-1] == refusal and recorded.closed
        await asyncio.sleep(0)
        assert recorded.writes.count(refusal) == 1  # not written again by the due flush

        aborted = Recorded()
        dropped = HeldHeadTransport(aborted, asyncio.get_running_loop())
        dropped.write(HEAD)
        dropped.abort()  # abort drops what is unsent, held or not
        await asyncio.sleep(0)
        assert aborted.writes == [] and aborted.aborted

    asyncio.run(scenario())


def _read_answer(connection: socket.socket, buffer: bytes) -> tuple[bytes, bytes, bytes]:
    while b"\r\n\r\n" not in buffer:
        buffer += connection.recv(65536)
    head, _, rest = buffer.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(rest) < length:
        rest += connection.recv(65536)
    return head, rest[:length], rest[length:]


def test_answers_on_one_kept_alive_connection_arrive_whole_and_in_order(server: ServerProcess) -> None:
    device = Device(server)
    assert device.enrol(server.token()).status_code == 200
    path = f"{API_PREFIX}/heartbeat"
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as connection:
        leftover = b""
        for number in range(5):
            body = json.dumps(heartbeat()).encode()
            headers = signed_headers(device.key, device.device_id, "POST", path, body, time.time())
            if number == 3:
                headers["X-Homeroom-Signature"] = "AAAA"  # a refusal between answers
            lines = [f"POST {path} HTTP/1.1", "Host: test", "Content-Type: application/json"]
            lines += [f"{name}: {value}" for name, value in headers.items()]
            lines.append(f"Content-Length: {len(body)}")
            connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
            head, answer, leftover = _read_answer(connection, leftover)
            status = head.split(b"\r\n", 1)[0]
            assert status == (b"HTTP/1.1 401 Unauthorized" if number == 3 else b"HTTP/1.1 200 OK"), head
            assert json.loads(answer)
        assert leftover == b""
