"""A lean HTTP/1.1 transport for httpx: keep-alive connections on asyncio, parsed by
httptools (llhttp, the parser uvicorn uses).

Why not a library's client: the webhook's hot path makes one small JSON request
per call, and aiohttp's ClientSession spent more CPU on it than the rest of the
bridge together (tracing, cookies, URL objects, payload registries). This does
only what the bridge's upstream calls need: HTTP/1.1 over TCP or TLS, bodies
read into memory, keep-alive pooling per origin, httpx's timeouts and
exceptions. No proxies, no HTTP/2, no streaming uploads. Anything else should
use `httpx_aiohttp.AiohttpTransport` (see bridge.transport.factory).
"""

from __future__ import annotations

import asyncio
import select
import ssl
import time
from collections import deque
from typing import Any, cast

import httptools
import httpx

from bridge.transport.limits import MAX_RESPONSE_BYTES, ResponseTooLarge, response_limit

__all__ = ["MAX_RESPONSE_BYTES", "PooledTransport"]
Origin = tuple[str, str, int]


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[None] | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.size = 0
        self.limit = MAX_RESPONSE_BYTES
        self.status = 0
        self.closed = False
        self.reusable = False
        self.idle_since = 0.0
        # A response with neither Content-Length nor chunking ends when the server closes.
        self.ends_at_close = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"malformed response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.ends_at_close and self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)
            return
        self._fail(httpx.RemoteProtocolError("server closed the connection"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        names = {name.lower() for name, _ in self.headers}
        self.ends_at_close = (
            b"content-length" not in names
            and b"transfer-encoding" not in names
            and self.status >= 200
            and self.status not in (204, 304)
        )

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > self.limit:
            self._fail(ResponseTooLarge(self.limit))
            self.close()
            return
        self.body.append(body)

    def on_message_complete(self) -> None:
        if 100 <= self.status < 200:
            # An interim response (100 Continue, 103 Early Hints): the real one follows.
            self.headers, self.body, self.size = [], [], 0
            return
        self.ends_at_close = False
        self.reusable = self.parser.should_keep_alive()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    # used by the transport
    async def exchange(self, raw_request: bytes, read_timeout: float | None, limit: int) -> None:
        assert self.transport is not None
        self.headers, self.body, self.size, self.status = [], [], 0, 0
        self.limit = limit
        self.reusable = self.ends_at_close = False
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw_request)
        try:
            async with asyncio.timeout(read_timeout):
                await self.waiter
        except TimeoutError:
            self.close()
            raise httpx.ReadTimeout("no response in time") from None

    def _fail(self, error: Exception) -> None:
        self.reusable = False
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(error)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def dropped(self) -> bool:
        """Whether this idle connection is gone, though the event loop may not have
        seen it yet: a server closing an idle connection (uvicorn after 5 s) can do so
        just as it is taken, and a POST sent on it then fails with its outcome unknown.
        An idle connection has nothing to read: anything readable (its end, or bytes
        it should not have sent) means it is not to be used, as urllib3 checks."""
        if self.closed or self.transport is None:
            return True
        sock = self.transport.get_extra_info("socket")
        if sock is None:
            return False
        poller = select.poll()
        try:
            poller.register(sock.fileno(), select.POLLIN)
            return bool(poller.poll(0))
        except (OSError, ValueError):
            return True


class PooledTransport(httpx.AsyncBaseTransport):
    def __init__(
        self,
        *,
        max_connections: int = 500,
        keepalive_expiry: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._idle: dict[Origin, deque[_Connection]] = {}
        self._slots = asyncio.Semaphore(max_connections)
        self._keepalive_expiry = keepalive_expiry
        self._ssl_context = ssl_context
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise httpx.TransportError("the transport is closed")
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {url.scheme!r}")
        if request.method in ("HEAD", "CONNECT"):
            raise httpx.UnsupportedProtocol(f"{request.method} is not supported")
        origin: Origin = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        raw = _serialize(request, await request.aread())
        if self._slots.locked():
            # Only a wait needs a timer; the usual case takes a free slot at once.
            try:
                async with asyncio.timeout(timeouts.get("pool")):
                    await self._slots.acquire()
            except TimeoutError:
                raise httpx.PoolTimeout("no free connection in time") from None
        else:
            await self._slots.acquire()
        try:
            connection = self._take_idle(origin) or await self._connect(
                origin, timeouts.get("connect")
            )
            try:
                await connection.exchange(raw, timeouts.get("read"), response_limit(request))
            except BaseException:
                connection.close()
                raise
            # Closed meanwhile (shutdown with a request in flight): pooling it now
            # would leave a socket nobody closes.
            if connection.reusable and not connection.closed and not self._closed:
                connection.idle_since = time.monotonic()
                self._idle.setdefault(origin, deque()).append(connection)
            else:
                connection.close()
        finally:
            self._slots.release()
        return httpx.Response(
            connection.status,
            headers=connection.headers,
            stream=httpx.ByteStream(b"".join(connection.body)),
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    def _take_idle(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()  # the most recently used is the most likely alive
            if now - connection.idle_since < self._keepalive_expiry and not connection.dropped():
                return connection
            connection.close()
        return None

    async def _connect(self, origin: Origin, timeout: float | None) -> _Connection:
        scheme, host, port = origin
        context = None
        if scheme == "https":
            context = self._ssl_context or httpx.create_ssl_context()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, connection = await loop.create_connection(
                    _Connection, host, port, ssl=context, server_hostname=host if context else None
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from None
        except OSError as exc:
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {exc}") from None
        return connection

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()


def _serialize(request: httpx.Request, body: bytes) -> bytes:
    target = request.url.raw_path
    lines = [request.method.encode("ascii") + b" " + target + b" HTTP/1.1"]
    has_length = False
    for name, value in request.headers.raw:
        lowered = name.lower()
        if lowered == b"transfer-encoding":
            continue  # the body is in memory: always sent with a length
        if lowered == b"content-length":
            has_length = True
        lines.append(name + b": " + value)
    if not has_length and (body or request.method in ("POST", "PUT", "PATCH")):
        lines.append(b"Content-Length: " + str(len(body)).encode("ascii"))
    if "host" not in request.headers:
        lines.append(b"Host: " + request.url.netloc)
    return b"\r\n".join(lines) + b"\r\n\r\n" + body
