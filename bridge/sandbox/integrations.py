"""The sandbox's stand-in for the business's own systems: a receiver for the bridge's
signed events (`EVENTS_WEBHOOK_URL`) and a lookup endpoint (`LOOKUP_URL`). Both check
the Standard Webhooks signature as a real receiver would, and print what they get, so
a new user sees what their CRM would receive before writing one.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bridge.sandbox.numbers import CALLER
from bridge.sandbox.report import Reporter, variables

EVENTS_PATH = "/events"
LOOKUP_PATH = "/lookup"
# Who the lookup knows: the sandbox's usual caller, so a simulated call shows a name.
CUSTOMERS = {CALLER: {"customer_name": "Ada Lovelace", "account_tier": "gold"}}
# What an event's line shows of its data: a call's outcome, or a campaign's progress.
SHOWN = (
    "call_sid",
    "status",
    "reason",
    "rule",
    "duration",
    "name",
    "phone",
    "state",
    "attempts",
)


def events_secret(bridge_api_token: str) -> str:
    """The sandbox's events secret, derived from its (made-up) API token, so it is
    kept across restarts with the other credentials."""
    digest = hashlib.sha256(b"callbridge-sandbox-events:" + bridge_api_token.encode()).digest()
    return "whsec_" + base64.b64encode(digest).decode()


@dataclass
class DemoIntegrations:
    secret: str
    report: Reporter
    events: list[dict[str, Any]] = field(default_factory=list)
    lookups: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._verifier = Webhook(self.secret)
        self.app = Starlette(
            routes=[
                Route(EVENTS_PATH, self._event, methods=["POST"]),
                Route(LOOKUP_PATH, self._lookup, methods=["POST"]),
            ]
        )

    async def _verified(self, request: Request, source: str) -> dict[str, Any] | None:
        body = await request.body()
        try:
            payload = self._verifier.verify(body, dict(request.headers))
        except (WebhookVerificationError, ValueError) as exc:
            self.report(source, f"refused: {exc}")
            return None
        return payload if isinstance(payload, dict) else None

    async def _event(self, request: Request) -> Response:
        payload = await self._verified(request, "crm")
        if payload is None:
            return Response(status_code=401)
        self.events.append(payload)
        data = payload.get("data")
        summary = _summary(data if isinstance(data, dict) else {})
        self.report(
            "crm",
            f"event {payload.get('type')} {request.headers.get('webhook-id')} {variables(summary)}",
        )
        return Response(status_code=204)

    async def _lookup(self, request: Request) -> Response:
        payload = await self._verified(request, "lookup")
        if payload is None:
            return Response(status_code=401)
        self.lookups.append(payload)
        caller = str(payload.get("caller_id") or "")
        known = CUSTOMERS.get(caller, {})
        answer = {
            "type": "conversation_initiation_client_data",
            "dynamic_variables": dict(known),
        }
        self.report(
            "lookup",
            f"{caller or '?'} (rule {payload.get('rule')}) -> "
            + (json.dumps(known, sort_keys=True) if known else "unknown caller: no change"),
        )
        return JSONResponse(answer)


def _summary(data: dict[str, Any]) -> dict[str, Any]:
    summary = {key: data[key] for key in SHOWN if data.get(key) is not None}
    # campaign.finished: how its recipients ended, the states none ended in left out.
    counts = data.get("recipients")
    if isinstance(counts, dict):
        summary.update((state, count) for state, count in counts.items() if count)
    return summary
