"""End to end: the real server under uvicorn, a fake ElevenLabs over real HTTP."""

from __future__ import annotations

import time

import httpx
import pytest
from defusedxml.ElementTree import fromstring

from bridge.app import create_app
from bridge.fakes import FakeElevenLabs
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

TRANSPORTS = pytest.mark.parametrize("transport", ["pooled", "aiohttp"])


def bridge_settings(
    elevenlabs_base: str, public: str, deadline: float = 2.0, transport: str = "pooled"
) -> Settings:
    return Settings(
        upstream_transport=transport,
        elevenlabs_api_key=Secret(ELEVENLABS_KEY),
        elevenlabs_agent_id="agent_e2e",
        elevenlabs_api_base=elevenlabs_base,
        twilio_auth_token=Secret(AUTH_TOKEN),
        public_base_url=public,
        inbound_deadline=deadline,
    )


@TRANSPORTS
def test_signed_call_is_connected_to_the_agent(
    fake_elevenlabs: tuple[FakeElevenLabs, str], transport: str
) -> None:
    fake, fake_url = fake_elevenlabs
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    app = create_app(bridge_settings(fake_url, public, transport=transport))
    form = twilio_form(From="+447700900123", To="+15557650000")
    with running_server(app, port=port) as base:
        response = httpx.post(
            f"{base}/twilio/inbound",
            data=form,
            headers={"X-Twilio-Signature": twilio_signature(f"{public}/twilio/inbound", form)},
        )
        health = httpx.get(f"{base}/healthz")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    root = fromstring(response.text)
    stream = root.find("./Connect/Stream")
    assert stream is not None
    assert stream.get("url", "").startswith("wss://")
    parameter = stream.find("Parameter[@name='conversation_id']")
    assert parameter is not None and parameter.get("value", "").startswith("conv_")
    assert fake.requests == [
        {
            "agent_id": "agent_e2e",
            "from_number": "+447700900123",
            "to_number": "+15557650000",
            "direction": "inbound",
        }
    ]
    assert health.status_code == 200 and health.json()["status"] == "ok"


def test_unsigned_call_is_refused_and_nothing_reaches_elevenlabs(
    fake_elevenlabs: tuple[FakeElevenLabs, str],
) -> None:
    fake, fake_url = fake_elevenlabs
    port = free_port()
    app = create_app(bridge_settings(fake_url, f"http://127.0.0.1:{port}"))
    form = twilio_form()
    with running_server(app, port=port) as base:
        response = httpx.post(
            f"{base}/twilio/inbound",
            data=form,
            headers={
                "X-Twilio-Signature": twilio_signature(
                    f"{base}/twilio/inbound", form, token="wrong"
                )
            },
        )
    assert response.status_code == 403
    assert fake.requests == []


@TRANSPORTS
def test_elevenlabs_unreachable_gives_the_fallback_quickly(transport: str) -> None:
    closed = free_port()  # nothing listens here: connection refused
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    app = create_app(
        bridge_settings(f"http://127.0.0.1:{closed}", public, deadline=3.0, transport=transport)
    )
    form = twilio_form()
    with running_server(app, port=port) as base:
        started = time.monotonic()
        response = httpx.post(
            f"{base}/twilio/inbound",
            data=form,
            headers={"X-Twilio-Signature": twilio_signature(f"{public}/twilio/inbound", form)},
        )
        elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert [child.tag for child in fromstring(response.text)] == ["Say", "Hangup"]
    assert elapsed < 3.0


@TRANSPORTS
def test_upstream_hanging_past_the_deadline_gives_the_fallback_in_time(
    fake_elevenlabs: tuple[FakeElevenLabs, str], transport: str
) -> None:
    fake, fake_url = fake_elevenlabs
    fake.script.append("hang")
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    app = create_app(bridge_settings(fake_url, public, deadline=1.0, transport=transport))
    form = twilio_form()
    with running_server(app, port=port) as base:
        started = time.monotonic()
        response = httpx.post(
            f"{base}/twilio/inbound",
            data=form,
            headers={"X-Twilio-Signature": twilio_signature(f"{public}/twilio/inbound", form)},
            timeout=10,
        )
        elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert [child.tag for child in fromstring(response.text)] == ["Say", "Hangup"]
    assert 0.9 < elapsed < 2.0
