"""`POST /twilio/recording-status`: Twilio says a recording (a voicemail, a recorded
call) is complete, absent or failed. Signed like every /twilio/* route.

The recording is written (an event on the call, a `recordings` row) before the
answer; its audio is fetched after it (bridge.recordings.fetcher), and retried from
the database when that fails. Nothing in the callback but the checked recording SID
is used to reach Twilio: its `RecordingUrl` is ignored.
"""

from __future__ import annotations

import logging

from bridge.calllog.log_lines import logfmt
from bridge.calllog.writer import CallLogWriter
from bridge.recordings.callback import NotARecording, read_callback
from bridge.recordings.fetcher import RecordingFetcher
from bridge.web.twilio_requests import Reply, TwilioWebhook, Webhook

logger = logging.getLogger(__name__)

EMPTY_RESPONSE = '<?xml version="1.0" encoding="UTF-8"?><Response />'


async def _recording_status(webhook: Webhook) -> Reply:
    form = webhook.form
    kind = webhook.query_param("kind")
    logger.info(
        logfmt(
            {
                "event": "recording_status",
                "kind": kind or "-",
                "call_sid": form.get("CallSid", "-"),
                "recording_sid": form.get("RecordingSid") or "-",
                "status": form.get("RecordingStatus") or "-",
                "duration": form.get("RecordingDuration") or None,
            }
        )
    )
    try:
        callback = read_callback({name: form.get(name) for name in form}, kind)
    except NotARecording:
        return Reply(EMPTY_RESPONSE)  # nothing to keep (an in-progress status, say)
    fetcher: RecordingFetcher = webhook.state.recording_fetcher
    writer: CallLogWriter = webhook.state.call_log_writer
    # Stored before the answer (or kept and retried, as status callbacks are): Twilio
    # does not send it again.
    label = f"event=recording call_sid={callback.call_sid or '-'}"
    has_audio = await writer.store(
        f"{label} recording_sid={callback.recording_sid}",
        lambda: fetcher.record_callback(callback),
    )
    if not has_audio:
        return Reply(EMPTY_RESPONSE)  # no audio, or the row is not written yet (the sweep)

    async def fetch() -> None:
        await fetcher.fetch(callback.recording_sid)

    return Reply(EMPTY_RESPONSE, fetch)


recording_status = TwilioWebhook(_recording_status)
