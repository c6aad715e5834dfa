"""bridge.web.connections: slow and huge clients, over real sockets against uvicorn on
loopback, run with the options of the Procfile and `callbridge serve`."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn

from bridge.app import create_app
from bridge.cli.serve import UVICORN_OPTIONS
from bridge.secret import Secret
from bridge.web import bodies, connections
from tests.helpers import API_TOKEN, free_port, fresh_sqlite, make_settings

SHORT = 0.5  # seconds: the limits, shortened for the tests
GIVE_UP = 5.0  # seconds a test waits for the server before failing


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, int]]:
    monkeypatch.setattr(connections, "HEAD_SECONDS", SHORT)
    monkeypatch.setattr(bodies, "BODY_READ_SECONDS", SHORT)
    database = fresh_sqlite(f"sqlite:///{tmp_path / 'bridge.sqlite3'}")
    app = create_app(make_settings(bridge_api_token=Secret(API_TOKEN), database_url=database))
    options = {**UVICORN_OPTIONS, "timeout_graceful_shutdown": 1}
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **options)
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not running.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield "127.0.0.1", port
    finally:
        running.should_exit = True
        thread.join(timeout=10)


@contextmanager
def connection(address: tuple[str, int]) -> Iterator[socket.socket]:
    with socket.create_connection(address, timeout=GIVE_UP) as sock:
        yield sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes; fails if it keeps the socket open."""
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return received
        except TimeoutError:
            raise AssertionError(f"still open after {GIVE_UP} s: {received[:200]!r}") from None
        if not chunk:
            return received
        received += chunk


GET = b"GET /healthz HTTP/1.1\r\nHost: bridge\r\n\r\n"


def test_an_idle_connection_is_closed(server: tuple[str, int]) -> None:
    with connection(server) as sock:
        assert read_until_closed(sock) == b""


def test_a_slow_request_head_is_closed(server: tuple[str, int]) -> None:
    with connection(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: bridge\r\n")
        started = time.monotonic()
        try:
            while time.monotonic() - started < GIVE_UP:
                sock.sendall(b"X-Drip: 1\r\n")  # a header line every 0.1 s, never the end
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            return
        assert read_until_closed(sock) == b""


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"GET /healthz HTTP/1.1\r\nHost: bridge\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n", 431),
        (b"GET /healthz?" + b"q" * 100_000 + b" HTTP/1.1\r\nHost: bridge\r\n\r\n", 431),
        (b"GET /healthz HTTP/1.1\r\nHost: bridge\r\n" + b"X-Many: 1\r\n" * 5_000 + b"\r\n", 431),
        (b"GET /healthz HTTP/1.1\r\nHost: bridge\r\nX-Big: " + b"a" * 40_000, 431),
        (b"GET /healthz HTTP/1.1\r\nHost: bridge\r\nX-Fine: " + b"a" * 8_000 + b"\r\n\r\n", 200),
    ],
    ids=["one-huge-header", "huge-url", "many-headers", "unfinished", "an-8-KB-header-is-fine"],
)
def test_a_huge_request_head_is_refused(server: tuple[str, int], head: bytes, status: int) -> None:
    with connection(server) as sock:
        # Refused before the end: the answer is still there to read.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head)
        answer = read_until_closed(sock)
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:100]


def test_keep_alive_requests_are_served_and_each_head_gets_the_full_time(
    server: tuple[str, int],
) -> None:
    with connection(server) as sock:
        for _ in range(3):
            sock.sendall(GET)
            answer = sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200 "), answer
            time.sleep(SHORT / 2)
        assert read_until_closed(sock) == b""  # then idle: closed


def test_a_slow_body_gets_408_and_the_connection_is_closed(server: tuple[str, int]) -> None:
    with connection(server) as sock:
        sock.sendall(
            b"POST /calls HTTP/1.1\r\nHost: bridge\r\nAuthorization: Bearer "
            + API_TOKEN.encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
            + b'{"to": "'
        )
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:100]


def test_a_malformed_request_still_gets_uvicorns_400(server: tuple[str, int]) -> None:
    with connection(server) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        assert read_until_closed(sock).startswith(b"HTTP/1.1 400 ")
