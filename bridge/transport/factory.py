"""The HTTP transport every upstream call goes through.

Code talks httpx (so tests swap in `httpx.MockTransport`); the transport
underneath is chosen for speed, and measured (benchmarks/README.md):

- "pooled" (default): `bridge.transport.pooled.PooledTransport`, lean keep-alive
  HTTP/1.1 on asyncio and httptools.
- "aiohttp": `httpx_aiohttp.AiohttpTransport`, wrapped by
  `bridge.transport.aiohttp_option` to keep the pooled transport's promises; it
  uses the proxy in HTTPS_PROXY / HTTP_PROXY (read once at startup), for
  deployments that must reach ElevenLabs through a proxy.

Both promise: `ConnectError`, `ConnectTimeout` and `PoolTimeout` only for a
request of which no byte was written (callers take them to mean "surely not
sent"); the read timeout bounds the whole answer, however slowly it comes; a
body is read into memory up to the request's limit (bridge.transport.limits).

httpx's own transport is not offered: its connection pool degrades badly with
hundreds of requests in flight (encode/httpx#3215).
"""

from __future__ import annotations

import urllib.request

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from bridge.transport.aiohttp_option import Connector, LimitedAiohttpTransport
from bridge.transport.pooled import PooledTransport

USER_AGENT = "callbridge/0.1"
KEEPALIVE_SECONDS = 30.0


def make_transport(kind: str = "pooled", max_connections: int = 500) -> httpx.AsyncBaseTransport:
    ssl_context = httpx.create_ssl_context()  # certifi's CAs, as httpx itself uses
    if kind == "pooled":
        return PooledTransport(
            max_connections=max_connections,
            keepalive_expiry=KEEPALIVE_SECONDS,
            ssl_context=ssl_context,
        )
    if kind != "aiohttp":
        raise ValueError(f"unknown transport {kind!r}")

    def session() -> aiohttp.ClientSession:
        # Built on first use, inside the running event loop, as aiohttp requires.
        # The APIs the callbridge calls set no cookies; a dummy jar skips aiohttp's
        # cookie filtering and parsing on every request.
        connector = Connector(
            limit=max_connections, keepalive_timeout=KEEPALIVE_SECONDS, ssl=ssl_context
        )
        # trust_env would re-read the proxy variables and ~/.netrc on every request
        # (the largest cost in a profile); the proxy is read once below instead.
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

    proxies = urllib.request.getproxies()
    proxy_url = proxies.get("https") or proxies.get("http")
    return LimitedAiohttpTransport(
        AiohttpTransport(client=session, proxy=httpx.Proxy(proxy_url) if proxy_url else None)
    )
