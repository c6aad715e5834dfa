"""`POST /elevenlabs/webhook`: ElevenLabs' post-call webhooks, stored before they are
acknowledged.

Each webhook must carry a valid `ElevenLabs-Signature` (bridge.elevenlabs.webhook_signature)
and come from an allowed address (ELEVENLABS_WEBHOOK_ALLOWED_IPS); anything else gets
401 (403) and nothing is stored. The header's presence, shape and timestamp are
checked before the body is read, and the body goes into the HMAC as it arrives.
A body nesting lists or objects deeper than `MAX_NESTING` levels gets 400.

What storing means, replays and audio included, is bridge.calllog.post_call's (the
audio goes into the app's audio store; when that fails the event is still stored, with
the failure, and answered as received: ElevenLabs would not send it again);
a stored webhook is answered `{"received": true, "duplicate": <was it a replay>}`.
When the database fails or is slow, the event is kept in memory and retried until
stored (bridge.calllog.writer) and answered `{"received": true, "duplicate": false}`
at once; only when that queue is full is the answer 503.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bridge.calllog import post_call
from bridge.calllog.records import CallRecords
from bridge.calllog.writer import CallLogWriter, QueueFull
from bridge.elevenlabs.webhook_signature import (
    HEADER,
    BodyHasher,
    SignedHeader,
    Verdict,
    check_header,
    secrets_from,
)
from bridge.settings import Settings
from bridge.web import bodies
from bridge.web.bodies import BadBody

MAX_BODY_BYTES = 20 * 1024 * 1024  # audio webhooks carry a base64 MP3
# ElevenLabs' payloads nest a few levels; hundreds only exhaust stacks.
MAX_NESTING = 100
TOO_DEEP = f"Request body nests deeper than {MAX_NESTING} levels."
QUEUE_FULL = "The call log cannot take this event now; try again later."
NOT_CONFIGURED = "ELEVENLABS_WEBHOOK_SECRET is not set"
SIGNATURE_ERRORS = {
    "missing_header": f"Missing {HEADER} header.",
    "malformed_header": f"Malformed {HEADER} header.",
    "mismatch": "Signature does not match.",
    "stale_timestamp": "Signature timestamp is too old.",
    "future_timestamp": "Signature timestamp is in the future.",
}


async def receive(request: Request) -> JSONResponse:
    settings: Settings = request.app.state.settings
    secrets = secrets_from(settings.elevenlabs_webhook_secret)
    if not secrets:
        return JSONResponse({"error": NOT_CONFIGURED}, status_code=503)
    if not settings.webhook_source_allowed(request.client.host if request.client else None):
        return JSONResponse(
            {"error": "This address may not post webhooks (ELEVENLABS_WEBHOOK_ALLOWED_IPS)."},
            status_code=403,
        )
    signed = check_header(request.headers.get(HEADER))
    if isinstance(signed, Verdict):
        return _refused(request, signed)
    hasher = BodyHasher(secrets, signed.stamp)
    try:
        raw = await bodies.read_feeding(request, MAX_BODY_BYTES, hasher.update)
        verdict = hasher.verdict(signed)
        if not verdict.ok:
            return _refused(request, verdict)
        payload = bodies.parse_json_object(raw)
    except BadBody as bad:
        return JSONResponse({"error": bad.message}, status_code=bad.status)
    if post_call.nesting_depth(payload) > MAX_NESTING:
        return JSONResponse({"error": TOO_DEEP}, status_code=400)
    event = await post_call.prepare(payload, raw, store=request.app.state.audio_store)
    if event.audio_lost:
        request.app.state.metrics.audio_store_failures.labels("post_call").inc()
    records: CallRecords = request.app.state.call_records
    writer: CallLogWriter = request.app.state.call_log_writer
    try:
        stored = await writer.store(
            f"event=elevenlabs:{event.kind} dedupe_key={event.dedupe_key}",
            lambda: event.store(records),
        )
    except QueueFull:
        return JSONResponse({"error": QUEUE_FULL}, status_code=503)
    return JSONResponse({"received": True, "duplicate": stored.duplicate if stored else False})


def _refused(request: Request, verdict: Verdict | SignedHeader) -> JSONResponse:
    reason = verdict.reason if isinstance(verdict, Verdict) else "mismatch"
    request.app.state.metrics.signature_failures.labels(request.url.path).inc()
    return JSONResponse(
        {"error": SIGNATURE_ERRORS.get(reason, "Invalid signature.")}, status_code=401
    )


routes = [Route("/elevenlabs/webhook", receive, methods=["POST"])]
