"""ElevenLabs REST calls off the webhook's hot path: native outbound calls
(Twilio and SIP trunk) here, agents in bridge.elevenlabs.agents, both through
`ElevenLabsAPI._request`. register-call, which is on the hot path, lives in
bridge.elevenlabs.register_call."""

from __future__ import annotations

from typing import Any

import httpx

from bridge.elevenlabs.errors import error_message
from bridge.secret import Secret
from bridge.transport.factory import USER_AGENT
from bridge.transport.limits import CALL_RESPONSE_BYTES, MAX_RESPONSE_BYTES, RESPONSE_LIMIT

TWILIO_OUTBOUND_PATH = "/v1/convai/twilio/outbound-call"
SIP_OUTBOUND_PATH = "/v1/convai/sip-trunk/outbound-call"
DEFAULT_TIMEOUT = 15.0


class ElevenLabsError(Exception):
    """An ElevenLabs call failed. `str()` is safe to show to API clients: no secrets."""

    def __init__(self, message: str, *, status: int | None = None, not_sent: bool = False) -> None:
        self.status = status  # None: no HTTP answer from the API
        self.message = message
        # True only when the request surely never reached ElevenLabs (no connection).
        self.not_sent = not_sent
        if status is None:
            super().__init__(f"Could not reach ElevenLabs: {message}")
        else:
            super().__init__(f"ElevenLabs API error ({status}): {message}")


class ElevenLabsAPI:
    def __init__(
        self,
        *,
        api_key: Secret,
        base_url: str,
        transport: httpx.AsyncBaseTransport,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._api_key = api_key
        self._http = httpx.AsyncClient(
            base_url=base_url,
            transport=transport,
            timeout=timeout,
            headers={"user-agent": USER_AGENT},
            follow_redirects=False,
        )

    async def twilio_outbound_call(
        self,
        *,
        agent_id: str,
        agent_phone_number_id: str,
        to_number: str,
        client_data: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """`{success, message, conversation_id, callSid}` (POST /v1/convai/twilio/outbound-call)."""
        body = _outbound_body(agent_id, agent_phone_number_id, to_number, client_data)
        return await self._request("POST", TWILIO_OUTBOUND_PATH, body, CALL_RESPONSE_BYTES)

    async def sip_outbound_call(
        self,
        *,
        agent_id: str,
        agent_phone_number_id: str,
        to_number: str,
        client_data: dict[str, Any] | None = None,
        telephony_call_config: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """`{success, message, conversation_id, sip_call_id}` (ElevenLabs API reference)."""
        body = _outbound_body(agent_id, agent_phone_number_id, to_number, client_data)
        if telephony_call_config:
            body["telephony_call_config"] = telephony_call_config
        return await self._request("POST", SIP_OUTBOUND_PATH, body, CALL_RESPONSE_BYTES)

    async def _request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        max_bytes: int = MAX_RESPONSE_BYTES,
    ) -> dict[str, Any]:
        """One API call, with or without a JSON body; the answer must be a JSON object
        of at most `max_bytes` (a longer one is read no further: an error, not sent False).

        Every failure is an ElevenLabsError: `status` None when there was no HTTP
        answer, and `not_sent` when the request surely never reached ElevenLabs."""
        try:
            response = await self._http.request(
                method,
                path,
                json=body,
                headers={"xi-api-key": self._api_key.reveal()},
                extensions={RESPONSE_LIMIT: max_bytes},
            )
        except (httpx.ConnectTimeout, httpx.PoolTimeout):
            raise ElevenLabsError("timed out connecting", not_sent=True) from None
        except httpx.ConnectError as exc:
            raise ElevenLabsError(str(exc) or type(exc).__name__, not_sent=True) from None
        except httpx.TimeoutException:
            raise ElevenLabsError("timed out waiting for a response") from None
        except httpx.HTTPError as exc:
            raise ElevenLabsError(str(exc) or type(exc).__name__) from None
        if not response.is_success:
            raise ElevenLabsError(error_message(response), status=response.status_code)
        try:
            data = response.json()
        except ValueError:
            raise ElevenLabsError("the response is not JSON", status=response.status_code) from None
        if not isinstance(data, dict):
            raise ElevenLabsError("the response is not a JSON object", status=response.status_code)
        return data

    async def aclose(self) -> None:
        await self._http.aclose()


def _outbound_body(
    agent_id: str,
    agent_phone_number_id: str,
    to_number: str,
    client_data: dict[str, Any] | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "agent_id": agent_id,
        "agent_phone_number_id": agent_phone_number_id,
        "to_number": to_number,
    }
    if client_data:
        body["conversation_initiation_client_data"] = client_data
    return body
