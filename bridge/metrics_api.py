"""`GET /metrics`: Prometheus text, behind a bearer token.

Rule names and call counts say how a business runs its phones, so the page is not
public: the scraper sends `Authorization: Bearer $METRICS_TOKEN` (Prometheus'
`authorization` scrape setting), or BRIDGE_API_TOKEN when METRICS_TOKEN is unset.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bridge.auth import token_matches
from bridge.metrics import Metrics
from bridge.settings import Settings


async def metrics(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    token = settings.metrics_token or settings.bridge_api_token
    if not token:
        return JSONResponse(
            {"error": "Set METRICS_TOKEN (or BRIDGE_API_TOKEN): /metrics needs a bearer token."},
            status_code=503,
        )
    if not token_matches(request.headers.get("authorization"), token.reveal()):
        return JSONResponse(
            {"error": "Missing or invalid bearer token."},
            status_code=401,
            headers={"www-authenticate": 'Bearer realm="callbridge metrics"'},
        )
    counted: Metrics = request.app.state.metrics
    text, content_type = counted.exposition(request.headers.get("accept"))
    return Response(text, headers={"content-type": content_type})


routes = [Route("/metrics", metrics, methods=["GET"])]
