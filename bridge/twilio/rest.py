"""Twilio's REST API (outbound calls, moving live calls) through the official SDK.

The SDK's HTTP layer is swapped for httpx over the bridge's shared transport, so
tests swap the network (`httpx.MockTransport`, `httpx.ASGITransport`) and
`api_base` can point the SDK at a local fake Twilio.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http import AsyncHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from bridge.secret import Secret
from bridge.transport.factory import USER_AGENT
from bridge.transport.limits import CALL_RESPONSE_BYTES, MAX_RESPONSE_BYTES, RESPONSE_LIMIT

TWILIO_ORIGIN = "https://api.twilio.com"
MAX_TWIML_CHARS = 4000  # Twilio rejects longer inline TwiML (error 32018)
DEFAULT_TIMEOUT = 15.0
CALL_SID_PATTERN = r"^CA[0-9a-fA-F]{32}$"
CALL_SID = re.compile(CALL_SID_PATTERN)
# An explicit environment: TWILIO_EDGE / TWILIO_REGION in os.environ would make the
# SDK rewrite hostnames, and its requests would no longer start with TWILIO_ORIGIN.
_SDK_ENVIRONMENT = {"TWILIO_EDGE": "", "TWILIO_REGION": ""}

logger = logging.getLogger("bridge.twilio_rest")


class TwilioError(Exception):
    """A Twilio REST call failed; str() is safe to show (no secrets)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: int | None = None,
        not_sent: bool = False,
    ):
        self.status = status  # None: no HTTP answer from Twilio
        self.code = code  # Twilio's error code, e.g. 21211 (invalid 'To'), when it gave one
        self.message = message
        # True only when the request surely never reached Twilio (no connection).
        self.not_sent = not_sent
        if status is None:
            super().__init__(f"Could not reach Twilio: {message}")
        elif code is None:
            super().__init__(f"Twilio API error ({status}): {message}")
        else:
            super().__init__(f"Twilio API error ({status}, code {code}): {message}")


@dataclass(frozen=True)
class CreatedCall:
    sid: str
    status: str  # e.g. "queued"
    raw: dict[str, Any]  # the JSON Twilio returned (no secrets in it)


