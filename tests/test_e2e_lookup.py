"""End to end: the real server under uvicorn asks a lookup endpoint over real HTTP
(signed, verified by the endpoint), then register-call with the merged values."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from defusedxml.ElementTree import fromstring

from bridge.app import create_app
from bridge.fakes import FakeElevenLabs, FakeLookup
from bridge.fakes.lookup import LOOKUP_PATH
from bridge.secret import Secret
from bridge.settings import Settings
from tests.helpers import (
    AUTH_TOKEN,
    ELEVENLABS_KEY,
    free_port,
    running_server,
    twilio_form,
    twilio_signature,
)

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def fake_lookup() -> Iterator[tuple[FakeLookup, str]]:
    fake = FakeLookup(secret=SECRET)
    with running_server(fake.app) as base:
        yield fake, f"{base}{LOOKUP_PATH}"


@pytest.mark.parametrize("transport", ["pooled", "aiohttp"])
def test_a_call_is_personalized_by_the_lookup(
    fake_elevenlabs: tuple[FakeElevenLabs, str],
    fake_lookup: tuple[FakeLookup, str],
    transport: str,
) -> None:
    eleven, eleven_url = fake_elevenlabs
    lookup, lookup_url = fake_lookup
    lookup.reply = {
        "type": "conversation_initiation_client_data",
        "dynamic_variables": {"customer_name": "Ada"},
        "agent_id": "agent_vip",
    }
    lookup.latency = 0.05
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    settings = Settings(
        upstream_transport=transport,
        elevenlabs_api_key=Secret(ELEVENLABS_KEY),
        elevenlabs_agent_id="agent_e2e",
        elevenlabs_api_base=eleven_url,
        twilio_auth_token=Secret(AUTH_TOKEN),
        public_base_url=public,
        inbound_deadline=2.0,
        lookup_url=lookup_url,
        lookup_secrets=(Secret(SECRET),),
    )
    form = twilio_form(From="+447700900123", To="+15557650000")
    with running_server(create_app(settings), port=port) as base:
        started = time.monotonic()
        response = httpx.post(
            f"{base}/twilio/inbound",
            data=form,
            headers={"X-Twilio-Signature": twilio_signature(f"{public}/twilio/inbound", form)},
        )
        elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert fromstring(response.text).find("./Connect/Stream") is not None
    assert lookup.refused == 0
    [asked] = lookup.requests
    assert asked["caller_id"] == "+447700900123" and asked["agent_id"] == "agent_e2e"
    assert eleven.requests == [
        {
            "agent_id": "agent_vip",
            "from_number": "+447700900123",
            "to_number": "+15557650000",
            "direction": "inbound",
            "conversation_initiation_client_data": {"dynamic_variables": {"customer_name": "Ada"}},
        }
    ]
    assert elapsed >= 0.05


def test_the_fake_refuses_a_bad_signature(fake_lookup: tuple[FakeLookup, str]) -> None:
    lookup, url = fake_lookup
    response = httpx.post(url, content=b"{}", headers={"webhook-id": "x"})
    assert response.status_code == 401 and lookup.refused == 1 and lookup.requests == []
