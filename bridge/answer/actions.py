"""Turning a routing action into what the bridge sends: TwiML, or a register-call request."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import twiml
from bridge.call import Call
from bridge.elevenlabs.register_request import RegisterCallRequest
from bridge.routing.rules import (
    Action,
    AgentAction,
    ForwardAction,
    HangupAction,
    RejectAction,
    SayAction,
    VoicemailAction,
)
from bridge.secret import is_secret_variable
from bridge.twilio.paths import (
    DIAL_COMPLETE_PATH,
    RECORDING_EVENTS,
    VOICEMAIL_COMPLETE_PATH,
    recording_status_url,
)


def render(action: Action, *, step: str) -> str:
    """TwiML for every action but `agent`, which needs register-call.

    `step` names the action in the routing table so that the follow-up webhooks
    (<Dial action>, <Record action>) know which rule they belong to. The URLs are
    relative: Twilio resolves them against the webhook URL it called.
    """
    if isinstance(action, SayAction):
        return twiml.say_and_hangup(action.message, voice=action.voice, language=action.language)
    if isinstance(action, RejectAction):
        return twiml.reject(action.reason)
    if isinstance(action, HangupAction):
        return twiml.hangup()
    if isinstance(action, VoicemailAction):
        return twiml.voicemail(
            action.message,
            max_length=action.max_length,
            play_beep=action.play_beep,
            action_url=f"{VOICEMAIL_COMPLETE_PATH}?step={quote(step, safe='')}",
            voice=action.voice,
            language=action.language,
            # The audio is fetched, stored and logged once Twilio says it is ready.
            recording_status_url=recording_status_url("voicemail"),
            recording_status_events=RECORDING_EVENTS,
        )
    if isinstance(action, ForwardAction):
        return twiml.forward(
            action.to,
            message=action.message,
            timeout=action.timeout,
            caller_id=action.caller_id,
            action_url=f"{DIAL_COMPLETE_PATH}?step={quote(step, safe='')}",
            voice=action.voice,
            language=action.language,
        )
    raise TypeError(f"{type(action).__name__} has no static TwiML")


def register_request(
    action: AgentAction, call: Call, *, default_agent_id: str
) -> RegisterCallRequest | None:
    """The register-call request for this call, or None when no agent id is known."""
    agent_id = action.agent_id or default_agent_id
    if not agent_id:
        return None
    return RegisterCallRequest(
        agent_id=agent_id,
        from_number=call.from_number,
        to_number=call.to_number,
        direction="inbound",
        client_data=client_data(action, call) or None,
    )


def client_data(action: AgentAction, call: Call) -> dict[str, Any]:
    """`conversation_initiation_client_data`: templated dynamic variables and overrides."""
    values = call.template_values()
    data: dict[str, Any] = {}
    if action.dynamic_variables:
        data["dynamic_variables"] = {
            name: value.format_map(values) if isinstance(value, str) else value
            for name, value in action.dynamic_variables.items()
        }
    agent: dict[str, Any] = {}
    if action.first_message is not None:
        agent["first_message"] = action.first_message
    if action.language is not None:
        agent["language"] = action.language
    if action.prompt is not None:
        agent["prompt"] = {"prompt": action.prompt}
    override: dict[str, Any] = {}
    if agent:
        override["agent"] = agent
    if action.voice_id is not None:
        override["tts"] = {"voice_id": action.voice_id}
    if override:
        data["conversation_config_override"] = override
    return data


def redact(body: dict[str, Any]) -> dict[str, Any]:
    """A copy of a register-call body fit to print: `secret__` variables hidden."""
    data = body.get("conversation_initiation_client_data")
    if not isinstance(data, dict) or not isinstance(data.get("dynamic_variables"), dict):
        return body
    variables = {
        name: "***" if is_secret_variable(name) else value
        for name, value in data["dynamic_variables"].items()
    }
    return {
        **body,
        "conversation_initiation_client_data": {**data, "dynamic_variables": variables},
    }
