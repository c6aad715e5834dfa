"""PooledTransport against a scripted HTTP server on loopback: reuse, framing, faults."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import trustme

from bridge.transport.pooled import MAX_RESPONSE_BYTES, PooledTransport
from tests.helpers import read_http_request

pytestmark = pytest.mark.anyio

OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
RESPONSES: dict[bytes, bytes | None] = {
    b"/ok": OK,
    b"/chunked": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n"
    ),
    b"/close": b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello",
    b"/until-close": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello",
    b"/garbage": b"SMTP ready\r\n\r\n",
    b"/error": b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy",
    b"/big": b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (MAX_RESPONSE_BYTES + 1),
    b"/early-hints": (
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhints"
    ),
    b"/drop": None,  # close without answering
    b"/slow": b"",  # never answer
    b"/late": OK,  # answers after LATE seconds
}
LATE = 0.3


class Server:
    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[bytes] = []


@asynccontextmanager
async def scripted_server(
    tls: ssl.SSLContext | None = None,
) -> AsyncIterator[tuple[Server, int]]:
    state = Server()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        try:
            while True:
                head, body = await read_http_request(reader)
                state.requests.append(head + body)
                path = head.split(b" ")[1]
                response = RESPONSES[path]
                if response is None:
                    break
                if response == b"":
                    await asyncio.sleep(30)
                if path == b"/late":
                    await asyncio.sleep(LATE)
                writer.write(response)
                if path == b"/big":
                    writer.write(b"x" * (MAX_RESPONSE_BYTES + 1))
                await writer.drain()
                if b"Connection: close" in response:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    try:
        yield state, port
    finally:
        server.close()


async def fetch(transport: PooledTransport, url: str, timeout: float = 5.0) -> httpx.Response:
    """POST through the transport alone, as the bridge's register-call client does."""
    request = httpx.Request(
        "POST", url, content=b"{}", extensions={"timeout": {"connect": timeout, "read": timeout}}
    )
    response = await transport.handle_async_request(request)
    await response.aread()
    return response


async def test_keep_alive_reuses_one_connection() -> None:
    async with scripted_server() as (server, port):
        transport = PooledTransport()
        for _ in range(5):
            response = await transport.handle_async_request(
                httpx.Request("POST", f"http://127.0.0.1:{port}/ok", content=b'{"a": 1}')
            )
            assert response.status_code == 200
            assert await response.aread() == b"hello"
        await transport.aclose()
    assert server.connections == 1
    assert server.requests[0].startswith(b"POST /ok HTTP/1.1\r\n")
    assert b"Content-Length: 8\r\n" in server.requests[0]
    assert server.requests[0].endswith(b'\r\n\r\n{"a": 1}')


async def test_concurrent_requests_open_connections_up_to_the_limit() -> None:
    async with scripted_server() as (server, port):
        transport = PooledTransport(max_connections=3)
        url = f"http://127.0.0.1:{port}/ok"
        responses = await asyncio.gather(
            *(transport.handle_async_request(httpx.Request("GET", url)) for _ in range(12))
        )
        await transport.aclose()
    assert [r.status_code for r in responses] == [200] * 12
    assert server.connections <= 3


@pytest.mark.parametrize(
    ("path", "status", "body", "connections"),
    [
        ("/chunked", 200, b"hello", 1),
        ("/close", 200, b"hello", 2),
        ("/until-close", 200, b"hello", 2),
        ("/error", 503, b"busy", 1),
    ],
)
async def test_response_framing(path: str, status: int, body: bytes, connections: int) -> None:
    async with scripted_server() as (server, port):
        transport = PooledTransport()
        for _ in range(2):
            response = await fetch(transport, f"http://127.0.0.1:{port}{path}")
            assert (response.status_code, response.content) == (status, body)
        await transport.aclose()
    assert server.connections == connections


async def test_interim_responses_are_skipped_and_never_leak_into_the_next_request() -> None:
    async with scripted_server() as (server, port):
        transport = PooledTransport()
        first = await fetch(transport, f"http://127.0.0.1:{port}/early-hints")
        second = await fetch(transport, f"http://127.0.0.1:{port}/ok")
        await transport.aclose()
    assert (first.status_code, first.content) == (200, b"hints")
    assert (second.status_code, second.content) == (200, b"hello")
    assert server.connections == 1


async def test_waiting_for_a_free_connection_is_bounded_by_the_pool_timeout() -> None:
    async with scripted_server() as (_, port):
        transport = PooledTransport(max_connections=1)
        busy = asyncio.create_task(fetch(transport, f"http://127.0.0.1:{port}/slow", timeout=5))
        await asyncio.sleep(0.1)
        request = httpx.Request(
            "POST",
            f"http://127.0.0.1:{port}/ok",
            content=b"{}",
            extensions={"timeout": {"pool": 0.1, "connect": 1, "read": 1}},
        )
        with pytest.raises(httpx.PoolTimeout):
            await transport.handle_async_request(request)
        busy.cancel()
        with pytest.raises(asyncio.CancelledError):
            await busy
        # The cancelled request gave its slot back.
        assert (await fetch(transport, f"http://127.0.0.1:{port}/ok")).content == b"hello"
        await transport.aclose()


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/garbage", httpx.RemoteProtocolError),
        ("/drop", httpx.RemoteProtocolError),
        ("/big", httpx.RemoteProtocolError),
    ],
)
async def test_broken_responses_raise_httpx_errors(path: str, error: type[Exception]) -> None:
    async with scripted_server() as (_, port):
        transport = PooledTransport()
        with pytest.raises(error):
            await fetch(transport, f"http://127.0.0.1:{port}{path}")
        await transport.aclose()


