"""The HTTP client every upstream call goes through.

The httpx API stays (so tests swap in `httpx.MockTransport`), but the default
transport is aiohttp's: httpx's own connection pool degrades badly with
hundreds of requests in flight (encode/httpx#3215; numbers in the README).
"""

from __future__ import annotations

import httpx
from httpx_aiohttp import AiohttpTransport

USER_AGENT = "callbridge/0.1"


def make_transport(max_connections: int) -> httpx.AsyncBaseTransport:
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    return AiohttpTransport(limits=limits)


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
