"""Slow clients cannot hold connections: real sockets against a real server with short time limits."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from contract.wire import API_PREFIX
from tests.helpers.servers import ServerProcess

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.5


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir: Path = tmp_path_factory.mktemp("slow")
    server = ServerProcess(
        f"sqlite:///{data_dir / 'var' / 'homeroom.db'}",
        data_dir,
        serve_args=("--header-timeout", str(HEADER_TIMEOUT), "--body-timeout", str(BODY_TIMEOUT)),
    )
    server.init()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def connect(server: ServerProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def drip(sock: socket.socket, data: bytes, every: float, for_at_most: float) -> float:
    """Sends one byte every `every` seconds until the server closes; returns when it did (since start)."""
    began = time.monotonic()
    for byte in data:
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            break
        time.sleep(every)
        if time.monotonic() - began > for_at_most:
            break
    return time.monotonic() - began


def test_headers_sent_one_byte_at_a_time_are_cut_off(strict_server: ServerProcess) -> None:
    sock = connect(strict_server)
    request = f"POST {API_PREFIX}/enrol HTTP/1.1\r\nHost: x\r\n".encode() + b"X-Slow: " + b"a" * 200
    elapsed = drip(sock, request, 0.05, for_at_most=8)
    answer = read_until_closed(sock)
    assert elapsed < HEADER_TIMEOUT + 2, elapsed
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]


def test_a_connection_that_sends_nothing_is_closed(strict_server: ServerProcess) -> None:
    sock = connect(strict_server)
    began = time.monotonic()
    answer = read_until_closed(sock)
    assert time.monotonic() - began < HEADER_TIMEOUT + 2
    assert answer.startswith(b"HTTP/1.1 408")


def test_endless_headers_are_refused(strict_server: ServerProcess) -> None:
    sock = connect(strict_server)
    # 70 kB of headers that never end, sent at once: refused on size, well before the time limit.
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + (b"X-Padding: " + b"p" * 1000 + b"\r\n") * 70)
    began = time.monotonic()
    assert read_until_closed(sock).startswith(b"HTTP/1.1 431")
    assert time.monotonic() - began < HEADER_TIMEOUT / 2


def test_a_body_sent_slowly_gets_408_and_the_connection_closes(strict_server: ServerProcess) -> None:
    sock = connect(strict_server)
    sock.sendall(
        f"POST {API_PREFIX}/enrol HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n".encode()
    )
    elapsed = drip(sock, b"{" + b" " * 999, 0.05, for_at_most=10)
    answer = read_until_closed(sock)
    assert elapsed < BODY_TIMEOUT + 2, elapsed
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    assert b"not received within" in answer


def test_slow_clients_do_not_stop_others(strict_server: ServerProcess) -> None:
    slow = [connect(strict_server) for _ in range(20)]
    for sock in slow:
        sock.sendall(b"POST /healthz HTTP/1.1\r\nHost: x\r\n")
    began = time.monotonic()
    assert requests.get(f"{strict_server.url}/healthz", timeout=5).status_code == 200
    assert time.monotonic() - began < 0.5
    for sock in slow:
        sock.close()
    # A client that keeps up is not hurried: a whole request in good time is answered.
    sock = connect(strict_server)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert read_until_closed(sock).startswith(b"HTTP/1.1 200")
