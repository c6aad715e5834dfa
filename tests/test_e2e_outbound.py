"""End to end: the bridge under uvicorn placing calls through fake Twilio and
ElevenLabs servers, all over real HTTP on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from defusedxml.ElementTree import fromstring

from bridge.app import create_app
from bridge.fakes import FakeElevenLabs, FakeTwilio
from bridge.secret import Secret
from bridge.settings import Settings
from tests.helpers import (
    AUTH_TOKEN,
    ELEVENLABS_KEY,
    free_port,
    fresh_sqlite,
    running_server,
    twilio_form,
    twilio_signature,
)

API_TOKEN = "e2e-api-token"
ACCOUNT_SID = "AC" + "b" * 32
OUR_NUMBER = "+14155550100"
CALLEE = "+14155550123"
BEARER = {"authorization": f"Bearer {API_TOKEN}"}


class Stack:
    def __init__(self, bridge: str, twilio: FakeTwilio, elevenlabs: FakeElevenLabs) -> None:
        self.bridge = bridge
        self.twilio = twilio
        self.elevenlabs = elevenlabs


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    twilio = FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
    elevenlabs = FakeElevenLabs(api_key=ELEVENLABS_KEY)
    port = free_port()
    with running_server(twilio.app) as twilio_url, running_server(elevenlabs.app) as el_url:
        settings = Settings(
            elevenlabs_api_key=Secret(ELEVENLABS_KEY),
            elevenlabs_agent_id="agent_e2e",
            elevenlabs_agent_phone_number_id="phnum_e2e",
            elevenlabs_api_base=el_url,
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token=Secret(AUTH_TOKEN),
            twilio_phone_number=OUR_NUMBER,
            twilio_api_base=twilio_url,
            public_base_url=f"http://127.0.0.1:{port}",
            bridge_api_token=Secret(API_TOKEN),
            database_url=f"sqlite:///{tmp_path / 'e2e.sqlite3'}",
        )
        fresh_sqlite(settings.database_url)
        with running_server(create_app(settings), port=port) as bridge_url:
            yield Stack(bridge_url, twilio, elevenlabs)


def test_twilio_mode_end_to_end(stack: Stack) -> None:
    placed = httpx.post(
        f"{stack.bridge}/calls",
        json={"to": CALLEE, "dynamic_variables": {"secret__code": "4711", "name": "Ada"}},
        headers={**BEARER, "Idempotency-Key": "e2e-1"},
    )
    assert placed.status_code == 201, placed.text
    call_sid = placed.json()["call_sid"]
    call = stack.twilio.calls[call_sid]
    answer_url = call.param("Url") or ""
    assert answer_url.startswith(f"{stack.bridge}/twilio/outbound-answer?call=")

    # Twilio fetches the answer URL when the callee picks up.
    form = twilio_form(CallSid=call_sid, From=OUR_NUMBER, To=CALLEE, Direction="outbound-api")
    answered = httpx.post(
        answer_url, data=form, headers={"X-Twilio-Signature": twilio_signature(answer_url, form)}
    )
    assert answered.status_code == 200
    assert fromstring(answered.text).find("./Connect/Stream") is not None
    (registered,) = stack.elevenlabs.requests
    assert registered["direction"] == "outbound"
    assert registered["conversation_initiation_client_data"]["dynamic_variables"] == {
        "secret__code": "4711",
        "name": "Ada",
    }

    # A retry of the same request replays; nobody is called twice.
    again = httpx.post(
        f"{stack.bridge}/calls",
        json={"to": CALLEE, "dynamic_variables": {"secret__code": "4711", "name": "Ada"}},
        headers={**BEARER, "Idempotency-Key": "e2e-1"},
    )
    assert again.json() == placed.json() and len(stack.twilio.calls) == 1

    # Status callbacks are accepted (signed like every Twilio webhook).
    status_url = f"{stack.bridge}/twilio/status"
    status_form = twilio_form(CallSid=call_sid, CallStatus="completed", CallDuration="42")
    status = httpx.post(
        status_url,
        data=status_form,
        headers={"X-Twilio-Signature": twilio_signature(status_url, status_form)},
    )
    assert status.status_code == 200

    # Then the agent hands the caller to a person.
    moved = httpx.post(
        f"{stack.bridge}/calls/transfer",
        json={"call_sid": call_sid, "to": "+14155550199"},
        headers=BEARER,
    )
    assert moved.status_code == 200 and moved.json()["transferred"] is True
    assert "+14155550199" in call.updates[0]["Twiml"][0]


@pytest.mark.parametrize(("mode", "id_field"), [("elevenlabs", "call_sid"), ("sip", "sip_call_id")])
def test_native_modes_end_to_end(stack: Stack, mode: str, id_field: str) -> None:
    placed = httpx.post(f"{stack.bridge}/calls", json={"to": CALLEE, "mode": mode}, headers=BEARER)
    assert placed.status_code == 201, placed.text
    assert placed.json()[id_field]
    assert stack.elevenlabs.outbound_requests[0]["body"]["agent_phone_number_id"] == "phnum_e2e"


def test_ai_caller_end_to_end(stack: Stack) -> None:
    with httpx.Client(base_url=stack.bridge, headers=BEARER) as client:
        context = client.post(
            "/api/context",
            json={"description": "We are a pizza place.", "scenario": "order a pizza"},
        )
        assert context.status_code == 200
        call = client.post("/api/call", json={"to_number": CALLEE})
    assert call.status_code == 200, call.text
    body = call.json()
    assert body["ok"] is True and body["message"] == "Call initiated."
    sent = stack.elevenlabs.outbound_requests[0]["body"]
    override = sent["conversation_initiation_client_data"]["conversation_config_override"]
    assert (
        override["agent"]["first_message"] == "Hi, I'm calling because I'd like to order a pizza."
    )
