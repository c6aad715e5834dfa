"""The stand-in ElevenLabs' side of a conversation: once it is over, the post-call
transcription webhook, signed like ElevenLabs signs it, so the call log gets a
transcript and a summary. Nothing is said on the line: the words are made up."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from bridge.elevenlabs import webhook_signature
from bridge.sandbox.background import Background
from bridge.sandbox.report import Reporter

WEBHOOK_PATH = "/elevenlabs/webhook"
GREETING = "Hello! How can I help you today?"


@dataclass(frozen=True)
class Conversation:
    conversation_id: str
    agent_id: str
    direction: str
    agent_number: str
    external_number: str
    client_data: dict[str, Any] = field(default_factory=dict)
    call_sid: str | None = None


class PostCallWebhooks:
    def __init__(
        self,
        *,
        bridge_url: str,
        secret: str,
        client: httpx.AsyncClient,
        report: Reporter,
        background: Background,
        after: float,
    ) -> None:
        self.url = bridge_url + WEBHOOK_PATH
        self.secret = secret
        self.client = client
        self.report = report
        self.background = background
        self.after = after

    def conversation_started(self, conversation: Conversation) -> None:
        self.background.spawn(self._finish(conversation))

    async def _finish(self, conversation: Conversation) -> None:
        started = time.time()
        await asyncio.sleep(self.after)
        raw = json.dumps(payload(conversation, started, self.after)).encode()
        header = webhook_signature.sign(raw, self.secret, int(time.time()))
        try:
            response = await self.client.post(
                self.url,
                content=raw,
                headers={webhook_signature.HEADER: header, "content-type": "application/json"},
            )
        except httpx.HTTPError as exc:
            self.report("elevenlabs", f"post-call webhook not delivered: {exc!r}")
            return
        self.report(
            "elevenlabs",
            f"post_call_transcription for {conversation.conversation_id} "
            f"-> bridge {response.status_code}",
        )


def payload(conversation: Conversation, started: float, seconds: float) -> dict[str, Any]:
    """A `post_call_transcription` webhook body in ElevenLabs' shape."""
    phone_call: dict[str, Any] = {
        "direction": conversation.direction,
        "agent_number": conversation.agent_number,
        "external_number": conversation.external_number,
        "type": "twilio",
    }
    if conversation.call_sid:
        phone_call["call_sid"] = conversation.call_sid
    return {
        "type": "post_call_transcription",
        "event_timestamp": int(time.time()),
        "data": {
            "agent_id": conversation.agent_id,
            "conversation_id": conversation.conversation_id,
            "status": "done",
            "transcript": _transcript(conversation, seconds),
            "metadata": {
                "start_time_unix_secs": int(started),
                "call_duration_secs": max(1, round(seconds)),
                "cost": 0,
                "termination_reason": "sandbox: the simulated conversation ended",
                "phone_call": phone_call,
            },
            "analysis": {
                "call_successful": "success",
                "transcript_summary": (
                    f"A simulated {conversation.direction} conversation with "
                    f"{conversation.agent_id} in the callbridge sandbox."
                ),
                "data_collection_results": {},
                "evaluation_criteria_results": {},
            },
            # As ElevenLabs sends it; the bridge drops secret__ variables before storing.
            "conversation_initiation_client_data": conversation.client_data,
        },
    }


def _transcript(conversation: Conversation, seconds: float) -> list[dict[str, Any]]:
    override = conversation.client_data.get("conversation_config_override") or {}
    agent = override.get("agent") if isinstance(override, dict) else None
    first = agent.get("first_message") if isinstance(agent, dict) else None
    lines = [
        ("agent", first if isinstance(first, str) and first else GREETING),
        ("user", "Hi! I am only trying out the sandbox."),
        ("agent", "Then it works: this conversation is simulated and stayed on your computer."),
    ]
    step = seconds / len(lines)
    return [
        {"role": role, "message": message, "time_in_call_secs": round(i * step)}
        for i, (role, message) in enumerate(lines)
    ]
