"""The HTTP client every upstream call goes through.

The httpx API stays (so tests swap in `httpx.MockTransport`), but the default
transport is aiohttp's: httpx's own connection pool degrades badly with
hundreds of requests in flight (encode/httpx#3215; numbers in the README).
"""

from __future__ import annotations

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

USER_AGENT = "callbridge/0.1"


KEEPALIVE_SECONDS = 30.0


def make_transport(max_connections: int) -> httpx.AsyncBaseTransport:
    ssl_context = httpx.create_ssl_context()  # certifi's CAs, as httpx itself uses

    def session() -> aiohttp.ClientSession:
        # Built on first use, inside the running event loop, as aiohttp requires.
        # The APIs the bridge calls set no cookies; a dummy jar skips aiohttp's
        # cookie filtering and parsing on every request.
        connector = aiohttp.TCPConnector(
            limit=max_connections, keepalive_timeout=KEEPALIVE_SECONDS, ssl=ssl_context
        )
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

    return AiohttpTransport(client=session)


def make_client(
    *,
    max_connections: int = 500,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout: float = 10.0,
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=transport or make_transport(max_connections),
        timeout=timeout,
        headers={"user-agent": USER_AGENT},
        follow_redirects=False,
    )
