"""Reading a Twilio webhook safely: a capped body, a form with repeated keys kept,
and a checked signature. Anything else gets a short 4xx before any work is done."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from bridge.calllog import logfmt
from bridge.form import Form
from bridge.settings import Settings
from bridge.signature import RequestTarget, check_signature, signed_url

logger = logging.getLogger(__name__)

# Twilio's webhooks are a few KB; anything much larger is not from Twilio.
MAX_BODY_BYTES = 64 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"


class Rejected(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


async def verified_form(request: Request, settings: Settings) -> Form:
    """The webhook's form, or `Rejected` with the response to send instead."""
    body = await _capped_body(request)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        raise Rejected(PlainTextResponse(f"expected {FORM_TYPE}\n", status_code=415))
    form = Form.parse(body)
    url = signed_url(
        _target(request),
        public_base_url=settings.public_base_url,
        trust_forwarded=settings.trust_forwarded_headers,
    )
    check = check_signature(
        url=url,
        params=form,
        signature=request.headers.get("x-twilio-signature"),
        auth_token=settings.twilio_auth_token,
        skip=settings.skip_twilio_signature,
    )
    if not check.ok:
        logger.warning(
            logfmt(
                {
                    "event": "signature_rejected",
                    "reason": check.reason,
                    "path": request.url.path,
                    "url": url,
                    "call_sid": form.get("CallSid", "-"),
                }
            )
        )
        raise Rejected(PlainTextResponse("invalid Twilio signature\n", status_code=403))
    return form


async def _capped_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise Rejected(PlainTextResponse("request body too large\n", status_code=413))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise Rejected(PlainTextResponse("request body too large\n", status_code=413))
        chunks.append(chunk)
    return b"".join(chunks)


def _target(request: Request) -> RequestTarget:
    raw_path = request.scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else request.url.path
    host = request.headers.get("host") or request.url.netloc
    return RequestTarget(
        scheme=request.url.scheme,
        host=host,
        raw_path=path,
        query=request.scope.get("query_string", b"").decode("latin-1"),
        headers=request.headers,
    )
