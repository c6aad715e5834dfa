"""A stand-in for the ElevenLabs API: `register-call` for now."""

from __future__ import annotations

import asyncio
import hmac
import json
import uuid
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import quoteattr

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

REGISTER_FIELDS = {
    "agent_id": str,
    "from_number": str,
    "to_number": str,
}
OPTIONAL_FIELDS = {"direction", "conversation_initiation_client_data"}


@dataclass
class FakeElevenLabs:
    """Configure `latency` and `script` (one entry used per request, then "ok"):

    "ok", "status:NNN", "hang", "html", "json", "empty", "invalid_xml".
    """

    api_key: str = "test-elevenlabs-key"
    latency: float = 0.0
    script: list[str] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    keep_requests: bool = True

    @property
    def app(self) -> Starlette:
        return Starlette(
            routes=[Route("/v1/convai/twilio/register-call", self.register_call, methods=["POST"])]
        )

    async def register_call(self, request: Request) -> Response:
        given = request.headers.get("xi-api-key", "")
        if not hmac.compare_digest(given.encode(), self.api_key.encode()):
            return JSONResponse(
                {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}},
                status_code=401,
            )
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            return _field_errors([("body", "Invalid JSON body", "json_invalid")])
        problems = _check_register_body(body)
        if problems:
            return _field_errors(problems)
        if self.keep_requests:
            self.requests.append(body)
        step = self.script.pop(0) if self.script else "ok"
        if self.latency:
            await asyncio.sleep(self.latency)
        return await _scripted(step, body)


def _check_register_body(body: Any) -> list[tuple[str, str, str]]:
    if not isinstance(body, dict):
        return [("body", "Input should be a valid dictionary", "dict_type")]
    problems = []
    for name, kind in REGISTER_FIELDS.items():
        if name not in body:
            problems.append((name, "Field required", "missing"))
        elif not isinstance(body[name], kind):
            problems.append((name, "Input should be a valid string", "string_type"))
    direction = body.get("direction", "inbound")
    if direction not in ("inbound", "outbound"):
        problems.append(("direction", "Input should be 'inbound' or 'outbound'", "enum"))
    data = body.get("conversation_initiation_client_data")
    if data is not None and not isinstance(data, dict):
        problems.append(
            (
                "conversation_initiation_client_data",
                "Input should be a valid dictionary",
                "dict_type",
            )
        )
    for name in body:
        if name not in REGISTER_FIELDS and name not in OPTIONAL_FIELDS:
            problems.append((name, "Extra inputs are not permitted", "extra_forbidden"))
    return problems


def _field_errors(problems: list[tuple[str, str, str]]) -> JSONResponse:
    return JSONResponse(
        {
            "detail": [
                {"loc": ["body", name] if name != "body" else ["body"], "msg": msg, "type": kind}
                for name, msg, kind in problems
            ]
        },
        status_code=422,
    )


def register_twiml(agent_id: str, conversation_id: str) -> str:
    url = f"wss://api.elevenlabs.io/v1/convai/conversation/twilio?agent_id={agent_id}&conversation_signature=fake"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<Response>\n  <Connect>\n"
        f"    <Stream url={quoteattr(url)}>\n"
        f'      <Parameter name="conversation_id" value={quoteattr(conversation_id)}/>\n'
        "    </Stream>\n  </Connect>\n</Response>\n"
    )


async def _scripted(step: str, body: dict[str, Any]) -> Response:
    if step == "ok":
        conversation_id = "conv_" + uuid.uuid4().hex[:20]
        # The real endpoint labels its TwiML text/html; clients must not trust that.
        return Response(register_twiml(body["agent_id"], conversation_id), media_type="text/html")
    if step.startswith("status:"):
        status = int(step.split(":", 1)[1])
        return JSONResponse({"detail": f"fake error {status}"}, status_code=status)
    if step == "hang":
        await asyncio.sleep(3600)
    if step == "html":
        return Response(
            "<html><body><h1>502 Bad Gateway</h1></body></html>", media_type="text/html"
        )
    if step == "json":
        return JSONResponse({"twiml": "<Response/>"})
    if step == "empty":
        return Response(b"", media_type="text/html")
    if step == "invalid_xml":
        return Response("<Response><Connect><Stream url='wss://x'>", media_type="text/html")
    raise ValueError(f"unknown fake step {step!r}")
