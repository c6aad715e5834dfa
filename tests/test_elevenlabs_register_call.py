"""ElevenLabsClient.register_call over real HTTP: how much of an answer it reads."""

from __future__ import annotations

import pytest

from bridge.elevenlabs.register_call import (
    ElevenLabsClient,
    RegisterCallError,
    RegisterCallRequest,
    Registered,
)
from bridge.fakes.elevenlabs import register_twiml
from bridge.secret import Secret
from bridge.transport.factory import make_transport
from tests.helpers import answering_upstream

pytestmark = pytest.mark.anyio


def padded_twiml(size: int) -> bytes:
    twiml = register_twiml("agent_a", "conv_1").encode()
    return twiml + b"<!--" + b"x" * (size - len(twiml) - 7) + b"-->"


def request() -> RegisterCallRequest:
    return RegisterCallRequest(
        agent_id="agent_a", from_number="+14155550123", to_number="+14155550100"
    )


@pytest.mark.parametrize("kind", ["pooled", "aiohttp"])
@pytest.mark.parametrize(("size", "registered"), [(2_000, True), (40_000, False)])
async def test_register_call_reads_a_few_kb_of_twiml_and_no_more(
    kind: str, size: int, registered: bool
) -> None:
    transport = make_transport(kind)
    async with answering_upstream(padded_twiml(size), "text/html") as base_url:
        client = ElevenLabsClient(api_key=Secret("k"), base_url=base_url, transport=transport)
        try:
            if registered:
                result = await client.register_call(request(), timeout=5)
                assert isinstance(result, Registered) and result.twiml.conversation_id == "conv_1"
            else:
                with pytest.raises(RegisterCallError) as caught:
                    await client.register_call(request(), timeout=5)
                assert (caught.value.reason, caught.value.attempts) == ("too_large", 1)
        finally:
            await transport.aclose()
