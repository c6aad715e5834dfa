"""Moving a live call to a person (`POST /calls/{call_sid}/transfer`).

The call's running TwiML (the agent's stream) is replaced with a Dial: the caller
hears the message, then the destination rings. A destination is an E.164 number,
which must pass the toll-fraud guard (bridge.outbound.destinations), or a `sip:`
URI, as in a `forward` rule.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

import twiml
from bridge import phone
from bridge.answer.inbound import TRANSFER_STEP
from bridge.calllog.records import CallRecords
from bridge.calllog.writer import CallLogWriter, QueueFull
from bridge.outbound.destinations import destination_problem
from bridge.outbound.placement import log
from bridge.settings import Settings
from bridge.twilio.paths import DIAL_COMPLETE_PATH
from bridge.twilio.rest import CALL_SID, CALL_SID_PATTERN, TwilioError, TwilioREST

MAX_TWIML_CHARS = 4000  # Twilio's limit for inline TwiML
TRANSFER_NO_ANSWER = "Sorry, nobody is available to take your call right now. Goodbye."
NO_TWILIO = "Transfers need TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN to be set."


class TransferRequest(BaseModel):
    """The body of a transfer; `call_sid` only on `POST /calls/transfer`."""

    model_config = ConfigDict(extra="forbid")

    to: phone.DialTarget
    message: str | None = Field(default=None, max_length=1000)
    call_sid: str | None = Field(default=None, pattern=CALL_SID_PATTERN)


@dataclass(frozen=True)
class Transferred:
    """What to answer with: a status and a JSON body, or `problems` (422) with the
    fields to fix."""

    status: int
    body: dict[str, Any]
    problems: tuple[dict[str, str], ...] = ()


def is_call_sid(value: str) -> bool:
    return bool(CALL_SID.fullmatch(value))


RequestedBy = Literal["api", "agent_tool"]


@dataclass(frozen=True)
class TransferLog:
    """Where a transfer is recorded as an event on its call."""

    records: CallRecords
    writer: CallLogWriter


async def transfer(
    call_sid: str,
    request: TransferRequest,
    *,
    settings: Settings,
    twilio: TwilioREST | None,
    requested_by: RequestedBy = "api",
    call_log: TransferLog | None = None,
) -> Transferred:
    step: dict[str, Any] = {
        "requested_by": requested_by,
        "to": request.to,
        "message": request.message,
    }
    if not phone.is_sip_uri(request.to):
        problem = destination_problem(request.to, settings.allowed_countries())
        if problem:
            log("transfer_refused", call_sid=call_sid, to=request.to, reason=problem)
            await _record(call_log, call_sid, {**step, "error": problem})
            return Transferred(403, {"error": problem, "transferred": False})
    if twilio is None:
        return Transferred(503, {"error": NO_TWILIO})
    try:
        document = transfer_twiml(request, settings)
    except ValueError as exc:
        return _problem("message", str(exc))
    if len(document) > MAX_TWIML_CHARS:
        return _problem("message", "too long once written as TwiML (Twilio's limit)")
    try:
        await twilio.redirect_call(call_sid, twiml=document)
    except TwilioError as exc:
        # Refused (4xx) or never sent: the call goes on as it was. Anything else (a
        # timeout, a connection lost once the request left, a 5xx) may have moved it.
        surely_not = exc.not_sent or (exc.status is not None and 400 <= exc.status < 500)
        log("transfer_failed", call_sid=call_sid, to=request.to, reason=str(exc))
        await _record(
            call_log,
            call_sid,
            {
                **step,
                "twilio_status": exc.status,
                "error": str(exc),
                "transferred": False if surely_not else "unknown",
            },
        )
        return Transferred(
            404 if exc.status == 404 else 502,
            {
                "error": f"Twilio API error ({exc.status}): {exc.message}",
                "transferred": False if surely_not else "unknown",
                "upstream_status": exc.status,
            },
        )
    log("call_transferred", call_sid=call_sid, to=request.to)
    await _record(call_log, call_sid, {**step, "twilio_status": 200, "transferred": True})
    return Transferred(
        200,
        {
            "transferred": True,
            "call_sid": call_sid,
            "to": request.to,
            # Read by the agent when this endpoint is its server tool.
            "message": f"Transferring the caller to {request.to}.",
        },
    )


def transfer_twiml(request: TransferRequest, settings: Settings) -> str:
    """Ends the agent's stream; the caller hears the message, then the phone rings.

    With PUBLIC_BASE_URL the Dial reports back (an absolute URL: the TwiML is inline,
    so there is no document to be relative to) and only a caller nobody answered
    hears the goodbye; without it, the goodbye follows the Dial either way.
    """
    base = settings.public_base_url
    return twiml.forward(
        [request.to],
        message=request.message,
        timeout=30,
        caller_id=settings.twilio_phone_number or None,
        action_url=f"{base}{DIAL_COMPLETE_PATH}?step={TRANSFER_STEP}" if base else None,
        after_message=None if base else TRANSFER_NO_ANSWER,
    )


async def _record(call_log: TransferLog | None, call_sid: str, data: dict[str, Any]) -> None:
    """The transfer as a `transfer` event on the call: stored, or kept and retried
    (bridge.calllog.writer); a full queue is logged, never the transfer's answer."""
    if call_log is None:
        return
    # Fixed before the first try, so that a retried write is one event.
    dedupe_key = f"transfer:{call_sid}:{secrets.token_hex(16)}"
    records = call_log.records
    data = {key: value for key, value in data.items() if value is not None}

    async def write() -> None:
        await records.record_step(call_sid, "transfer", data, dedupe_key=dedupe_key)

    try:
        await call_log.writer.store(f"event=transfer call_sid={call_sid}", write)
    except QueueFull:
        log("transfer_not_recorded", call_sid=call_sid, to=data.get("to"))


def _problem(field: str, problem: str) -> Transferred:
    return Transferred(422, {}, problems=({"field": field, "problem": problem},))
