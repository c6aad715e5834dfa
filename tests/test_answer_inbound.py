"""Whatever register-call does, the caller gets valid TwiML, in time."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from xml.etree.ElementTree import Element

import httpx
import httpx2
import pytest
from defusedxml.ElementTree import fromstring
from starlette.testclient import TestClient

from bridge.app import create_app
from bridge.fakes import FakeElevenLabs
from bridge.routing import parse_routes
from bridge.secret import Secret
from bridge.settings import Settings
from tests.helpers import (
    ELEVENLABS_KEY,
    PUBLIC,
    make_settings,
    post_signed,
    twilio_form,
    twilio_signature,
)

DEADLINE = 1.0


def settings(**changes: object) -> Settings:
    return make_settings(**{"inbound_deadline": DEADLINE, **changes})


def post_call(client: TestClient, **form_changes: str) -> tuple[httpx2.Response, float]:
    form = twilio_form(**form_changes)
    started = time.monotonic()
    response = client.post(
        "/twilio/inbound",
        data=form,
        headers={"X-Twilio-Signature": twilio_signature(f"{PUBLIC}/twilio/inbound", form)},
    )
    return response, time.monotonic() - started


def verbs(response: httpx2.Response) -> list[str]:
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    root: Element = fromstring(response.text)
    assert root.tag == "Response"
    return [child.tag for child in root]


FALLBACK_SAY = ["Say", "Hangup"]


@pytest.mark.parametrize(
    ("script", "expected_verbs", "outcome", "reason", "upstream_calls"),
    [
        pytest.param([], ["Connect"], "connected", None, 1, id="ok"),
        pytest.param(["status:500"], ["Connect"], "connected", None, 2, id="500-then-ok"),
        pytest.param(["status:429"], ["Connect"], "connected", None, 2, id="429-then-ok"),
        pytest.param(
            ["status:503", "status:503"], FALLBACK_SAY, "fallback", "http_503", 2, id="503-twice"
        ),
        pytest.param(
            ["status:500", "status:500"], FALLBACK_SAY, "fallback", "http_500", 2, id="500-twice"
        ),
        pytest.param(["status:404"], FALLBACK_SAY, "fallback", "http_404", 1, id="404-no-retry"),
        pytest.param(["status:401"], FALLBACK_SAY, "fallback", "http_401", 1, id="401-no-retry"),
        pytest.param(["html"], FALLBACK_SAY, "fallback", "bad_twiml", 1, id="html-body"),
        pytest.param(["json"], FALLBACK_SAY, "fallback", "bad_twiml", 1, id="json-body"),
        pytest.param(["empty"], FALLBACK_SAY, "fallback", "bad_twiml", 1, id="empty-body"),
        pytest.param(["invalid_xml"], FALLBACK_SAY, "fallback", "bad_twiml", 1, id="invalid-xml"),
        pytest.param(["hang"], FALLBACK_SAY, "fallback", "timeout", 1, id="hang-past-deadline"),
    ],
)
def test_upstream_faults_give_fallback_twiml_within_the_deadline(
    script: list[str],
    expected_verbs: list[str],
    outcome: str,
    reason: str | None,
    upstream_calls: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeElevenLabs(api_key=ELEVENLABS_KEY, script=list(script))
    app = create_app(settings(), transport=httpx.ASGITransport(app=fake.app))
    with caplog.at_level(logging.INFO, logger="bridge.calls"), TestClient(app) as client:
        response, elapsed = post_call(client)
    assert verbs(response) == expected_verbs
    assert elapsed < DEADLINE + 0.5
    assert len(fake.requests) == upstream_calls
    line = next(r.getMessage() for r in caplog.records if r.name == "bridge.calls")
    assert f"outcome={outcome}" in line
    if reason:
        assert f"reason={reason}" in line


STREAM = '<Stream url="wss://api.elevenlabs.io/s"><Parameter name="conversation_id" value="c"/>'


@pytest.mark.parametrize(
    "twiml",
    [
        "<Response><Dial>+19005550100</Dial><Redirect>https://evil.example/t</Redirect></Response>",
        f"<Response><Connect>{STREAM}</Stream></Connect><Dial>+19005550100</Dial></Response>",
        f"<Response><Connect>{STREAM}</Stream></Connect><Redirect>https://e.example</Redirect>"
        "</Response>",
        f'<Response><Connect action="https://evil.example/t">{STREAM}</Stream></Connect></Response>',
        "<Response><Play>https://evil.example/a.mp3</Play></Response>",
        "<Response><Say>Please call +1 900 555 0100</Say></Response>",
        '<Response><Connect><Stream url="ws://plain.example/s"/></Connect></Response>',
    ],
    ids=[
        "dial-redirect",
        "stream-then-dial",
        "stream-then-redirect",
        "connect-action",
        "play",
        "say",
        "plain-ws",
    ],
)
def test_register_call_twiml_other_than_a_stream_gives_the_fallback(
    twiml: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(
        settings(), transport=httpx.MockTransport(lambda request: httpx.Response(200, text=twiml))
    )
    with caplog.at_level(logging.INFO, logger="bridge.calls"), TestClient(app) as client:
        response, _ = post_call(client)
    assert verbs(response) == FALLBACK_SAY
    assert "evil" not in response.text and "900" not in response.text
    line = next(r.getMessage() for r in caplog.records if r.name == "bridge.calls")
    assert "outcome=fallback" in line and "reason=unexpected_twiml" in line


def test_slow_upstream_within_the_deadline_still_connects() -> None:
    fake = FakeElevenLabs(api_key=ELEVENLABS_KEY, latency=0.3)
    app = create_app(settings(), transport=httpx.ASGITransport(app=fake.app))
    with TestClient(app) as client:
        response, _ = post_call(client)
    assert verbs(response) == ["Connect"]


def _raising(*errors: Exception) -> Callable[[httpx.Request], httpx.Response]:
    queue = list(errors)
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if queue:
            raise queue.pop(0)
        return httpx.Response(
            200, text="<Response><Connect><Stream url='wss://a/b'/></Connect></Response>"
        )

    handler.calls = calls  # type: ignore[attr-defined]
    return handler


@pytest.mark.parametrize(
    ("errors", "expected_verbs", "attempts"),
    [
        pytest.param([httpx.ConnectError("refused")], ["Connect"], 2, id="refused-once"),
        pytest.param([httpx.ConnectError("refused")] * 2, FALLBACK_SAY, 2, id="refused-twice"),
        pytest.param([httpx.ReadTimeout("slow")], FALLBACK_SAY, 1, id="read-timeout"),
        pytest.param([httpx.RemoteProtocolError("reset")], ["Connect"], 2, id="reset-once"),
    ],
)
def test_transport_errors(
    errors: list[Exception], expected_verbs: list[str], attempts: int
) -> None:
    handler = _raising(*errors)
    app = create_app(settings(), transport=httpx.MockTransport(handler))
    with TestClient(app) as client:
        response, elapsed = post_call(client)
    assert verbs(response) == expected_verbs
    assert len(handler.calls) == attempts  # type: ignore[attr-defined]
    assert elapsed < DEADLINE + 0.5


def test_register_call_request_is_what_elevenlabs_expects() -> None:
    fake = FakeElevenLabs(api_key=ELEVENLABS_KEY)
    app = create_app(settings(), transport=httpx.ASGITransport(app=fake.app))
    with TestClient(app) as client:
        response, _ = post_call(client, From="+15551230000", To="+15557650000")
    assert verbs(response) == ["Connect"]
    assert fake.requests == [
        {
            "agent_id": "agent_default",
            "from_number": "+15551230000",
            "to_number": "+15557650000",
            "direction": "inbound",
        }
    ]


def test_without_elevenlabs_key_the_call_gets_the_fallback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def never(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no upstream call without a key")

    app = create_app(settings(elevenlabs_api_key=Secret("")), transport=httpx.MockTransport(never))
    with caplog.at_level(logging.INFO, logger="bridge.calls"), TestClient(app) as client:
        response, _ = post_call(client)
    assert verbs(response) == FALLBACK_SAY
    assert "reason=elevenlabs_not_configured" in caplog.text


def test_without_any_agent_id_the_call_gets_the_fallback(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeElevenLabs(api_key=ELEVENLABS_KEY)
    app = create_app(settings(elevenlabs_agent_id=""), transport=httpx.ASGITransport(app=fake.app))
    with caplog.at_level(logging.INFO, logger="bridge.calls"), TestClient(app) as client:
        response, _ = post_call(client)
    assert verbs(response) == FALLBACK_SAY
    assert fake.requests == []
    assert "reason=no_agent_id" in caplog.text


def test_a_wrong_api_key_is_a_fallback_not_a_retry() -> None:
    fake = FakeElevenLabs(api_key="another-key")
    app = create_app(settings(), transport=httpx.ASGITransport(app=fake.app))
    with TestClient(app) as client:
        response, _ = post_call(client)
    assert verbs(response) == FALLBACK_SAY


ROUTES = """
[fallback]
action = "forward"
message = "Connecting you to a person."
to = ["+15550001111"]
on_no_answer = { action = "voicemail", message = "Please leave a message." }

