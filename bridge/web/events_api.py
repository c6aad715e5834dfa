"""The outbox over HTTP: `GET /events` (filter by delivery status and type, cursor
pages) and `POST /events/{id}/redeliver` (every delivery back to pending, now).
Bearer token."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bridge.events import outbox
from bridge.events.listing import BadFilter, list_events, outbox_health, parse_filter
from bridge.storage.database import Database
from bridge.web.auth import api_token


@api_token
async def list_outgoing_events(request: Request) -> Response:
    """Newest first: `{"events": [...], "next_cursor": str | null, "outbox": {...}}`
    (`outbox`: deliveries pending, the oldest's age, endpoints disabled by a 410)."""
    try:
        wanted = parse_filter(request.query_params)
    except BadFilter as bad:
        return JSONResponse({"error": bad.message, "field": bad.field}, status_code=400)
    database: Database = request.app.state.database
    page = await list_events(database, wanted)
    health = await outbox_health(database, datetime.now(UTC))
    return JSONResponse({"events": page.events, "next_cursor": page.next_cursor, "outbox": health})


@api_token
async def redeliver_event(request: Request) -> Response:
    event_id: str = request.path_params["event_id"]
    if "\x00" in event_id or len(event_id) > 40:
        return JSONResponse({"error": f"No event {event_id!r}."}, status_code=404)
    database: Database = request.app.state.database
    engine = await database.engine()
    async with engine.begin() as connection:
        found = await outbox.redeliver(connection, event_id, now=datetime.now(UTC))
    if not found:
        return JSONResponse({"error": f"No event {event_id!r}."}, status_code=404)
    outbox.notify()
    return JSONResponse({"id": event_id, "status": "pending"}, status_code=202)


routes = [
    Route("/events", list_outgoing_events, methods=["GET"]),
    Route("/events/{event_id}/redeliver", redeliver_event, methods=["POST"]),
]
