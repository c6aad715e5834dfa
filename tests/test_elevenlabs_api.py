"""ElevenLabsAPI (native outbound calls) over real HTTP: how much of an answer it reads."""

from __future__ import annotations

import json

import pytest

from bridge.elevenlabs.api import ElevenLabsAPI, ElevenLabsError
from bridge.secret import Secret
from bridge.transport.factory import make_transport
from tests.helpers import answering_upstream

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("kind", ["pooled", "aiohttp"])
@pytest.mark.parametrize("path", ["twilio", "sip"])
@pytest.mark.parametrize(("padding", "read"), [(1_000, True), (100_000, False)])
async def test_a_placed_calls_answer_is_read_up_to_64_kib(
    kind: str, path: str, padding: int, read: bool
) -> None:
    body = json.dumps({"success": True, "conversation_id": "conv_1", "message": "x" * padding})
    transport = make_transport(kind)
    async with answering_upstream(body.encode(), "application/json") as base_url:
        api = ElevenLabsAPI(api_key=Secret("k"), base_url=base_url, transport=transport)
        place = api.twilio_outbound_call if path == "twilio" else api.sip_outbound_call
        try:
            if read:
                raw = await place(agent_id="a", agent_phone_number_id="p", to_number="+14155550123")
                assert raw["conversation_id"] == "conv_1"
            else:
                with pytest.raises(ElevenLabsError) as caught:
                    await place(agent_id="a", agent_phone_number_id="p", to_number="+14155550123")
                # Not read, so not known: the call may well have been placed.
                assert caught.value.status is None and not caught.value.not_sent
        finally:
            await api.aclose()
            await transport.aclose()
