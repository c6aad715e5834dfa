"""Asking the lookup hook: one signed POST within the time it is given; never raises.

Like register-call, it hands `httpx.Request`s to the shared transport itself (no
`httpx.AsyncClient` bookkeeping on the webhook's hot path), so tests swap the
transport for `httpx.MockTransport`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from bridge.lookup.answer import InvalidLookupAnswer, LookupAnswer, parse_answer
from bridge.secret import Secret
from bridge.transport.factory import USER_AGENT
from bridge.transport.limits import RESPONSE_LIMIT, ResponseTooLarge
from bridge.webhook_signing import WebhookSigner

# Client data and an action: a few KB. A longer answer is not read.
MAX_RESPONSE_BYTES = 64 * 1024
RESULTS = ("ok", "timeout", "http_error", "invalid", "error")


@dataclass(frozen=True)
class LookupResult:
    """`result` is one of RESULTS; `answer` is set only when it is "ok". `detail`
    says what went wrong, without anything from the body but field names."""

    result: str
    latency: float
    answer: LookupAnswer | None = None
    status: int | None = None
    detail: str = ""


class LookupClient:
    def __init__(
        self,
        *,
        secrets: Sequence[Secret],
        transport: httpx.AsyncBaseTransport,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._transport = transport
        # Without a secret nothing is sent: the endpoint could not trust it.
        self._signer = WebhookSigner(secrets) if secrets else None
        self._now = now
        # Parsed once per URL (a handful: LOOKUP_URL and the rules' own).
        self._urls: dict[str, tuple[httpx.URL, str]] = {}

    async def lookup(
        self, url: str, body: dict[str, Any], *, message_id: str, timeout: float
    ) -> LookupResult:
        started = time.monotonic()

        def result(kind: str, detail: str, **extra: Any) -> LookupResult:
            return LookupResult(kind, time.monotonic() - started, detail=detail, **extra)

        if self._signer is None:
            return result("error", "no signing secret (LOOKUP_SECRET or EVENTS_WEBHOOK_SECRET)")
        if timeout <= 0:
            return result("timeout", "no time left in the call's deadline")
        try:
            async with asyncio.timeout(timeout):
                response = await self._post(url, body, message_id, timeout)
        except (TimeoutError, httpx.TimeoutException):
            return result("timeout", f"no answer within {timeout:g} s")
        except ResponseTooLarge as exc:
            return result("invalid", str(exc))
        except httpx.HTTPError as exc:
            return result("error", type(exc).__name__)
        status = response.status_code
        if not 200 <= status < 300:
            return result("http_error", f"HTTP {status}", status=status)
        try:
            answer = parse_answer(response.content)
        except InvalidLookupAnswer as exc:
            return result("invalid", str(exc), status=status)
        return result("ok", "", status=status, answer=answer)

    async def _post(
        self, url: str, body: dict[str, Any], message_id: str, timeout: float
    ) -> httpx.Response:
        assert self._signer is not None
        content = json.dumps(body, separators=(",", ":")).encode()
        parsed = self._urls.get(url)
        if parsed is None:
            target = httpx.URL(url)
            parsed = self._urls[url] = (target, target.netloc.decode("ascii"))
        target, host = parsed
        headers = httpx.Headers(
            {
                "host": host,
                "accept": "application/json",
                "content-type": "application/json",
                "content-length": str(len(content)),
                "user-agent": USER_AGENT,
                **self._signer.headers(message_id, self._now(), content),
            }
        )
        request = httpx.Request(
            "POST",
            target,
            headers=headers,
            stream=httpx.ByteStream(content),
            extensions={
                "timeout": {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout},
                RESPONSE_LIMIT: MAX_RESPONSE_BYTES,
            },
        )
        request.read()
        response = await self._transport.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response