async def test_read_timeout() -> None:
    async with scripted_server() as (_, port):
        transport = PooledTransport()
        with pytest.raises(httpx.ReadTimeout):
            await fetch(transport, f"http://127.0.0.1:{port}/slow", timeout=0.2)
        await transport.aclose()


async def test_connection_refused() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    transport = PooledTransport()
    with pytest.raises(httpx.ConnectError):
        await fetch(transport, f"http://127.0.0.1:{port}/ok")


async def test_a_request_in_flight_at_close_leaves_no_connection_open() -> None:
    async with scripted_server() as (server, port):
        transport = PooledTransport()
        in_flight = asyncio.create_task(fetch(transport, f"http://127.0.0.1:{port}/late"))
        await asyncio.sleep(LATE / 3)
        await transport.aclose()
        assert (await in_flight).content == b"hello"
        # Not pooled after the close: nothing would ever close it.
        assert not transport._idle
        with pytest.raises(httpx.TransportError, match="closed"):
            await fetch(transport, f"http://127.0.0.1:{port}/ok")
    assert server.connections == 1


async def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    async with scripted_server() as (server, port):
        transport = PooledTransport()
        await fetch(transport, f"http://127.0.0.1:{port}/ok")
        # The scripted server closes on /drop; the pool must notice and open a new one.
        with pytest.raises(httpx.RemoteProtocolError):
            await fetch(transport, f"http://127.0.0.1:{port}/drop")
        assert (await fetch(transport, f"http://127.0.0.1:{port}/ok")).content == b"hello"
        await transport.aclose()
    assert server.connections == 2


async def test_a_connection_closed_by_the_server_just_before_it_is_taken_is_not_used() -> None:
    # The server closes the idle connection and the client takes it before its event
    # loop has run (a busy process): the request must go on a new connection, not on
    # the dead one, where a POST's outcome would be unknown.
    closed = threading.Event()
    accepted: list[int] = []

    def serve(listener: socket.socket) -> None:
        for number in range(2):
            connection, _ = listener.accept()
            accepted.append(number)
            with connection:
                connection.recv(65536)
                connection.sendall(OK)
                if number == 0:
                    connection.shutdown(socket.SHUT_RDWR)
                    closed.set()
                else:
                    connection.recv(1)

    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        thread = threading.Thread(target=serve, args=(listener,), daemon=True)
        thread.start()
        transport = PooledTransport()
        await fetch(transport, f"http://127.0.0.1:{port}/ok")
        assert closed.wait(5)  # blocking: the loop does not run in between
        time.sleep(0.05)  # the FIN has reached this side's socket
        response = await fetch(transport, f"http://127.0.0.1:{port}/ok")
        assert response.content == b"hello"
        await transport.aclose()
        thread.join(5)
    assert accepted == [0, 1]


async def test_idle_connections_expire() -> None:
    async with scripted_server() as (server, port):
        transport = PooledTransport(keepalive_expiry=0.05)
        await fetch(transport, f"http://127.0.0.1:{port}/ok")
        await asyncio.sleep(0.1)
        await fetch(transport, f"http://127.0.0.1:{port}/ok")
        await transport.aclose()
    assert server.connections == 2


@pytest.mark.parametrize(
    ("url", "method"),
    [("ftp://127.0.0.1/x", "GET"), ("http://127.0.0.1:1/x", "HEAD")],
)
async def test_unsupported_requests(url: str, method: str) -> None:
    with pytest.raises(httpx.UnsupportedProtocol):
        await PooledTransport().handle_async_request(httpx.Request(method, url))


async def test_closed_transport_refuses_requests() -> None:
    transport = PooledTransport()
    await transport.aclose()
    with pytest.raises(httpx.TransportError):
        await transport.handle_async_request(httpx.Request("GET", "http://127.0.0.1:1/"))


async def test_https_verifies_the_server_certificate() -> None:
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(server_context)
    trusting = ssl.create_default_context()
    authority.configure_trust(trusting)
    async with scripted_server(tls=server_context) as (_, port):
        good = PooledTransport(ssl_context=trusting)
        response = await fetch(good, f"https://localhost:{port}/ok")
        assert response.content == b"hello"
        await good.aclose()
        untrusting = PooledTransport(ssl_context=ssl.create_default_context())
        with pytest.raises(httpx.ConnectError):
            await fetch(untrusting, f"https://localhost:{port}/ok")
