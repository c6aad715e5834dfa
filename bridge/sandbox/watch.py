"""What the stand-ins receive, shown as it arrives, and what it sets going: a created
call rings the virtual phone; a started conversation ends in a post-call webhook."""

from __future__ import annotations

import json
import re
from typing import Any

import twiml
from bridge.sandbox.conversation import Conversation, PostCallWebhooks
from bridge.sandbox.report import Reporter, variables
from bridge.sandbox.tap import Exchange
from bridge.sandbox.virtual_phone import VirtualPhone
from bridge.twilio.form import Form

REGISTER_CALL = "/v1/convai/twilio/register-call"
OUTBOUND_CALLS = {
    "/v1/convai/twilio/outbound-call": "twilio",
    "/v1/convai/sip-trunk/outbound-call": "sip",
}
_CALL_PATH = re.compile(r"/Calls/CA[0-9a-f]+\.json$")
_EXCERPT = 200


class ElevenLabsWatch:
    def __init__(self, report: Reporter, webhooks: PostCallWebhooks | None) -> None:
        self.report = report
        self.webhooks = webhooks

    def arrived(self, exchange: Exchange) -> None:
        body = _json(exchange.body)
        if exchange.path == REGISTER_CALL and body is not None:
            self.report(
                "elevenlabs",
                f"register-call agent={body.get('agent_id')} {body.get('from_number')} -> "
                f"{body.get('to_number')} direction={body.get('direction', '(none)')}"
                + _client_data(body),
            )
        elif exchange.path in OUTBOUND_CALLS and body is not None:
            self.report(
                "elevenlabs",
                f"outbound-call ({OUTBOUND_CALLS[exchange.path]}) agent={body.get('agent_id')} "
                f"to {body.get('to_number')} from {body.get('agent_phone_number_id')}"
                + _client_data(body),
            )
        else:
            self.report("elevenlabs", f"{exchange.method} {exchange.path}")

    def answered(self, exchange: Exchange) -> None:
        if exchange.status != 200:
            self.report("elevenlabs", f"-> {exchange.status} {_excerpt(exchange.response)}")
            return
        body = _json(exchange.body) or {}
        if exchange.path == REGISTER_CALL:
            try:
                conversation_id = twiml.check_twiml(exchange.response).conversation_id
            except twiml.InvalidTwiML:
                conversation_id = None
            self.report("elevenlabs", f"-> TwiML for conversation {conversation_id}")
            inbound = body.get("direction", "inbound") == "inbound"
            caller, called = str(body.get("from_number")), str(body.get("to_number"))
            self._started(
                conversation_id,
                body,
                direction="inbound" if inbound else "outbound",
                agent_number=called if inbound else caller,
                external_number=caller if inbound else called,
                call_sid=None,
            )
        elif exchange.path in OUTBOUND_CALLS:
            answer = _json(exchange.response) or {}
            conversation_id = answer.get("conversation_id")
            self.report("elevenlabs", f"-> call placed, conversation {conversation_id}")
            self._started(
                conversation_id,
                body,
                direction="outbound",
                agent_number=str(body.get("agent_phone_number_id")),
                external_number=str(body.get("to_number")),
                call_sid=answer.get("callSid") or answer.get("sip_call_id"),
            )

    def _started(
        self,
        conversation_id: object,
        body: dict[str, Any],
        *,
        direction: str,
        agent_number: str,
        external_number: str,
        call_sid: object,
    ) -> None:
        if self.webhooks is None or not isinstance(conversation_id, str):
            return
        client_data = body.get("conversation_initiation_client_data")
        self.webhooks.conversation_started(
            Conversation(
                conversation_id=conversation_id,
                agent_id=str(body.get("agent_id")),
                direction=direction,
                agent_number=agent_number,
                external_number=external_number,
                client_data=client_data if isinstance(client_data, dict) else {},
                call_sid=call_sid if isinstance(call_sid, str) else None,
            )
        )


class TwilioWatch:
    def __init__(self, report: Reporter, phone: VirtualPhone) -> None:
        self.report = report
        self.phone = phone

    def arrived(self, exchange: Exchange) -> None:
        form = Form.parse(exchange.body).grouped()

        def first(name: str) -> str:
            return form.get(name, [""])[0]

        if exchange.path.endswith("/Calls.json"):
            events = " ".join(form.get("StatusCallbackEvent", [])) or "completed"
            extras = [
                f"{name}={first(name)}"
                for name in ("MachineDetection", "Timeout", "Record")
                if first(name)
            ]
            self.report(
                "twilio",
                f"create call {first('From')} -> {first('To')}\n"
                f"answer URL {first('Url') or '(inline TwiML)'}\n"
                f"status callbacks ({events}) to {first('StatusCallback') or '(none)'}"
                + (f"\n{' '.join(extras)}" if extras else ""),
            )
        elif _CALL_PATH.search(exchange.path):
            sid = exchange.path.rsplit("/", 1)[-1].removesuffix(".json")
            changes = " ".join(f"{name}={values[0]}" for name, values in form.items())
            self.report("twilio", f"update call {sid}: {changes}")
        else:
            self.report("twilio", f"{exchange.method} {exchange.path}")

    def answered(self, exchange: Exchange) -> None:
        if exchange.path.endswith(".mp3") and exchange.status == 200:
            self.report("twilio", f"-> 200 audio, {len(exchange.response)} bytes")
            return
        answer = _json(exchange.response) or {}
        if exchange.status >= 400:
            self.report("twilio", f"-> {exchange.status} {answer.get('message', '')}".rstrip())
            return
        sid = answer.get("sid")
        self.report("twilio", f"-> {exchange.status} {sid} {answer.get('status')}")
        if exchange.status == 201 and isinstance(sid, str):
            self.phone.call_created(sid)


def _client_data(body: dict[str, Any]) -> str:
    data = body.get("conversation_initiation_client_data")
    if not isinstance(data, dict):
        return ""
    shown = ""
    dynamic = data.get("dynamic_variables")
    if isinstance(dynamic, dict) and dynamic:
        shown += f"\nvariables: {variables(dynamic)}"
    override = data.get("conversation_config_override")
    agent = override.get("agent") if isinstance(override, dict) else None
    if isinstance(agent, dict):
        for name in ("language", "first_message"):
            if agent.get(name):
                shown += f"\n{name}: {agent[name]!r}"
    return shown


def _json(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _excerpt(raw: bytes) -> str:
    text = " ".join(raw.decode("utf-8", "replace").split())
    return text if len(text) <= _EXCERPT else text[:_EXCERPT] + "..."
