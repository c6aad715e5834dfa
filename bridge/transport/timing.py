"""Times every request the bridge makes upstream, for `callbridge_upstream_request_seconds`.

A wrapper around the shared transport, so register-call, the native outbound calls
and the Twilio SDK are all measured the same way, each retry on its own.
"""

from __future__ import annotations

import asyncio
import re
import time

import httpx
from prometheus_client import Histogram

# Paths the callbridge calls, by the name they get in the metrics (bounded label values).
_ENDPOINTS = (
    (re.compile(r"/v1/convai/twilio/register-call$"), "elevenlabs_register_call"),
    (re.compile(r"/v1/convai/twilio/outbound-call$"), "elevenlabs_twilio_outbound_call"),
    (re.compile(r"/v1/convai/sip-trunk/outbound-call$"), "elevenlabs_sip_outbound_call"),
    (re.compile(r"/v1/convai/conversations"), "elevenlabs_conversations"),
    (re.compile(r"/v1/convai/"), "elevenlabs_other"),
    (re.compile(r"/Accounts/[^/]+/Calls\.json$"), "twilio_create_call"),
    (re.compile(r"/Accounts/[^/]+/Calls/[^/]+\.json$"), "twilio_update_call"),
    (re.compile(r"/Accounts/"), "twilio_other"),
)


def endpoint_name(path: str, method: str = "POST") -> str:
    for pattern, name in _ENDPOINTS:
        if pattern.search(path):
            if name == "twilio_update_call" and method == "GET":
                return "twilio_fetch_call"  # reconciliation reads a call back
            return name
    return "other"


class TimedTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, histogram: Histogram) -> None:
        self.inner = inner
        self._histogram = histogram

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        try:
            response = await self.inner.handle_async_request(request)
        except (asyncio.CancelledError, httpx.TimeoutException):
            # A deadline cancels the request: it took at least this long.
            self._observe(request, "timeout", started)
            raise
        except Exception:
            self._observe(request, "error", started)
            raise
        self._observe(request, f"{response.status_code // 100}xx", started)
        return response

    def _observe(self, request: httpx.Request, result: str, started: float) -> None:
        endpoint = endpoint_name(request.url.path, request.method)
        self._histogram.labels(endpoint, result).observe(time.perf_counter() - started)

    async def aclose(self) -> None:
        await self.inner.aclose()