class HttpxTwilioClient(AsyncHttpClient):  # type: ignore[misc]  # the SDK has no type hints
    """The SDK's pluggable async HTTP client, on an `httpx.AsyncClient`.

    Requests for TWILIO_ORIGIN go to `api_base` instead. Only the method, URL and
    status are logged: never headers (Basic auth) nor bodies.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_base: str = TWILIO_ORIGIN,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        super().__init__(logger, True)
        self._http = http
        self._api_base = api_base.rstrip("/")
        self._extensions = {RESPONSE_LIMIT: max_response_bytes}
        self.last_response: Response | None = None

    def url_for(self, uri: str) -> str:
        if uri == TWILIO_ORIGIN or uri.startswith(TWILIO_ORIGIN + "/"):
            return self._api_base + uri[len(TWILIO_ORIGIN) :]
        return uri

    async def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        if timeout is not None and timeout <= 0:
            raise ValueError(timeout)  # as the SDK's own clients do
        url = self.url_for(uri)
        response = await self._http.request(
            method.upper(),
            url,
            params=params,  # type: ignore[arg-type]  # the SDK's values are primitives or lists
            data=data,
            headers=headers,
            auth=auth,
            timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
            follow_redirects=allow_redirects,
            extensions=self._extensions,
        )
        logger.debug("%s %s -> %d", method.upper(), url, response.status_code)
        self.last_response = Response(response.status_code, response.text, response.headers)
        return self.last_response


class TwilioREST:
    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: Secret,
        api_base: str,
        transport: httpx.AsyncBaseTransport,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._api_base = api_base
        self._http = httpx.AsyncClient(
            transport=_Borrowed(transport), timeout=timeout, follow_redirects=False
        )

    async def create_call(
        self,
        *,
        to: str,
        from_: str,
        url: str,
        status_callback: str | None = None,
        status_callback_event: list[str] | None = None,
        machine_detection: str | None = None,
        timeout: int | None = None,
        record: bool = False,
        recording_status_callback: str | None = None,
        recording_status_callback_event: list[str] | None = None,
    ) -> CreatedCall:
        """Start an outbound call; Twilio POSTs to `url` for its TwiML once it connects."""
        options: dict[str, object] = {}
        if status_callback is not None:
            options["status_callback"] = status_callback
            options["status_callback_method"] = "POST"
        if status_callback_event:
            options["status_callback_event"] = status_callback_event
        if machine_detection is not None:
            options["machine_detection"] = machine_detection
        if timeout is not None:
            options["timeout"] = timeout
        if record:
            options["record"] = True
            if recording_status_callback is not None:
                options["recording_status_callback"] = recording_status_callback
                options["recording_status_callback_method"] = "POST"
            if recording_status_callback_event:
                options["recording_status_callback_event"] = recording_status_callback_event

        def create(client: Any) -> Any:
            return client.calls.create_async(to=to, from_=from_, url=url, method="POST", **options)

        response = await self._sdk(create, CALL_RESPONSE_BYTES)
        raw = json_object(response)
        sid, status = raw.get("sid"), raw.get("status")
        if not isinstance(sid, str) or not isinstance(status, str):
            raise TwilioError("the response has no call sid or status", status=response.status_code)
        return CreatedCall(sid=sid, status=status, raw=raw)

    async def redirect_call(self, call_sid: str, *, twiml: str) -> None:
        """Replace a live call's TwiML (how a call is moved to a human)."""
        if len(twiml) > MAX_TWIML_CHARS:
            raise ValueError(f"twiml is {len(twiml)} characters; Twilio takes {MAX_TWIML_CHARS}")
        # The SDK puts the sid into the URL path unescaped.
        if not CALL_SID.fullmatch(call_sid):
            raise ValueError(f"{call_sid!r} is not a Twilio call SID")
        await self._sdk(
            lambda client: client.calls(call_sid).update_async(twiml=twiml), CALL_RESPONSE_BYTES
        )

    async def _sdk(
        self, operation: Callable[[Any], Awaitable[Any]], max_bytes: int = MAX_RESPONSE_BYTES
    ) -> Response:
        """Run one SDK operation; returns the HTTP response it ended with (a body longer
        than `max_bytes` is not read: an error, not sent False)."""
        # A client per operation (about 0.1 ms) so that `last_response` is this
        # operation's own even with calls in flight concurrently.
        http_client = HttpxTwilioClient(
            self._http, api_base=self._api_base, max_response_bytes=max_bytes
        )
        client = Client(
            self._account_sid,
            self._auth_token.reveal(),
            http_client=http_client,
            environment=_SDK_ENVIRONMENT,
            user_agent_extensions=[USER_AGENT],
        )
        try:
            await operation(client)
        except TwilioRestException as exc:
            # The SDK fills a missing error code with the HTTP status.
            code = exc.code if isinstance(exc.code, int) and exc.code != exc.status else None
            raise self._error(str(exc.msg), status=exc.status, code=code) from None
        except TwilioServiceException as exc:
            message = f"{exc.title}: {exc.detail}" if exc.detail else str(exc.title)
            raise self._error(message, status=exc.status, code=exc.code) from None
        except (httpx.ConnectTimeout, httpx.PoolTimeout):
            raise TwilioError("timed out connecting", not_sent=True) from None
        except httpx.ConnectError as exc:
            raise self._error(str(exc) or type(exc).__name__, not_sent=True) from None
        except httpx.TimeoutException:
            raise TwilioError("timed out waiting for a response") from None
        except httpx.TransportError as exc:
            raise self._error(str(exc) or type(exc).__name__) from None
        except (ValueError, TypeError, AttributeError):
            # The SDK could not read a 2xx body (not JSON, or not an object).
            if http_client.last_response is None:
                raise
            raise TwilioError(
                "the response is not a JSON object", status=http_client.last_response.status_code
            ) from None
        assert http_client.last_response is not None
        response: Response = http_client.last_response
        return response

    def _error(
        self,
        message: str,
        *,
        status: int | None = None,
        code: int | None = None,
        not_sent: bool = False,
    ) -> TwilioError:
        # Belt and braces: nothing Twilio or httpx says should contain the token.
        token = self._auth_token.reveal()
        if token:
            message = message.replace(token, "**********")
        return TwilioError(" ".join(message.split()), status=status, code=code, not_sent=not_sent)

    async def aclose(self) -> None:
        await self._http.aclose()


class _Borrowed(httpx.AsyncBaseTransport):
    """The bridge's shared transport: used here, closed by its owner (the app)."""

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self._transport = transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        pass


def json_object(response: Response) -> dict[str, Any]:
    try:
        data = json.loads(response.text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise TwilioError("the response is not a JSON object", status=response.status_code)
    return data
