"""Both transports (UPSTREAM_TRANSPORT=pooled and aiohttp) against a scripted server on
loopback: what each failure is reported as, the read timeout, the response limit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from bridge.transport.factory import make_transport
from bridge.transport.limits import MAX_RESPONSE_BYTES, RESPONSE_LIMIT
from tests.helpers import read_http_request

pytestmark = pytest.mark.anyio
TRANSPORTS = pytest.mark.parametrize("kind", ["pooled", "aiohttp"])
# What callers take to mean "the request surely never left".
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class Server:
    def __init__(self) -> None:
        self.requests: list[bytes] = []


@asynccontextmanager
async def scripted_server() -> AsyncIterator[tuple[Server, int]]:
    state = Server()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head, body = await read_http_request(reader)
                state.requests.append(head + body)
                path = head.split(b" ")[1]
                if path == b"/drop":  # the whole request read, then no answer
                    break
                if path == b"/drip":  # one byte at a time, for ever
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
                    for _ in range(1000):
                        writer.write(b"x")
                        await writer.drain()
                        await asyncio.sleep(0.1)
                size = int(path.rsplit(b"/", 1)[1]) if path.startswith(b"/size/") else 2
                if path.startswith(b"/chunked/"):
                    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                    size = int(path.rsplit(b"/", 1)[1])
                    for _ in range(size // 1000):
                        writer.write(b"3e8\r\n" + b"x" * 1000 + b"\r\n")
                    writer.write(b"0\r\n\r\n")
                else:
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
                    writer.write(b"x" * size)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield state, server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def fetch(
    transport: httpx.AsyncBaseTransport, url: str, timeout: float = 5.0, limit: int | None = None
) -> httpx.Response:
    extensions: dict[str, object] = {
        "timeout": {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
    }
    if limit is not None:
        extensions[RESPONSE_LIMIT] = limit
    request = httpx.Request("POST", url, content=b'{"to": "+14155550123"}', extensions=extensions)
    # A guard so that a transport that never gives up fails the test instead of hanging it.
    async with asyncio.timeout(10):
        response = await transport.handle_async_request(request)
        await response.aread()
    return response


@TRANSPORTS
async def test_a_connection_dropped_after_the_request_was_written_is_not_a_connect_error(
    kind: str,
) -> None:
    async with scripted_server() as (server, port):
        transport = make_transport(kind)
        with pytest.raises(httpx.TransportError) as raised:
            await fetch(transport, f"http://127.0.0.1:{port}/drop")
        await transport.aclose()
    assert server.requests and server.requests[0].endswith(b'"+14155550123"}')
    assert not isinstance(raised.value, NOT_SENT)


@TRANSPORTS
async def test_a_refused_connection_is_a_connect_error(kind: str) -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    transport = make_transport(kind)
    with pytest.raises(NOT_SENT):
        await fetch(transport, f"http://127.0.0.1:{port}/size/2")
    await transport.aclose()


@TRANSPORTS
async def test_the_read_timeout_bounds_a_dripping_body(kind: str) -> None:
    async with scripted_server() as (_, port):
        transport = make_transport(kind)
        with pytest.raises(httpx.ReadTimeout):
            await fetch(transport, f"http://127.0.0.1:{port}/drip", timeout=0.5)
        await transport.aclose()


@TRANSPORTS
@pytest.mark.parametrize(
    ("path", "limit", "ok"),
    [
        ("/size/1000", 1000, True),
        ("/size/1001", 1000, False),
        ("/chunked/64000", 64000, True),
        ("/chunked/65000", 64000, False),
        (f"/size/{MAX_RESPONSE_BYTES}", None, True),
        (f"/size/{MAX_RESPONSE_BYTES + 1}", None, False),
    ],
)
async def test_a_body_past_the_requests_limit_is_refused(
    kind: str, path: str, limit: int | None, ok: bool
) -> None:
    async with scripted_server() as (_, port):
        transport = make_transport(kind)
        if ok:
            response = await fetch(transport, f"http://127.0.0.1:{port}{path}", limit=limit)
            assert len(response.content) == int(path.rsplit("/", 1)[1])
        else:
            with pytest.raises(httpx.RemoteProtocolError, match="larger than"):
                await fetch(transport, f"http://127.0.0.1:{port}{path}", limit=limit)
        # Whatever happened, the next request works.
        assert (await fetch(transport, f"http://127.0.0.1:{port}/size/2")).content == b"xx"
        await transport.aclose()
