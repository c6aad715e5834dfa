"""Routing actions turned into TwiML or a register-call request."""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.etree.ElementTree import Element

import pytest
from defusedxml.ElementTree import fromstring

from bridge.answer.actions import client_data, redact, register_request, render
from bridge.call import Call
from bridge.elevenlabs.register_call import RegisterCallRequest
from bridge.routing.rules import (
    AgentAction,
    ForwardAction,
    HangupAction,
    RejectAction,
    SayAction,
    VoicemailAction,
)

CALL = Call(
    call_sid="CA0123456789abcdef0123456789abcdef",
    from_number="+16175550123",
    to_number="+12125550123",
    account_sid="AC0123456789abcdef0123456789abcdef",
    caller_name="Ada Lovelace",
    forwarded_from="+12125550999",
    stir_verstat="TN-Validation-Passed-A",
    geo={"FromCity": "BOSTON", "FromState": "MA", "FromCountry": "US", "ToState": "NY"},
)


def parse(doc: str) -> Element:
    assert doc.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root: Element = fromstring(doc)
    assert root.tag == "Response"
    return root


def verbs(root: Element) -> list[str]:
    return [child.tag for child in root]


def step_of(url: str, path: str) -> str:
    parts = urlsplit(url)
    assert parts.path == path
    assert not parts.scheme and not parts.netloc  # relative to the webhook URL
    (step,) = parse_qs(parts.query, strict_parsing=True)["step"]
    return step


def agent(**fields: Any) -> AgentAction:
    return AgentAction.model_validate({"action": "agent", **fields})


# --- render -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "expected_attrs"),
    [
        pytest.param(SayAction(action="say", message="We are closed."), {}, id="plain"),
        pytest.param(
            SayAction(action="say", message="We are closed.", voice="Polly.Joanna"),
            {"voice": "Polly.Joanna"},
            id="voice",
        ),
        pytest.param(
            SayAction(action="say", message="We are closed.", voice="alice", language="en-GB"),
            {"voice": "alice", "language": "en-GB"},
            id="voice-and-language",
        ),
    ],
)
def test_render_say(action: SayAction, expected_attrs: dict[str, str]) -> None:
    root = parse(render(action, step="rule:closed"))
    assert verbs(root) == ["Say", "Hangup"]
    assert root[0].text == "We are closed."
    assert root[0].attrib == expected_attrs


def test_render_say_escapes_text() -> None:
    root = parse(render(SayAction(action="say", message="Tom & Jerry <3"), step="x"))
    assert root[0].text == "Tom & Jerry <3"


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        pytest.param(RejectAction(action="reject"), "rejected", id="default"),
        pytest.param(RejectAction(action="reject", reason="busy"), "busy", id="busy"),
        pytest.param(RejectAction(action="reject", reason="rejected"), "rejected", id="rejected"),
    ],
)
def test_render_reject(action: RejectAction, reason: str) -> None:
    root = parse(render(action, step="rule:blocklist"))
    assert verbs(root) == ["Reject"]
    assert root[0].attrib == {"reason": reason}


def test_render_hangup() -> None:
    root = parse(render(HangupAction(action="hangup"), step="rule:bye"))
    assert verbs(root) == ["Hangup"]
    assert root[0].attrib == {}


