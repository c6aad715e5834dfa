"""One reading of ElevenLabs' error bodies, the same for register-call (the webhook's
log line) and the API clients (outbound calls, the doctor)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from bridge.elevenlabs.api import ElevenLabsAPI, ElevenLabsError
from bridge.elevenlabs.errors import MESSAGE_LIMIT, error_message
from bridge.elevenlabs.register_call import (
    ElevenLabsClient,
    RegisterCallError,
    RegisterCallRequest,
)
from bridge.secret import Secret

LONG = "word " * 100

BODIES: list[Any] = [
    pytest.param(
        {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}},
        "Invalid API key",
        id="detail-message",
    ),
    pytest.param({"detail": {"status": "quota_exceeded"}}, "quota_exceeded", id="detail-status"),
    pytest.param({"detail": "Agent not found"}, "Agent not found", id="detail-text"),
    pytest.param(
        {"detail": [{"loc": ["body", "to_number"], "msg": "bad"}, {"msg": "also"}]},
        "to_number: bad; also",
        id="validation-list",
    ),
    pytest.param(
        "<html>\n  <h1>Bad gateway</h1>\n</html>", "<html> <h1>Bad gateway</h1> </html>", id="html"
    ),
    pytest.param("", "Unprocessable Entity", id="empty"),
    pytest.param({"detail": LONG}, LONG.strip()[:MESSAGE_LIMIT] + "...", id="too-long"),
]


def reply(body: Any) -> httpx.Response:
    if isinstance(body, str):
        return httpx.Response(422, text=body)
    return httpx.Response(422, json=body)


@pytest.mark.parametrize(("body", "message"), BODIES)
def test_error_message(body: Any, message: str) -> None:
    assert error_message(reply(body)) == message


@pytest.mark.parametrize(("body", "message"), BODIES)
def test_every_client_says_the_same(body: Any, message: str) -> None:
    transport = httpx.MockTransport(lambda request: reply(body))

    async def both() -> tuple[RegisterCallError, ElevenLabsError]:
        register = ElevenLabsClient(
            api_key=Secret("k"), base_url="http://el.test", transport=transport
        )
        api = ElevenLabsAPI(api_key=Secret("k"), base_url="http://el.test", transport=transport)
        request = RegisterCallRequest(
            agent_id="a", from_number="+14155550100", to_number="+14155550101"
        )
        with pytest.raises(RegisterCallError) as registered:
            await register.register_call(request, timeout=2)
        with pytest.raises(ElevenLabsError) as placed:
            await api.twilio_outbound_call(
                agent_id="a", agent_phone_number_id="p", to_number="+14155550101"
            )
        await api.aclose()
        return registered.value, placed.value

    registered, placed = asyncio.run(both())
    assert (registered.reason, registered.detail) == ("http_422", message)
    assert (placed.status, placed.message) == (422, message)
