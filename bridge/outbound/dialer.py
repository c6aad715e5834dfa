"""Placing outbound calls: the request, the three ways to dial, and what comes back.

- `twilio`: Twilio's REST API creates the call with an answer URL on the bridge;
  the conversation is registered only when someone (or something) answers.
- `elevenlabs`: ElevenLabs' native Twilio outbound call (ElevenLabs API reference:
  POST /v1/convai/twilio/outbound-call).
- `sip`: ElevenLabs' SIP-trunk outbound call (ElevenLabs API reference:
  POST /v1/convai/sip-trunk/outbound-call).
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bridge import phone
from bridge.elevenlabs.api import ElevenLabsAPI, ElevenLabsError
from bridge.elevenlabs.client_data import ClientData, DynamicValue
from bridge.outbound.pending import PendingCalls
from bridge.outbound.sealing import Sealer
from bridge.settings import Settings
from bridge.storage.database import Database
from bridge.twilio.paths import (
    OUTBOUND_ANSWER_PATH,
    RECORDING_EVENTS,
    STATUS_PATH,
    recording_status_url,
)
from bridge.twilio.rest import TwilioError, TwilioREST

logger = logging.getLogger("bridge.outbound")

Mode = Literal["twilio", "elevenlabs", "sip"]
NOT_STORED = "The call could not be stored before dialling; nothing was dialled."

STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]
# Control characters (XML cannot carry most of them, so the callee would get the
# generic failure), lone surrogates and non-characters; tab and newlines are fine.
_NOT_SPEAKABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


# The answer URL's parameter for a request's own `lookup` choice.
LOOKUP_QUERY = "lookup"


class OutboundRequest(BaseModel):
    """The body of `POST /calls`."""

    model_config = ConfigDict(extra="forbid")

    to: phone.E164Number
    agent_id: str | None = Field(default=None, min_length=1)
    mode: Mode | None = None
    dynamic_variables: dict[str, DynamicValue] | None = None
    conversation_initiation_client_data: ClientData | None = None
    machine_detection: bool = False
    on_machine: Literal["hangup", "message", "agent"] = "hangup"
    machine_message: str | None = Field(default=None, min_length=1, max_length=2000)
    ring_timeout: int = Field(default=30, ge=5, le=600)
    record: bool = False
    telephony_call_config: dict[str, Any] | None = None
    # Ask the lookup hook (LOOKUP_URL) when the call is answered; None: OUTBOUND_LOOKUP.
    lookup: bool | None = None

    @field_validator("machine_message")
    @classmethod
    def _speakable(cls, value: str | None) -> str | None:
        if value is not None:
            if not value.strip():
                raise ValueError("must not be blank")
            if _NOT_SPEAKABLE.search(value):
                raise ValueError("must not contain control characters")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> OutboundRequest:
        if self.on_machine == "message" and not self.machine_message:
            raise ValueError("machine_message is required when on_machine is 'message'")
        return self

    def client_data(self) -> dict[str, Any] | None:
        """The client data with top-level `dynamic_variables` merged in (they win)."""
        data = (
            self.conversation_initiation_client_data.to_json()
            if self.conversation_initiation_client_data
            else {}
        )
        if self.dynamic_variables:
            data["dynamic_variables"] = {
                **data.get("dynamic_variables", {}),
                **self.dynamic_variables,
            }
        return data or None


def _lookup_query(request: OutboundRequest) -> str:
    """The request's `lookup` choice, carried in the answer URL (which Twilio signs)."""
    if request.lookup is None:
        return ""
    return f"&{LOOKUP_QUERY}={'1' if request.lookup else '0'}"


