"""The aiohttp option (UPSTREAM_TRANSPORT=aiohttp), held to the pooled transport's promises.

`httpx_aiohttp.AiohttpTransport` on its own breaks three of them:

- It reports a connection dropped after the request was written as
  `httpx.ConnectTimeout` (it maps every `aiohttp.ClientConnectionError` so), and
  callers take a connect failure to mean the request never left: a call that
  was placed looked "not placed" and its Idempotency-Key was released. Here a
  failure counts as a connect failure only when it came before aiohttp had a
  connection for the request (the connector says when it hands one out);
  anything later is a `RemoteProtocolError` or a `ReadTimeout`.
- Its timeouts are per socket read, so a body dripping one byte at a time is
  never cut off. Here the read timeout bounds everything after the connection
  is had, as in the pooled transport.
- It reads bodies of any size. Here the body is read into memory up to the
  request's limit (bridge.transport.limits).
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from bridge.transport.limits import ResponseTooLarge, response_limit


class _Progress:
    """How far one request got: set by the connector, read by the transport."""

    __slots__ = ("connected", "deadline", "read_timeout")

    def __init__(self, read_timeout: float | None) -> None:
        self.connected = False
        self.deadline: asyncio.Timeout | None = None
        self.read_timeout = read_timeout

    def connection_taken(self) -> None:
        self.connected = True
        # From here on, the read timeout bounds the rest of the exchange.
        if self.read_timeout is not None and self.deadline is not None:
            self.deadline.reschedule(asyncio.get_running_loop().time() + self.read_timeout)


_progress: contextvars.ContextVar[_Progress | None] = contextvars.ContextVar(
    "callbridge_aiohttp_progress", default=None
)


class Connector(aiohttp.TCPConnector):
    """aiohttp's connector, telling the request in progress when it has a connection
    (new or reused): nothing of the request is written before that."""

    async def connect(self, req: Any, traces: Any, timeout: Any) -> aiohttp.connector.Connection:
        connection = await super().connect(req, traces, timeout)
        progress = _progress.get()
        if progress is not None:
            progress.connection_taken()
        return connection


class LimitedAiohttpTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: AiohttpTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        limit = response_limit(request)
        # Until a connection is had, aiohttp's own pool and connect timeouts apply;
        # this is only a backstop for them.
        before = [t for t in (timeouts.get("pool"), timeouts.get("connect")) if t is not None]
        loop = asyncio.get_running_loop()
        progress = _Progress(timeouts.get("read"))
        token = _progress.set(progress)
        try:
            async with asyncio.timeout_at(loop.time() + sum(before) + 1 if before else None) as t:
                progress.deadline = t
                response = await self.inner.handle_async_request(request)
                try:
                    body = await _read(response, limit)
                finally:
                    await response.aclose()
        except (httpx.TransportError, aiohttp.ClientError, TimeoutError) as exc:
            classified = _classified(exc, progress.connected)
            if classified is exc:
                raise
            raise classified from exc
        finally:
            _progress.reset(token)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=httpx.ByteStream(body),
            request=request,
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _read(response: httpx.Response, limit: int) -> bytes:
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise ResponseTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        size += len(chunk)
        if size > limit:
            raise ResponseTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _classified(exc: BaseException, connected: bool) -> httpx.TransportError:
    """The error as the pooled transport would raise it: a connect error (the request
    surely never left) only when no connection was had yet."""
    message = str(exc) or type(exc).__name__
    timed_out = isinstance(exc, (TimeoutError, httpx.TimeoutException))
    if not connected:
        if timed_out:
            return httpx.ConnectTimeout(message)
        return exc if isinstance(exc, httpx.ConnectError) else httpx.ConnectError(message)
    if timed_out:
        return httpx.ReadTimeout(message)
    if isinstance(exc, ResponseTooLarge):
        return exc
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return httpx.RemoteProtocolError(message)
    return exc if isinstance(exc, httpx.TransportError) else httpx.RemoteProtocolError(message)
