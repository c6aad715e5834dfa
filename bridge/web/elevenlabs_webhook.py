"""`POST /elevenlabs/webhook`: ElevenLabs' post-call webhooks, stored before they are
acknowledged.

Each webhook must carry a valid `ElevenLabs-Signature` (bridge.elevenlabs.webhook_signature)
and come from an allowed address (ELEVENLABS_WEBHOOK_ALLOWED_IPS); anything else gets
401 (403) and nothing is stored. What storing means, replays and audio files included,
is bridge.calllog.post_call's; a stored webhook is answered
`{"received": true, "duplicate": <was it a replay>}`.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bridge.calllog import post_call
from bridge.elevenlabs.webhook_signature import HEADER, secrets_from, verify
from bridge.settings import Settings
from bridge.web import bodies
from bridge.web.bodies import BadBody

MAX_BODY_BYTES = 20 * 1024 * 1024  # audio webhooks carry a base64 MP3
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
    try:
        raw = await bodies.read(request, MAX_BODY_BYTES)
        verdict = verify(request.headers.get(HEADER), raw, secrets)
        if not verdict.ok:
            request.app.state.metrics.signature_failures.labels(request.url.path).inc()
            return JSONResponse(
                {"error": SIGNATURE_ERRORS.get(verdict.reason, "Invalid signature.")},
                status_code=401,
            )
        payload = bodies.parse_json_object(raw)
    except BadBody as bad:
        return JSONResponse({"error": bad.message}, status_code=bad.status)
    stored = await post_call.record(
        request.app.state.database, payload, raw, audio_dir=settings.call_audio_dir
    )
    return JSONResponse({"received": True, "duplicate": stored.duplicate})


routes = [Route("/elevenlabs/webhook", receive, methods=["POST"])]