class NotPlaced(Exception):
    """The call was not placed. `status` is the HTTP status for the API client.

    `definite` is False when the upstream may have placed it after all (a timeout
    once the request was sent): then an Idempotency-Key must not be released.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        upstream_status: int | None = None,
        definite: bool = True,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.upstream_status = upstream_status
        self.definite = definite

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message, "placed": False}
        if self.upstream_status is not None:
            body["upstream_status"] = self.upstream_status
        if not self.definite:
            body["placed"] = "unknown"
        return body


class Dialer:
    def __init__(
        self,
        *,
        settings: Settings,
        database: Database,
        elevenlabs: ElevenLabsAPI | None,
        twilio: TwilioREST | None,
        sealer: Sealer | None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.database = database
        self.elevenlabs = elevenlabs
        self.twilio = twilio
        self.sealer = sealer
        self.now = now

    def default_mode(self) -> Mode:
        return "twilio" if self.settings.twilio_configured else "elevenlabs"

    async def place(self, request: OutboundRequest) -> dict[str, Any]:
        """The 201 body for a placed call, or NotPlaced."""
        mode = request.mode or self.default_mode()
        agent_id = request.agent_id or self.settings.elevenlabs_agent_id
        if not agent_id:
            raise NotPlaced(
                422,
                "agent_id is required: the request names none and ELEVENLABS_AGENT_ID is not set",
            )
        if request.lookup and mode != "twilio":
            raise NotPlaced(
                422, "lookup needs mode 'twilio': the bridge asks it when the call is answered"
            )
        if mode == "twilio":
            result = await self._via_twilio(request, agent_id)
        else:
            result = await self._via_elevenlabs(request, agent_id, mode)
        return {"mode": mode, "to": request.to, "agent_id": agent_id, **result}

    async def _via_twilio(self, request: OutboundRequest, agent_id: str) -> dict[str, Any]:
        missing = [
            name
            for name, present in (
                ("TWILIO_ACCOUNT_SID", self.settings.twilio_account_sid),
                ("TWILIO_AUTH_TOKEN", self.settings.twilio_auth_token),
                ("TWILIO_PHONE_NUMBER", self.settings.twilio_phone_number),
                ("PUBLIC_BASE_URL", self.settings.public_base_url),
                ("ELEVENLABS_API_KEY", self.settings.elevenlabs_api_key),
            )
            if not present
        ]
        if missing or self.twilio is None or self.sealer is None:
            raise NotPlaced(503, f"mode 'twilio' needs {', '.join(missing) or 'Twilio'} to be set")
        pending_id = secrets.token_hex(16)
        pending = PendingCalls(self.database)
        try:
            await self._store_pending(pending, pending_id, request, agent_id)
        except Exception:
            logger.exception("event=pending_call_not_stored")
            raise NotPlaced(503, NOT_STORED) from None
        base = self.settings.public_base_url
        try:
            created = await self.twilio.create_call(
                to=request.to,
                from_=self.settings.twilio_phone_number,
                url=f"{base}{OUTBOUND_ANSWER_PATH}?call={quote(pending_id)}{_lookup_query(request)}",
                status_callback=f"{base}{STATUS_PATH}",
                status_callback_event=STATUS_EVENTS,
                machine_detection=_machine_detection(request),
                timeout=request.ring_timeout,
                record=request.record,
                # A recorded call's audio is fetched into the audio store, as a voicemail's.
                recording_status_callback=recording_status_url("recording", base=base)
                if request.record
                else None,
                recording_status_callback_event=list(RECORDING_EVENTS) if request.record else None,
            )
        except TwilioError as exc:
            definite = _surely_not_placed(exc.status, exc.not_sent)
            if definite:
                # Kept otherwise: if Twilio did create the call, its answer still works.
                await pending.drop(pending_id)
            raise NotPlaced(502, str(exc), upstream_status=exc.status, definite=definite) from None
        # A failure here (the database) leaves the outcome to the caller: "unknown".
        await pending.set_call_sid(pending_id, created.sid)
        return {"call_sid": created.sid, "conversation_id": None, "status": created.status}

    async def _store_pending(
        self, pending: PendingCalls, pending_id: str, request: OutboundRequest, agent_id: str
    ) -> None:
        assert self.sealer is not None
        await pending.add(
            id=pending_id,
            agent_id=agent_id,
            from_number=self.settings.twilio_phone_number,
            to_number=request.to,
            client_data=self.sealer.seal(request.client_data()),
            on_machine=request.on_machine if request.machine_detection else "agent",
            machine_message=request.machine_message,
            created_at=self.now(),
        )

    async def _via_elevenlabs(
        self, request: OutboundRequest, agent_id: str, mode: Mode
    ) -> dict[str, Any]:
        phone_number_id = self.settings.elevenlabs_agent_phone_number_id
        missing = [
            name
            for name, present in (
                ("ELEVENLABS_API_KEY", self.settings.elevenlabs_api_key),
                ("ELEVENLABS_AGENT_PHONE_NUMBER_ID", phone_number_id),
            )
            if not present
        ]
        if missing or self.elevenlabs is None:
            raise NotPlaced(503, f"mode '{mode}' needs {', '.join(missing)} to be set")
        try:
            if mode == "sip":
                raw = await self.elevenlabs.sip_outbound_call(
                    agent_id=agent_id,
                    agent_phone_number_id=phone_number_id,
                    to_number=request.to,
                    client_data=request.client_data(),
                    telephony_call_config=request.telephony_call_config,
                )
            else:
                raw = await self.elevenlabs.twilio_outbound_call(
                    agent_id=agent_id,
                    agent_phone_number_id=phone_number_id,
                    to_number=request.to,
                    client_data=request.client_data(),
                )
        except ElevenLabsError as exc:
            raise NotPlaced(
                502,
                str(exc),
                upstream_status=exc.status,
                definite=_surely_not_placed(exc.status, exc.not_sent),
            ) from None
        if raw.get("success") is False:
            raise NotPlaced(502, f"ElevenLabs did not place the call: {raw.get('message', '')}")
        result: dict[str, Any] = {
            "call_sid": raw.get("callSid") or raw.get("call_sid"),
            "conversation_id": raw.get("conversation_id"),
            "status": "initiated",
        }
        if mode == "sip":
            result["sip_call_id"] = raw.get("sip_call_id")
        return result


def _surely_not_placed(status: int | None, not_sent: bool) -> bool:
    """Only a request that never left, or that the API refused (4xx), placed nothing.

    A 5xx, a timeout or a dropped connection may come after the call was created;
    those keep the Idempotency-Key so a retry cannot ring the callee twice.
    """
    return not_sent or (status is not None and 400 <= status < 500)


def _machine_detection(request: OutboundRequest) -> str | None:
    if not request.machine_detection:
        return None
    # To leave a message on a machine, wait for the greeting's end (the beep).
    return "DetectMessageEnd" if request.on_machine == "message" else "Enable"