@pytest.mark.parametrize(
    ("action", "expected_verbs", "record_attrs"),
    [
        pytest.param(
            VoicemailAction(action="voicemail"),
            ["Record", "Hangup"],
            {"maxLength": "120", "playBeep": "true", "method": "POST"},
            id="defaults",
        ),
        pytest.param(
            VoicemailAction(
                action="voicemail",
                message="Leave a message.",
                max_length=600,
                play_beep=False,
                voice="Polly.Amy",
                language="en-GB",
            ),
            ["Say", "Record", "Hangup"],
            {"maxLength": "600", "playBeep": "false", "method": "POST"},
            id="everything",
        ),
    ],
)
def test_render_voicemail(
    action: VoicemailAction, expected_verbs: list[str], record_attrs: dict[str, str]
) -> None:
    root = parse(render(action, step="rule:after-hours"))
    assert verbs(root) == expected_verbs
    record = root.find("Record")
    assert record is not None
    action_url = record.attrib.pop("action")
    # The recording's status (its audio to fetch) goes to the bridge, marked a voicemail.
    assert record.attrib.pop("recordingStatusCallback") == "/twilio/recording-status?kind=voicemail"
    assert record.attrib.pop("recordingStatusCallbackEvent") == "completed absent"
    assert record.attrib.pop("recordingStatusCallbackMethod") == "POST"
    assert record.attrib == record_attrs
    assert action_url == "/twilio/voicemail-complete?step=rule%3Aafter-hours"
    assert step_of(action_url, "/twilio/voicemail-complete") == "rule:after-hours"
    if action.message:
        assert root[0].text == action.message
        assert root[0].attrib == {"voice": "Polly.Amy", "language": "en-GB"}


def test_render_forward() -> None:
    action = ForwardAction.model_validate(
        {
            "action": "forward",
            "to": ["+12125550150", "sip:frontdesk@pbx.example.com"],
            "timeout": 25,
            "caller_id": "+12125550123",
            "message": "Please hold.",
            "voice": "alice",
        }
    )
    root = parse(render(action, step="rule:front-desk"))
    assert verbs(root) == ["Say", "Dial"]
    assert root[0].text == "Please hold."
    assert root[0].attrib == {"voice": "alice"}
    dial = root[1]
    assert dial.attrib == {
        "action": "/twilio/dial-complete?step=rule%3Afront-desk",
        "method": "POST",
        "timeout": "25",
        "callerId": "+12125550123",
    }
    assert [(child.tag, child.text) for child in dial] == [
        ("Number", "+12125550150"),
        ("Sip", "sip:frontdesk@pbx.example.com"),
    ]


def test_render_forward_defaults() -> None:
    root = parse(render(ForwardAction(action="forward", to=["+12125550150"]), step="fallback"))
    # No <Hangup/> after the Dial: its action URL decides what happens next.
    assert verbs(root) == ["Dial"]
    assert root[0].attrib == {
        "action": "/twilio/dial-complete?step=fallback",
        "method": "POST",
        "timeout": "20",
    }


@pytest.mark.parametrize(
    "step",
    [
        "rule:front-desk",
        "fallback:vip",
        "fallback",
        "rule:Front desk & co",
        "rule:a=b?c#d/e",
        "rule:Café +1",
    ],
)
def test_render_step_round_trips_through_the_url(step: str) -> None:
    forward = parse(render(ForwardAction(action="forward", to=["+12125550150"]), step=step))
    assert step_of(forward[0].attrib["action"], "/twilio/dial-complete") == step
    voicemail = parse(render(VoicemailAction(action="voicemail"), step=step))
    record = voicemail.find("Record")
    assert record is not None
    assert step_of(record.attrib["action"], "/twilio/voicemail-complete") == step


def test_render_agent_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="AgentAction has no static TwiML"):
        render(AgentAction(action="agent"), step="default")


# --- register_request and client_data --------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "default_agent_id", "expected"),
    [
        pytest.param(agent(agent_id="agent_vip"), "agent_default", "agent_vip", id="rule-agent"),
        pytest.param(agent(agent_id="agent_vip"), "", "agent_vip", id="rule-agent-no-default"),
        pytest.param(agent(), "agent_default", "agent_default", id="default-agent"),
        pytest.param(agent(), "", None, id="no-agent"),
    ],
)
def test_register_request_agent_id(
    action: AgentAction, default_agent_id: str, expected: str | None
) -> None:
    request = register_request(action, CALL, default_agent_id=default_agent_id)
    if expected is None:
        assert request is None
        return
    assert request is not None
    assert request.to_json() == {
        "agent_id": expected,
        "from_number": "+16175550123",
        "to_number": "+12125550123",
        "direction": "inbound",
    }
    assert request.client_data is None


