"""`GET /metrics`: Prometheus text, behind a bearer token.

Rule names and call counts say how a business runs its phones, so the page is not
public: the scraper sends `Authorization: Bearer $METRICS_TOKEN` (Prometheus'
`authorization` scrape setting), or BRIDGE_API_TOKEN when METRICS_TOKEN is unset.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bridge.metrics import Metrics
from bridge.settings import Settings
from bridge.web.auth import guarded, refuse_unless_bearer


def _refuse_unless_scraper(request: Request) -> Response | None:
    settings: Settings = request.app.state.settings
    return refuse_unless_bearer(
        request,
        settings.metrics_token or settings.bridge_api_token,
        unset="Set METRICS_TOKEN (or BRIDGE_API_TOKEN): /metrics needs a bearer token.",
        realm="callbridge metrics",
    )


@guarded(_refuse_unless_scraper)
async def metrics(request: Request) -> Response:
    counted: Metrics = request.app.state.metrics
    text, content_type = counted.exposition(request.headers.get("accept"))
    return Response(text, headers={"content-type": content_type})


routes = [Route("/metrics", metrics, methods=["GET"])]
