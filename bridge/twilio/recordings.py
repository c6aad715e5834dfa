"""A recording's audio from Twilio's REST API, and deleting the recording there.

The URL is always built here from `api_base`, the account SID and a recording SID
that matched `RECORDING_SID`; never from a URL in a webhook (a forged `RecordingUrl`
would otherwise receive the account's credentials). Only the method, the recording
SID and the status are logged; never the Basic auth header.
"""

from __future__ import annotations

import logging
import re

import httpx

from bridge.secret import Secret
from bridge.transport.factory import USER_AGENT
from bridge.transport.limits import CALL_RESPONSE_BYTES, RESPONSE_LIMIT

RECORDING_SID = re.compile(r"RE[0-9a-f]{32}")
# Four hours (Twilio's longest <Record>) of Twilio's mp3 comes to well under this.
MAX_AUDIO_BYTES = 256 * 1024 * 1024
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
API_VERSION = "2010-04-01"

logger = logging.getLogger("bridge.twilio_recordings")


class RecordingFetchError(Exception):
    """Twilio did not hand over (or delete) the recording; str() is safe to show."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # None: no HTTP answer


def is_recording_sid(value: str) -> bool:
    return RECORDING_SID.fullmatch(value) is not None


class TwilioRecordings:
    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: Secret,
        api_base: str,
        transport: httpx.AsyncBaseTransport,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._api_base = api_base.rstrip("/")
        self._http = httpx.AsyncClient(
            transport=_Borrowed(transport),
            timeout=timeout,
            follow_redirects=False,
            headers={"user-agent": USER_AGENT},
        )

    def url(self, recording_sid: str, suffix: str) -> str:
        if not is_recording_sid(recording_sid):
            raise ValueError("not a Twilio recording SID")
        if not re.fullmatch(r"AC[0-9a-fA-F]{32}", self._account_sid):
            raise ValueError("TWILIO_ACCOUNT_SID is not an account SID")
        account = self._account_sid
        return (
            f"{self._api_base}/{API_VERSION}/Accounts/{account}/Recordings/{recording_sid}{suffix}"
        )

    async def audio(self, recording_sid: str) -> bytes:
        """The recording's mp3 bytes."""
        response = await self._send("GET", recording_sid, ".mp3", MAX_AUDIO_BYTES)
        if response.status_code != 200:
            raise RecordingFetchError(
                f"Twilio answered {response.status_code} for the recording's audio",
                status=response.status_code,
            )
        if not response.content:
            raise RecordingFetchError("Twilio sent no audio", status=response.status_code)
        return response.content

    async def delete(self, recording_sid: str) -> None:
        """Delete the recording at Twilio; one that is gone already is not an error."""
        response = await self._send("DELETE", recording_sid, ".json", CALL_RESPONSE_BYTES)
        if response.status_code not in (204, 200, 404):
            raise RecordingFetchError(
                f"Twilio answered {response.status_code} to deleting the recording",
                status=response.status_code,
            )

    async def _send(self, method: str, sid: str, suffix: str, limit: int) -> httpx.Response:
        url = self.url(sid, suffix)
        try:
            response = await self._http.request(
                method,
                url,
                auth=(self._account_sid, self._auth_token.reveal()),
                extensions={RESPONSE_LIMIT: limit},
            )
        except httpx.TimeoutException:
            raise RecordingFetchError("timed out talking to Twilio") from None
        except httpx.HTTPError as exc:
            raise RecordingFetchError(
                f"could not reach Twilio: {type(exc).__name__}: {_safe(str(exc), self)}"
            ) from None
        logger.debug("%s recording %s%s -> %d", method, sid, suffix, response.status_code)
        return response

    async def aclose(self) -> None:
        await self._http.aclose()


def _safe(message: str, client: TwilioRecordings) -> str:
    token = client._auth_token.reveal()
    return message.replace(token, "**********") if token else message


class _Borrowed(httpx.AsyncBaseTransport):
    """The app's shared transport: used here, closed by its owner."""

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self._transport = transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        pass
