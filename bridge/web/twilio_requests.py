"""Twilio webhooks as plain ASGI endpoints: a capped body, a form with repeated keys
kept, and a checked signature; anything else gets a short 4xx before any work.

Junk is refused in order of cost: no or malformed X-Twilio-Signature (and a host
TWILIO_ALLOWED_HOSTS does not list) before the body is read; a body or a field count
no Twilio form reaches before the form is parsed; then one signature check.

These are the bridge's hot path, so they skip Starlette's Request and Response
objects (a tenth of the CPU per call in the benchmark) and speak ASGI directly.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from bridge.calllog.log_lines import logfmt
from bridge.settings import Settings
from bridge.twilio.form import Form
from bridge.twilio.signature import (
    HostNotAllowed,
    RequestTarget,
    check_signature,
    parse_signature_settings,
    refusal,
    signed_url,
)
from bridge.web.bodies import BadBody, read_capped

logger = logging.getLogger(__name__)

# Twilio's webhooks are a few KB. The largest realistic voice webhook (every standard,
# geographic, caller-name and STIR/SHAKEN field at its longest plausible length, a
# CallToken with two PASSporTs, an AddOns result and 20 SIP headers; built by
# tests.helpers.largest_twilio_form) is 10,228 bytes with 72 fields: about three times
# that is allowed. A form past any cap is not from Twilio; it is refused unparsed.
MAX_BODY_BYTES = 32 * 1024
MAX_FIELDS = 200
# Decoding a %XX escape costs ~0.25 us: a 32 KB form of nothing else would cost four valid
# webhooks. That largest form has 109; JSON add-on results and SIP headers have more.
MAX_ESCAPES = 2048
FORM_TYPE = "application/x-www-form-urlencoded"
_SHORT = {
    413: "request body too large\n",
    400: "client disconnected\n",
    408: "request body too slow\n",
    403: "invalid Twilio signature\n",
}


@dataclass(frozen=True)
class Webhook:
    """A verified Twilio webhook: its form, its query string, and the app's state."""

    form: Form
    query_string: str
    state: Any

    def query_param(self, name: str) -> str:
        # Parsed on demand: the inbound webhook, the hot path, has no query.
        values = parse_qs(self.query_string).get(name)
        return values[0] if values else ""


class Rejected(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Reply:
    """TwiML to answer with, and work to do once Twilio has it (the call log)."""

    twiml: str
    after: Callable[[], Awaitable[None]] | None = None


Handler = Callable[[Webhook], Awaitable[str | Reply]]


class TwilioWebhook:
    """An ASGI app that verifies the webhook, runs `handler`, and answers with its TwiML.

    A class, not a function, so that Starlette's Route passes it ASGI calls as they are.
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope["app"].state
        try:
            form = await verified_form(scope, receive, state)
        except Rejected as rejected:
            if rejected.status == 403:
                state.metrics.signature_failures.labels(scope["path"]).inc()
            await _send(send, rejected.status, b"text/plain; charset=utf-8", rejected.message)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        reply = await self.handler(Webhook(form=form, query_string=query, state=state))
        if isinstance(reply, str):
            reply = Reply(reply)
        await _send(send, 200, b"text/xml; charset=utf-8", reply.twiml)
        if reply.after is not None:
            # After the response: the caller is never kept waiting on the database.
            try:
                await reply.after()
            except Exception:
                logger.exception("event=after_reply_failed path=%s", scope["path"])


async def verified_form(scope: Scope, receive: Receive, state: Any) -> Form:
    """The webhook's form, or `Rejected` with the status and message to send instead."""
    settings: Settings = state.settings
    headers = Headers(scope=scope)
    signature = headers.get("x-twilio-signature")
    # Read only when a shared key is set: without one the hot path does no more work
    # than before (a refusal says when the header was there, see _refuse).
    signature_settings = (
        headers.get("x-twilio-webhooks-signature-settings")
        if settings.twilio_webhook_shared_key
        else None
    )
    try:
        url = signed_url(
            _target(scope, headers),
            public_base_url=settings.public_base_url,
            trust_forwarded=settings.trust_forwarded_headers,
            allowed_hosts=settings.twilio_allowed_hosts,
        )
    except HostNotAllowed as not_allowed:
        _refuse(scope, headers, settings, "host_not_allowed", str(not_allowed), "-")
    if not settings.skip_twilio_signature:
        refused = refusal(
            signature,
            settings.twilio_auth_token,
            signature_settings=signature_settings,
            shared_key=settings.twilio_webhook_shared_key,
        )
        if refused is not None:
            # Before the body is read: an unsigned request costs next to nothing.
            _refuse(scope, headers, settings, refused, url, "-")
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        raise Rejected(415, f"expected {FORM_TYPE}\n")
    body = await _capped_body(headers, receive)
    if body.count(b"&") >= MAX_FIELDS:
        raise Rejected(413, "too many form fields\n")
    if body.count(b"%") > MAX_ESCAPES:
        raise Rejected(413, "too many percent-escapes\n")
    form = Form.parse(body)
    check = check_signature(
        url=url,
        params=form,
        signature=signature,
        auth_token=settings.twilio_auth_token,
        previous_auth_token=settings.twilio_previous_auth_token,
        shared_key=settings.twilio_webhook_shared_key,
        signature_settings=signature_settings,
        skip=settings.skip_twilio_signature,
    )
    if not check.ok:
        _refuse(scope, headers, settings, check.reason, url, form.get("CallSid", "-"))
    if check.reason == "valid_previous_token":
        # How an operator tells when TWILIO_PREVIOUS_AUTH_TOKEN may go.
        state.metrics.previous_token_signatures.inc()
    return form


def _refuse(
    scope: Scope, headers: Headers, settings: Settings, reason: str, url: str, call_sid: str
) -> NoReturn:
    fields = {
        "event": "signature_rejected",
        "reason": reason,
        "path": scope["path"],
        "url": url,
        "call_sid": call_sid,
    }
    settings_header = headers.get("x-twilio-webhooks-signature-settings")
    if settings_header is not None:
        # Not secret: the key's id and the algorithm, as the request gave them.
        parsed = parse_signature_settings(settings_header)
        fields["signature_key"] = parsed.key if parsed is not None and parsed.key else "-"
        fields["signature_algorithm"] = parsed.algorithm if parsed is not None else "-"
        if not settings.twilio_webhook_shared_key and reason != "host_not_allowed":
            # Signed with a shared key, it says, and TWILIO_WEBHOOK_SHARED_KEY is not set.
            fields["reason"] = "no_shared_key"
    logger.warning(logfmt(fields))
    raise Rejected(403, _SHORT[403])


async def _capped_body(headers: Headers, receive: Receive) -> bytes:
    try:
        return await read_capped(headers, receive, MAX_BODY_BYTES)
    except BadBody as bad:
        # Twilio reads none of it; a short line is enough for a person with curl.
        raise Rejected(bad.status, _SHORT[bad.status]) from None


def _target(scope: Scope, headers: Headers) -> RequestTarget:
    raw_path = scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else scope["path"]
    host = headers.get("host")
    if not host:
        server = scope.get("server") or ("localhost", None)
        host = f"{server[0]}:{server[1]}" if server[1] else str(server[0])
    return RequestTarget(
        scheme=scope.get("scheme", "http"),
        host=host,
        raw_path=path,
        query=scope.get("query_string", b"").decode("latin-1"),
        headers=headers,
    )


async def _send(send: Send, status: int, content_type: bytes, text: str) -> None:
    body = text.encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode("latin-1")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
