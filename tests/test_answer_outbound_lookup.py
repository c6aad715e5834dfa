"""OUTBOUND_LOOKUP: a call placed through Twilio asks the lookup hook when it is
answered, the same way as an inbound call, before register-call."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from standardwebhooks import Webhook
from starlette.testclient import TestClient

from bridge.app import create_app
from bridge.secret import Secret
from tests.helpers import (
    BEARER,
    OUR_NUMBER,
    SECRET_PIN,
    Upstreams,
    outbound_settings,
    post_signed,
    twilio_form,
)

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
CALLEE = "+14155550123"


class Lookup:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.reply: Any = {}
        self.hang = False

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.hang:
            await asyncio.sleep(30)
        if isinstance(self.reply, httpx.Response):
            return self.reply
        return httpx.Response(200, json=self.reply)


@pytest.fixture
def lookup() -> Lookup:
    return Lookup()


def bridge(
    tmp_path: Path, upstreams: Upstreams, lookup: Lookup, *, outbound_lookup: bool = True
) -> TestClient:
    upstreams.transport.routes["lookup.test"] = httpx.MockTransport(lookup)
    settings = outbound_settings(
        tmp_path,
        lookup_url="https://lookup.test/lookup",
        lookup_secrets=(Secret(SECRET),),
        lookup_timeout=0.3,
        outbound_lookup=outbound_lookup,
        inbound_deadline=1.0,
    )
    return TestClient(create_app(settings, transport=upstreams.transport))


@pytest.fixture
def client(tmp_path: Path, upstreams: Upstreams, lookup: Lookup) -> Iterator[TestClient]:
    with bridge(tmp_path, upstreams, lookup) as test_client:
        yield test_client


def place_and_answer(
    client: TestClient, upstreams: Upstreams, **fields: Any
) -> tuple[str, httpx.Response]:
    response = client.post(
        "/calls",
        json={
            "to": CALLEE,
            "agent_id": "agent_reminders",
            "dynamic_variables": {"name": "Ada", "secret__pin": SECRET_PIN},
            **fields,
        },
        headers=BEARER,
    )
    assert response.status_code == 201, response.text
    sid: str = response.json()["call_sid"]
    url = upstreams.twilio.calls[sid].param("Url") or ""
    parts = urlsplit(url)
    fields = twilio_form(
        Direction="outbound-api", From=OUR_NUMBER, To=CALLEE, CallSid=sid, AnsweredBy="human"
    )
    return sid, post_signed(client, f"{parts.path}?{parts.query}", fields)


def lookup_events(client: TestClient, sid: str) -> list[dict[str, Any]]:
    response = client.get(f"/calls/{sid}", headers=BEARER)
    return [e["data"] for e in response.json()["events"] if e["kind"] == "lookup"]


def test_the_lookup_personalizes_an_answered_outbound_call(
    client: TestClient, upstreams: Upstreams, lookup: Lookup
) -> None:
    lookup.reply = {
        "agent_id": "agent_vip",
        "dynamic_variables": {"tier": "gold"},
        "conversation_config_override": {"agent": {"first_message": "Hi Ada"}},
    }
    sid, reply = place_and_answer(client, upstreams)
    assert "<Connect>" in reply.text
    [sent] = lookup.requests
    body = Webhook(SECRET).verify(sent.content, dict(sent.headers))
    assert body["direction"] == "outbound" and body["call_sid"] == sid
    assert body["agent_id"] == "agent_reminders" and body["called_number"] == CALLEE
    assert upstreams.elevenlabs.requests == [
        {
            "agent_id": "agent_vip",
            "from_number": OUR_NUMBER,
            "to_number": CALLEE,
            "direction": "outbound",
            "conversation_initiation_client_data": {
                "dynamic_variables": {"name": "Ada", "secret__pin": SECRET_PIN, "tier": "gold"},
                "conversation_config_override": {"agent": {"first_message": "Hi Ada"}},
            },
        }
    ]
    [event] = lookup_events(client, sid)
    assert event["result"] == "ok" and "agent_id" in event["changed"]
    assert SECRET_PIN not in json.dumps(event)


def test_an_agent_action_brings_its_own_variables(
    client: TestClient, upstreams: Upstreams, lookup: Lookup
) -> None:
    lookup.reply = {
        "action": {"action": "agent", "agent_id": "agent_x", "dynamic_variables": {"to": "{to}"}}
    }
    place_and_answer(client, upstreams)
    [request] = upstreams.elevenlabs.requests
    assert request["agent_id"] == "agent_x"
    variables = request["conversation_initiation_client_data"]["dynamic_variables"]
    assert variables == {"name": "Ada", "secret__pin": SECRET_PIN, "to": CALLEE}


def test_the_lookup_may_send_the_call_elsewhere(
    client: TestClient, upstreams: Upstreams, lookup: Lookup
) -> None:
    lookup.reply = {"action": {"action": "say", "message": "Please call us back."}}
    sid, reply = place_and_answer(client, upstreams)
    assert "Please call us back." in reply.text and "<Connect>" not in reply.text
    assert upstreams.elevenlabs.requests == []
    assert lookup_events(client, sid)[0]["changed"] == ["action=say"]


@pytest.mark.parametrize(
    ("reply", "hang", "result"),
    [
        (httpx.Response(503), False, "http_error"),
        ({"agent_id": ["x"]}, False, "invalid"),
        ({}, True, "timeout"),
    ],
)
def test_a_failed_lookup_keeps_the_requests_values(
    client: TestClient, upstreams: Upstreams, lookup: Lookup, reply: Any, hang: bool, result: str
) -> None:
    lookup.reply, lookup.hang = reply, hang
    sid, answered = place_and_answer(client, upstreams)
    assert "<Connect>" in answered.text
    [request] = upstreams.elevenlabs.requests
    assert request["agent_id"] == "agent_reminders"
    assert lookup_events(client, sid)[0]["result"] == result
    metrics = client.get("/metrics", headers=BEARER).text
    assert f'callbridge_lookups_total{{result="{result}"}} 1.0' in metrics


def test_without_outbound_lookup_nothing_is_asked(
    tmp_path: Path, upstreams: Upstreams, lookup: Lookup
) -> None:
    with bridge(tmp_path, upstreams, lookup, outbound_lookup=False) as client:
        sid, reply = place_and_answer(client, upstreams)
        assert "<Connect>" in reply.text
        assert lookup_events(client, sid) == []
    assert lookup.requests == []


def test_a_request_may_ask_for_the_lookup(
    tmp_path: Path, upstreams: Upstreams, lookup: Lookup
) -> None:
    lookup.reply = {"agent_id": "agent_vip"}
    with bridge(tmp_path, upstreams, lookup, outbound_lookup=False) as client:
        sid, reply = place_and_answer(client, upstreams, lookup=True)
        assert (upstreams.twilio.calls[sid].param("Url") or "").endswith("&lookup=1")
        assert "<Connect>" in reply.text
    assert len(lookup.requests) == 1
    assert upstreams.elevenlabs.requests[0]["agent_id"] == "agent_vip"


def test_a_request_may_decline_the_lookup(
    client: TestClient, upstreams: Upstreams, lookup: Lookup
) -> None:
    sid, reply = place_and_answer(client, upstreams, lookup=False)
    assert (upstreams.twilio.calls[sid].param("Url") or "").endswith("&lookup=0")
    assert "<Connect>" in reply.text
    assert lookup.requests == []


def test_lookup_needs_twilio_mode(client: TestClient) -> None:
    response = client.post(
        "/calls", json={"to": CALLEE, "mode": "elevenlabs", "lookup": True}, headers=BEARER
    )
    assert response.status_code == 422
    assert "lookup needs mode 'twilio'" in response.json()["error"]
