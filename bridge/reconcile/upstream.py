"""One JSON request to an upstream for reconciliation, its failures sorted into what
to do about them: `Missing` (404: the thing is not there, an answer) and `Fault`
(no answer, a 5xx, a 429, a refusal: try again in a later run)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from bridge.transport.factory import USER_AGENT
from bridge.transport.limits import MAX_RESPONSE_BYTES, RESPONSE_LIMIT


class Fault(Exception):
    """The upstream did not answer usefully; `status` None when it did not answer."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Missing(Exception):
    """The upstream answered 404."""


class Pacer:
    """At most `per_second` requests a second, shared by everything a run asks."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()
        self.sent = 0

    async def wait(self) -> None:
        async with self._lock:
            now = time.monotonic()
            if self._next > now:
                await asyncio.sleep(self._next - now)
                now = self._next
            self._next = now + self.interval
            self.sent += 1


def client(base_url: str, transport: httpx.AsyncBaseTransport, timeout: float) -> httpx.AsyncClient:
    """A client towards one upstream: its own user agent, redirects never followed
    (credentials go to the configured base URL only)."""
    return httpx.AsyncClient(
        base_url=base_url,
        transport=transport,
        timeout=timeout,
        headers={"user-agent": USER_AGENT},
        follow_redirects=False,
    )


async def get_json(
    http: httpx.AsyncClient,
    path: str,
    *,
    pacer: Pacer,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    auth: httpx.BasicAuth | None = None,
    max_bytes: int = MAX_RESPONSE_BYTES,
) -> dict[str, Any]:
    await pacer.wait()
    try:
        response = await http.get(
            path,
            params=params,
            headers=headers,
            auth=auth,
            extensions={RESPONSE_LIMIT: max_bytes},
        )
    except httpx.TimeoutException:
        raise Fault("timed out") from None
    except httpx.HTTPError as exc:
        raise Fault(str(exc) or type(exc).__name__) from None
    if response.status_code == 404:
        raise Missing(path)
    if not response.is_success:
        raise Fault(f"answered {response.status_code}", status=response.status_code)
    try:
        data = response.json()
    except ValueError:
        raise Fault("the response is not JSON", status=response.status_code) from None
    if not isinstance(data, dict):
        raise Fault("the response is not a JSON object", status=response.status_code)
    return data