def test_register_request_carries_client_data() -> None:
    action = agent(dynamic_variables={"caller": "{from}"}, language="es")
    request = register_request(action, CALL, default_agent_id="agent_default")
    assert request is not None
    assert request.to_json()["conversation_initiation_client_data"] == {
        "dynamic_variables": {"caller": "+16175550123"},
        "conversation_config_override": {"agent": {"language": "es"}},
    }


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        pytest.param("{from}", "+16175550123", id="from"),
        pytest.param("{to}", "+12125550123", id="to"),
        pytest.param("{call_sid}", "CA0123456789abcdef0123456789abcdef", id="call-sid"),
        pytest.param("{account_sid}", "AC0123456789abcdef0123456789abcdef", id="account-sid"),
        pytest.param("{caller_name}", "Ada Lovelace", id="caller-name"),
        pytest.param("{forwarded_from}", "+12125550999", id="forwarded-from"),
        pytest.param("{direction}", "inbound", id="direction"),
        pytest.param("{stir_verstat}", "TN-Validation-Passed-A", id="stir"),
        pytest.param("{from_city}, {from_state} {from_country}", "BOSTON, MA US", id="geo"),
        pytest.param("{to_state}", "NY", id="to-geo"),
        pytest.param("[{to_zip}]", "[]", id="missing-geo-is-empty"),
        pytest.param(
            "Call from {from} to {to}", "Call from +16175550123 to +12125550123", id="text"
        ),
        pytest.param("{{from}}", "{from}", id="literal-braces"),
        pytest.param("{{{from}}}", "{+16175550123}", id="braces-around-value"),
        pytest.param('{{"json": true}}', '{"json": true}', id="literal-json"),
        pytest.param("no placeholders", "no placeholders", id="plain"),
        pytest.param("", "", id="empty"),
    ],
)
def test_dynamic_variable_templates(template: str, expected: str) -> None:
    data = client_data(agent(dynamic_variables={"value": template}), CALL)
    assert data == {"dynamic_variables": {"value": expected}}


def test_call_values_are_not_templates_themselves() -> None:
    call = Call(call_sid="CA1", from_number="+16175550123", to_number="+1", caller_name="{to}")
    data = client_data(agent(dynamic_variables={"name": "{caller_name}"}), call)
    assert data["dynamic_variables"] == {"name": "{to}"}


