"""The `/twilio/*` voice endpoints: thin wrappers around `InboundBridge`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

import twiml
from bridge.calllog import log_answer, logfmt
from bridge.calls import Call
from bridge.inbound import Answer, InboundBridge
from bridge.settings import Settings
from bridge.twilio_requests import Rejected, verified_form

logger = logging.getLogger(__name__)

# Headroom past the upstream deadline before the endpoint gives up on its own work.
_ENDPOINT_SLACK = 0.5


def _xml(text: str) -> Response:
    return Response(text, media_type="text/xml")


async def inbound(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    bridge: InboundBridge = request.app.state.inbound
    try:
        form = await verified_form(request, settings)
    except Rejected as rejected:
        return rejected.response
    call = Call.from_form(form.multi_items())
    answer = await _guarded(bridge.answer(call), call, bridge, "inbound")
    log_answer(call, answer)
    return _xml(answer.twiml)


async def dial_complete(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    bridge: InboundBridge = request.app.state.inbound
    try:
        form = await verified_form(request, settings)
    except Rejected as rejected:
        return rejected.response
    call = Call.from_form(form.multi_items())
    step = request.query_params.get("step", "")
    status = form.get("DialCallStatus", "")
    answer = await _guarded(
        bridge.dial_complete(call, step=step, dial_status=status), call, bridge, "dial_complete"
    )
    log_answer(call, answer, event=f"dial_complete dial_status={status or '-'}")
    return _xml(answer.twiml)


async def voicemail_complete(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    try:
        form = await verified_form(request, settings)
    except Rejected as rejected:
        return rejected.response
    # The recording URL needs the account's credentials to fetch; log only its id.
    logger.info(
        logfmt(
            {
                "event": "voicemail",
                "call_sid": form.get("CallSid", "-"),
                "step": request.query_params.get("step", "-"),
                "recording_sid": form.get("RecordingSid") or None,
                "recording_seconds": form.get("RecordingDuration") or None,
            }
        )
    )
    return _xml(twiml.say_and_hangup("Thank you. Goodbye."))


async def _guarded(
    work: Coroutine[Any, Any, Answer], call: Call, bridge: InboundBridge, what: str
) -> Answer:
    """Never let a bug or a stall reach the caller: the global fallback is always there."""
    try:
        async with asyncio.timeout(bridge.deadline + _ENDPOINT_SLACK):
            answer: Answer = await work
            return answer
    except TimeoutError:
        logger.warning("event=%s_deadline call_sid=%s", what, call.call_sid or "-")
        return bridge.last_resort("deadline")
    except Exception:
        logger.exception("event=%s_failed call_sid=%s", what, call.call_sid or "-")
        return bridge.last_resort("internal_error")
