"""ElevenLabs `register-call`, on a deadline that fits inside Twilio's 15 s webhook budget.

The official SDK's defaults (240 s timeout, 2 retries) do not fit, and some of its
versions discard the TwiML, so the bridge talks to the endpoint itself.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

import httpx

from bridge.elevenlabs.errors import error_message
from bridge.elevenlabs.register_request import REGISTER_CALL_PATH as REGISTER_CALL_PATH
from bridge.elevenlabs.register_request import RegisterCallRequest as RegisterCallRequest
from bridge.secret import Secret
from bridge.transport.factory import USER_AGENT
from bridge.transport.limits import RESPONSE_LIMIT, ResponseTooLarge
from twiml import CheckedTwiML, InvalidTwiML, check_twiml

# Leave at least this much of the deadline for a second attempt to be worth making.
MIN_RETRY_BUDGET = 0.5
RETRY_PAUSE = 0.1
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
# register-call answers a few hundred bytes of TwiML (or a short JSON error); a longer
# body is not read (an answer 10 MB long once held that much memory per call).
MAX_RESPONSE_BYTES = 32 * 1024


@dataclass(frozen=True)
class Registered:
    twiml: CheckedTwiML
    status: int
    attempts: int
    latency: float


class RegisterCallError(Exception):
    """register-call did not give usable TwiML. Nothing in it is secret."""

    def __init__(
        self,
        reason: str,
        detail: str,
        *,
        status: int | None = None,
        attempts: int = 1,
        latency: float = 0.0,
    ) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.status = status
        self.attempts = attempts
        self.latency = latency


class ElevenLabsClient:
    """register-call over an httpx transport.

    It sends `httpx.Request`s to the transport itself rather than through an
    `httpx.AsyncClient`: on the webhook's hot path the client's bookkeeping
    (cookies, auth, redirects, URL merging) cost more CPU than the request
    (benchmarks/README.md), and the bridge needs none of it. Tests still swap
    the transport for `httpx.MockTransport` or `httpx.ASGITransport`.
    """

    def __init__(
        self, *, api_key: Secret, base_url: str, transport: httpx.AsyncBaseTransport
    ) -> None:
        self._transport = transport
        self._register_url = httpx.URL(base_url.rstrip("/") + REGISTER_CALL_PATH)
        self._headers = httpx.Headers(
            {
                "host": self._register_url.netloc.decode("ascii"),
                "xi-api-key": api_key.reveal(),
                "accept": "application/xml",
                "content-type": "application/json",
                "user-agent": USER_AGENT,
            }
        )

    async def register_call(self, request: RegisterCallRequest, *, timeout: float) -> Registered:
        """TwiML for the call, or RegisterCallError; never takes longer than `timeout` seconds.

        One retry on connection errors, 429 and 5xx, when enough of the time is left.
        """
        started = time.monotonic()
        deadline = started + timeout
        attempt = 0
        while True:
            attempt += 1
            try:
                async with asyncio.timeout(max(deadline - time.monotonic(), 0.001)):
                    response = await self._post(request, deadline - time.monotonic())
            except (TimeoutError, httpx.TimeoutException):
                raise RegisterCallError(
                    "timeout",
                    f"no answer within {timeout:g} s",
                    attempts=attempt,
                    latency=time.monotonic() - started,
                ) from None
            except ResponseTooLarge as exc:
                raise RegisterCallError(
                    "too_large", str(exc), attempts=attempt, latency=time.monotonic() - started
                ) from None
            except httpx.TransportError as exc:
                error = RegisterCallError(
                    "connect_error",
                    type(exc).__name__,
                    attempts=attempt,
                    latency=time.monotonic() - started,
                )
                if await self._may_retry(attempt, deadline, None):
                    continue
                raise error from None
            if response.status_code in RETRYABLE_STATUS and await self._may_retry(
                attempt, deadline, response
            ):
                continue
            return self._result(response, attempt, time.monotonic() - started)

    async def _post(self, request: RegisterCallRequest, timeout: float) -> httpx.Response:
        limit = max(timeout, 0.001)
        body = json.dumps(request.to_json(), separators=(",", ":")).encode()
        headers = httpx.Headers(self._headers)
        headers["content-length"] = str(len(body))
        # A ready stream with complete headers skips httpx's header preparation,
        # which costs several times more than building the request itself.
        outgoing = httpx.Request(
            "POST",
            self._register_url,
            headers=headers,
            stream=httpx.ByteStream(body),
            extensions={
                "timeout": {"connect": limit, "read": limit, "write": limit, "pool": limit},
                RESPONSE_LIMIT: MAX_RESPONSE_BYTES,
            },
        )
        outgoing.read()  # the body is in memory: lets transports send it with a length
        response = await self._transport.handle_async_request(outgoing)
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    async def _may_retry(
        self, attempt: int, deadline: float, response: httpx.Response | None
    ) -> bool:
        if attempt > 1:
            return False
        pause = RETRY_PAUSE
        if response is not None:
            pause = max(pause, _retry_after(response))
        if deadline - time.monotonic() - pause < MIN_RETRY_BUDGET:
            return False
        await asyncio.sleep(pause)
        return True

    def _result(self, response: httpx.Response, attempts: int, latency: float) -> Registered:
        status = response.status_code
        if not 200 <= status < 300:
            raise RegisterCallError(
                f"http_{status}",
                error_message(response),
                status=status,
                attempts=attempts,
                latency=latency,
            )
        try:
            checked = check_twiml(response.content, stream_only=True)
        except InvalidTwiML as exc:
            # unexpected_twiml: well-formed, but not the stream register-call gives.
            reason = exc.reason if exc.reason == "unexpected_twiml" else "bad_twiml"
            raise RegisterCallError(
                reason, str(exc), status=status, attempts=attempts, latency=latency
            ) from None
        return Registered(twiml=checked, status=status, attempts=attempts, latency=latency)


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(float(response.headers.get("retry-after", "0")), 0.0)
    except ValueError:
        return 0.0
