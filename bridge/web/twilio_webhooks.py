"""The `/twilio/*` voice endpoints: thin wrappers around `InboundBridge`."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import twiml
from bridge.answer.inbound import InboundBridge
from bridge.answer.outbound import OutboundAnswerer
from bridge.call import Answer, Call
from bridge.calllog.log_lines import log_answer, logfmt
from bridge.calllog.records import CallRecords, fallback_event_data, lookup_event_data
from bridge.calllog.writer import CallLogWriter
from bridge.metrics import Metrics
from bridge.web.twilio_requests import Reply, TwilioWebhook, Webhook

logger = logging.getLogger(__name__)

VOICEMAIL_GOODBYE = twiml.say_and_hangup("Thank you. Goodbye.")
EMPTY_RESPONSE = '<?xml version="1.0" encoding="UTF-8"?><Response />'


async def _inbound(webhook: Webhook) -> Reply:
    bridge: InboundBridge = webhook.state.inbound
    call = Call.from_form(webhook.form.multi_items())
    answer = await bridge.never_failing(bridge.answer(call), call, "inbound")
    log_answer(call, answer)
    metrics: Metrics = webhook.state.metrics
    metrics.count_answer("inbound", answer)
    # Batched: a database write per call here halved throughput (benchmarks/README.md).
    writer: CallLogWriter = webhook.state.call_log_writer
    writer.add(call, answer)
    return Reply(answer.twiml)


Step = tuple[str, dict[str, Any], str]  # kind, data, dedupe key


def _recorded(
    webhook: Webhook,
    call: Call,
    answer: Answer | None,
    kind: str,
    *,
    key: str | None = None,
    before: tuple[Step, ...] = (),
    steps: tuple[Step, ...] = (),
) -> Callable[[], Awaitable[None]]:
    """Writes `before`, the answer (unless None) and `steps` as events, in that order,
    after the reply. `key` (what identifies this webhook: a replay has the same) makes
    a replay add nothing."""
    records: CallRecords = webhook.state.call_records
    writer: CallLogWriter = webhook.state.call_log_writer
    # Fixed before the first try, so that a retried write is one event.
    dedupe_key = f"{kind}:{key or secrets.token_hex(16)}"[:255]
    later_step = kind == "dial_complete"
    direction = "inbound" if call.direction == "inbound" else "outbound"

    async def write_steps(these: tuple[Step, ...]) -> None:
        for step_kind, data, step_key in these:
            await records.record_step(
                call.call_sid or None,
                step_kind,
                data,
                dedupe_key=f"{step_kind}:{step_key}"[:255],
                direction=direction,
            )

    async def write() -> None:
        await write_steps(before)
        if answer is not None:
            await records.record_answer(
                call, answer, kind=kind, dedupe_key=dedupe_key, later_step=later_step
            )
        await write_steps(steps)

    async def record() -> None:
        # Stored, or kept and retried until it is (bridge.calllog.writer).
        await writer.store(f"event={kind} call_sid={call.call_sid or '-'}", write)

    return record


async def _dial_complete(webhook: Webhook) -> Reply:
    bridge: InboundBridge = webhook.state.inbound
    call = Call.from_form(webhook.form.multi_items())
    status = webhook.form.get("DialCallStatus")
    answer = await bridge.never_failing(
        bridge.dial_complete(call, step=webhook.query_param("step"), dial_status=status),
        call,
        "dial_complete",
    )
    log_answer(call, answer, event="dial_complete", dial_status=status or "-")
    metrics: Metrics = webhook.state.metrics
    metrics.count_answer("inbound", answer, new_call=False)
    step = webhook.query_param("step") or ""
    key = f"{call.call_sid}:{step}:{webhook.form.get('DialCallSid') or status or ''}"
    dial_result: Step = (
        "dial_result",
        {
            "step": step or None,
            "status": status or None,
            "duration": _int(webhook.form.get("DialCallDuration")),
            "dial_call_sid": webhook.form.get("DialCallSid") or None,
        },
        key,
    )
    return Reply(
        answer.twiml,
        _recorded(
            webhook,
            call,
            answer,
            "dial_complete",
            key=key if call.call_sid else None,
            before=(dial_result,) if call.call_sid else (),
            steps=_fallback(answer, key) if call.call_sid else (),
        ),
    )


def _fallback(answer: Answer, key: str) -> tuple[Step, ...]:
    """A fallback the answer took, as its own step."""
    if answer.outcome != "fallback":
        return ()
    return (("fallback", fallback_event_data(answer), key),)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


async def _voicemail_complete(webhook: Webhook) -> Reply:
    form = webhook.form
    # The recording URL needs the account's credentials to fetch; log only its id.
    logger.info(
        logfmt(
            {
                "event": "voicemail",
                "call_sid": form.get("CallSid", "-"),
                "step": webhook.query_param("step") or "-",
                "recording_sid": form.get("RecordingSid") or None,
                "recording_seconds": form.get("RecordingDuration") or None,
            }
        )
    )
    call = Call.from_form(form.multi_items())
    if not call.call_sid:
        return Reply(VOICEMAIL_GOODBYE)
    step = webhook.query_param("step") or ""
    key = f"{call.call_sid}:{step}:{form.get('RecordingSid') or ''}"
    voicemail: Step = (
        "voicemail",
        {
            "step": step or None,
            "recording_sid": form.get("RecordingSid") or None,
            "duration": _int(form.get("RecordingDuration")),
        },
        key,
    )
    return Reply(VOICEMAIL_GOODBYE, _recorded(webhook, call, None, "voicemail", steps=(voicemail,)))


inbound = TwilioWebhook(_inbound)
dial_complete = TwilioWebhook(_dial_complete)
voicemail_complete = TwilioWebhook(_voicemail_complete)


async def _outbound_answer(webhook: Webhook) -> Reply:
    answerer: OutboundAnswerer = webhook.state.outbound_answerer
    form = webhook.form
    call = Call.from_form(form.multi_items())
    # The request's own `lookup` choice, in the URL Twilio signed (bridge.outbound.dialer).
    lookup = {"1": True, "0": False}.get(webhook.query_param("lookup"))
    answer = await answerer.answer_in_time(
        webhook.query_param("call"),
        call_sid=call.call_sid,
        answered_by=form.get("AnsweredBy"),
        lookup=lookup,
    )
    log_answer(call, answer, event="outbound_answer", answered_by=form.get("AnsweredBy") or "-")
    metrics: Metrics = webhook.state.metrics
    metrics.count_answer("outbound", answer)
    answered_by = form.get("AnsweredBy")
    steps: tuple[Step, ...] = ()
    if answered_by and call.call_sid:
        steps = (("amd", {"answered_by": answered_by}, call.call_sid),)
    before: tuple[Step, ...] = ()
    if answer.lookup is not None and call.call_sid:
        before = (("lookup", lookup_event_data(answer.lookup), call.call_sid),)
    return Reply(
        answer.twiml,
        _recorded(
            webhook,
            call,
            answer,
            "outbound_answer",
            key=call.call_sid or None,
            before=before,
            steps=steps,
        ),
    )


async def _status(webhook: Webhook) -> Reply:
    form = webhook.form
    status = form.get("CallStatus")
    logger.info(
        logfmt(
            {
                "event": "call_status",
                "call_sid": form.get("CallSid", "-"),
                "status": status or "-",
                "sequence": form.get("SequenceNumber") or None,
                "duration": form.get("CallDuration") or None,
                "answered_by": form.get("AnsweredBy") or None,
            }
        )
    )
    answerer: OutboundAnswerer = webhook.state.outbound_answerer
    records: CallRecords = webhook.state.call_records
    writer: CallLogWriter = webhook.state.call_log_writer
    fields = {name: form.get(name) for name in form}
    # Stored before the 200, or kept in memory and retried until stored when the
    # database fails: Twilio does not retry a failed status callback by default. Only
    # a full queue (QueueFull, counted in /metrics) makes it a 500.
    await writer.store(
        f"event=status call_sid={form.get('CallSid', '-')}",
        lambda: records.record_status(fields),
    )
    call_sid = form.get("CallSid")

    async def clean_up() -> None:
        # After the 200: a slow or locked database must not hold Twilio's answer.
        try:
            await answerer.forget(call_sid, status)
        except Exception:
            logger.exception("event=status_cleanup_failed call_sid=%s", call_sid or "-")

    return Reply(EMPTY_RESPONSE, clean_up)


outbound_answer = TwilioWebhook(_outbound_answer)
status_callback = TwilioWebhook(_status)