[[rules]]
name = "sales"
when = { called = ["+15557650001"] }
action = "agent"
agent_id = "agent_sales"
dynamic_variables = { caller = "{from}", call_sid = "{call_sid}", vip = true }
first_message = "Hi, this is sales."
fallback = { action = "voicemail", message = "Sales is busy, leave a message.", max_length = 60 }

[[rules]]
name = "support"
when = { called = ["+15557650002"] }
action = "agent"
agent_id = "agent_support"
"""


@pytest.mark.parametrize(
    ("called", "expected_verbs", "step"),
    [
        pytest.param("+15557650001", ["Say", "Record", "Hangup"], "fallback%3Asales", id="rule-fb"),
        pytest.param("+15557650002", ["Say", "Dial"], "fallback", id="global-fallback"),
    ],
)
def test_rule_fallback_then_global_fallback(
    called: str, expected_verbs: list[str], step: str
) -> None:
    fake = FakeElevenLabs(api_key=ELEVENLABS_KEY, script=["status:503", "status:503"])
    app = create_app(
        settings(), table=parse_routes(ROUTES), transport=httpx.ASGITransport(app=fake.app)
    )
    with TestClient(app) as client:
        response, _ = post_call(client, To=called, Called=called)
    assert verbs(response) == expected_verbs
    assert f"step={step}" in response.text


def test_agent_rule_sends_templated_variables_and_overrides() -> None:
    fake = FakeElevenLabs(api_key=ELEVENLABS_KEY)
    app = create_app(
        settings(), table=parse_routes(ROUTES), transport=httpx.ASGITransport(app=fake.app)
    )
    with TestClient(app) as client:
        response, _ = post_call(client, To="+15557650001", CallSid="CA" + "9" * 32)
    assert verbs(response) == ["Connect"]
    (body,) = fake.requests
    assert body["agent_id"] == "agent_sales"
    assert body["conversation_initiation_client_data"] == {
        "dynamic_variables": {"caller": "+15551234567", "call_sid": "CA" + "9" * 32, "vip": True},
        "conversation_config_override": {"agent": {"first_message": "Hi, this is sales."}},
    }
    json.dumps(body)  # what was sent is plain JSON


@pytest.mark.parametrize(
    ("dial_status", "expected_verbs"),
    [
        ("completed", ["Hangup"]),
        ("answered", ["Hangup"]),
        ("no-answer", ["Say", "Record", "Hangup"]),
        ("busy", ["Say", "Record", "Hangup"]),
        ("failed", ["Say", "Record", "Hangup"]),
    ],
)
def test_dial_complete_runs_on_no_answer_only_when_nobody_answered(
    dial_status: str, expected_verbs: list[str]
) -> None:
    app = create_app(settings(), table=parse_routes(ROUTES))
    form = twilio_form(DialCallStatus=dial_status, CallStatus="in-progress")
    with TestClient(app) as client:
        response = post_signed(client, "/twilio/dial-complete?step=fallback", form)
    assert verbs(response) == expected_verbs


def test_dial_complete_for_an_unknown_step_ends_politely() -> None:
    app = create_app(settings(), table=parse_routes(ROUTES))
    form = twilio_form(DialCallStatus="no-answer")
    with TestClient(app) as client:
        response = post_signed(client, "/twilio/dial-complete?step=rule%3Agone", form)
    assert verbs(response) == FALLBACK_SAY


def test_voicemail_complete_thanks_and_hangs_up() -> None:
    app = create_app(settings())
    form = twilio_form(
        RecordingSid="RE" + "2" * 32,
        RecordingDuration="12",
        RecordingUrl="https://api.twilio.com/rec",
    )
    with TestClient(app) as client:
        response = post_signed(client, "/twilio/voicemail-complete?step=fallback", form)
    assert verbs(response) == ["Say", "Hangup"]


def test_a_bug_in_the_bridge_still_gives_the_caller_twiml(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings(), table=parse_routes(ROUTES))

    async def broken(call: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(app.state.inbound, "answer", broken)
    with caplog.at_level(logging.INFO), TestClient(app) as client:
        response, _ = post_call(client)
    assert verbs(response) == ["Say", "Dial"]  # the global fallback of ROUTES
    assert "reason=internal_error" in caplog.text
