"""A lookup hook endpoint, as a business would serve one: it verifies the Standard
Webhooks signature, keeps what it got, and answers `reply` after `latency` seconds."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

LOOKUP_PATH = "/lookup"


@dataclass
class FakeLookup:
    """`reply`: the JSON answered (ElevenLabs' client-data shape, `agent_id`, `action`);
    `status`: its HTTP status; `requests`: the verified bodies, unless `keep_requests` is
    off (the benchmark)."""

    secret: str
    reply: dict[str, Any] = field(default_factory=dict)
    status: int = 200
    latency: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    keep_requests: bool = True
    refused: int = 0

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[Route(LOOKUP_PATH, self.lookup, methods=["POST"])])

    async def lookup(self, request: Request) -> Response:
        body = await request.body()
        try:
            payload = Webhook(self.secret).verify(body, dict(request.headers))
        except WebhookVerificationError:
            self.refused += 1
            return JSONResponse({"error": "bad signature"}, status_code=401)
        if self.keep_requests:
            self.requests.append(payload)
        if self.latency:
            await asyncio.sleep(self.latency)
        return Response(
            json.dumps(self.reply), status_code=self.status, media_type="application/json"
        )
