"""The `/twilio/*` voice endpoints: thin wrappers around `InboundBridge`."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable

import twiml
from bridge.answer.inbound import InboundBridge
from bridge.answer.outbound import OutboundAnswerer
from bridge.call import Answer, Call
from bridge.calllog.log_lines import log_answer, logfmt
from bridge.calllog.records import CallRecords
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


def _recorded(
    webhook: Webhook, call: Call, answer: Answer, kind: str
) -> Callable[[], Awaitable[None]]:
    records: CallRecords = webhook.state.call_records
    writer: CallLogWriter = webhook.state.call_log_writer
    # Fixed before the first try, so that a retried write is one event.
    dedupe_key = f"{kind}:{secrets.token_hex(16)}"

    async def write() -> None:
        await records.record_answer(call, answer, kind=kind, dedupe_key=dedupe_key)

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
    return Reply(answer.twiml, _recorded(webhook, call, answer, "dial_complete"))


async def _voicemail_complete(webhook: Webhook) -> str:
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
    return VOICEMAIL_GOODBYE


inbound = TwilioWebhook(_inbound)
dial_complete = TwilioWebhook(_dial_complete)
voicemail_complete = TwilioWebhook(_voicemail_complete)


async def _outbound_answer(webhook: Webhook) -> Reply:
    answerer: OutboundAnswerer = webhook.state.outbound_answerer
    form = webhook.form
    call = Call.from_form(form.multi_items())
    answer = await answerer.answer_in_time(
        webhook.query_param("call"), call_sid=call.call_sid, answered_by=form.get("AnsweredBy")
    )
    log_answer(call, answer, event="outbound_answer", answered_by=form.get("AnsweredBy") or "-")
    metrics: Metrics = webhook.state.metrics
    metrics.count_answer("outbound", answer)
    return Reply(answer.twiml, _recorded(webhook, call, answer, "outbound_answer"))


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