def test_non_string_dynamic_variables_untouched() -> None:
    data = client_data(
        agent(dynamic_variables={"count": 3, "ratio": 0.5, "vip": True, "off": False}), CALL
    )
    variables = data["dynamic_variables"]
    assert variables == {"count": 3, "ratio": 0.5, "vip": True, "off": False}
    assert [type(value) for value in variables.values()] == [int, float, bool, bool]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param({}, {}, id="nothing"),
        pytest.param({"agent_id": "agent_x"}, {}, id="agent-id-is-not-client-data"),
        pytest.param(
            {"first_message": "Hola"},
            {"conversation_config_override": {"agent": {"first_message": "Hola"}}},
            id="first-message",
        ),
        pytest.param(
            {"language": "es"},
            {"conversation_config_override": {"agent": {"language": "es"}}},
            id="language",
        ),
        pytest.param(
            {"prompt": "You are a concierge."},
            {
                "conversation_config_override": {
                    "agent": {"prompt": {"prompt": "You are a concierge."}}
                }
            },
            id="prompt",
        ),
        pytest.param(
            {"voice_id": "voice_123"},
            {"conversation_config_override": {"tts": {"voice_id": "voice_123"}}},
            id="voice-only",
        ),
        pytest.param(
            {
                "first_message": "Hi {from}",
                "language": "en",
                "prompt": "Be brief.",
                "voice_id": "voice_123",
                "dynamic_variables": {"tier": "gold"},
            },
            {
                "dynamic_variables": {"tier": "gold"},
                "conversation_config_override": {
                    "agent": {
                        # Overrides are sent as written; ElevenLabs fills {{var}} itself.
                        "first_message": "Hi {from}",
                        "language": "en",
                        "prompt": {"prompt": "Be brief."},
                    },
                    "tts": {"voice_id": "voice_123"},
                },
            },
            id="everything",
        ),
        pytest.param(
            {"first_message": ""},
            {"conversation_config_override": {"agent": {"first_message": ""}}},
            id="empty-first-message-is-sent",
        ),
    ],
)
def test_client_data_overrides(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    assert client_data(agent(**fields), CALL) == expected


def test_empty_client_data_is_left_out_of_the_body() -> None:
    request = register_request(agent(agent_id="agent_x"), CALL, default_agent_id="")
    assert request is not None
    assert "conversation_initiation_client_data" not in request.to_json()


# --- RegisterCallRequest.to_json ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("direction", "client", "expected_extra"),
    [
        pytest.param("inbound", None, {"direction": "inbound"}, id="inbound"),
        pytest.param("outbound", None, {"direction": "outbound"}, id="outbound"),
        pytest.param(None, None, {}, id="no-direction"),
        pytest.param(None, {}, {}, id="empty-client-data"),
        pytest.param(
            None,
            {"dynamic_variables": {"a": 1}},
            {"conversation_initiation_client_data": {"dynamic_variables": {"a": 1}}},
            id="client-data",
        ),
    ],
)
def test_register_call_request_json(
    direction: Any, client: dict[str, Any] | None, expected_extra: dict[str, Any]
) -> None:
    request = RegisterCallRequest(
        agent_id="agent_x",
        from_number="+16175550123",
        to_number="+12125550123",
        direction=direction,
        client_data=client,
    )
    assert request.to_json() == {
        "agent_id": "agent_x",
        "from_number": "+16175550123",
        "to_number": "+12125550123",
        **expected_extra,
    }


# --- redact -----------------------------------------------------------------------------------


def test_redact_hides_secret_variables() -> None:
    body = {
        "agent_id": "agent_x",
        "conversation_initiation_client_data": {
            "dynamic_variables": {
                "tier": "gold",
                "secret__token": "tok_live_123",
                "secret__pin": 1234,
                "SECRET__loud": "visible: the prefix is case-sensitive",
                "not_secret__x": "shown",
            },
            "conversation_config_override": {"agent": {"language": "es"}},
        },
    }
    original = copy.deepcopy(body)
    redacted = redact(body)
    assert redacted["conversation_initiation_client_data"]["dynamic_variables"] == {
        "tier": "gold",
        "secret__token": "***",
        "secret__pin": "***",
        "SECRET__loud": "visible: the prefix is case-sensitive",
        "not_secret__x": "shown",
    }
    assert redacted["conversation_initiation_client_data"]["conversation_config_override"] == {
        "agent": {"language": "es"}
    }
    assert redacted["agent_id"] == "agent_x"
    assert "tok_live_123" not in repr(redacted)
    assert body == original  # the request that is sent keeps its secrets


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"agent_id": "a"}, id="no-client-data"),
        pytest.param(
            {"agent_id": "a", "conversation_initiation_client_data": {"user_id": "u"}},
            id="no-dynamic-variables",
        ),
    ],
)
def test_redact_without_variables_is_unchanged(body: dict[str, Any]) -> None:
    assert redact(body) == body


def test_redact_a_real_request() -> None:
    action = agent(dynamic_variables={"secret__crm": "{call_sid}", "caller": "{from}"})
    request = register_request(action, CALL, default_agent_id="agent_x")
    assert request is not None
    body = request.to_json()
    shown = redact(body)
    assert shown["conversation_initiation_client_data"]["dynamic_variables"] == {
        "secret__crm": "***",
        "caller": "+16175550123",
    }
    assert body["conversation_initiation_client_data"]["dynamic_variables"]["secret__crm"] == (
        CALL.call_sid
    )
