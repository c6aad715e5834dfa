"""Reading the call log over HTTP: `GET /calls` and `GET /calls/{call_sid}`. Bearer token."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bridge.calllog.queries import BadFilter, find_call, list_calls, parse_filter
from bridge.storage.database import Database
from bridge.web.auth import api_token


@api_token
async def list_call_records(request: Request) -> Response:
    """Newest first: `{"calls": [...], "next_cursor": str | null}`."""
    try:
        wanted = parse_filter(request.query_params)
    except BadFilter as bad:
        return JSONResponse({"error": bad.message, "field": bad.field}, status_code=400)
    database: Database = request.app.state.database
    page = await list_calls(database, wanted)
    return JSONResponse({"calls": page.calls, "next_cursor": page.next_cursor})


@api_token
async def show_call_record(request: Request) -> Response:
    """One call by call SID, the bridge's id or conversation id; events and transcript."""
    key: str = request.path_params["call_sid"]
    database: Database = request.app.state.database
    record = await find_call(database, key)
    if record is None:
        return JSONResponse({"error": f"No call {key!r} in the call log."}, status_code=404)
    return JSONResponse(record)


routes = [
    Route("/calls", list_call_records, methods=["GET"]),
    Route("/calls/{call_sid}", show_call_record, methods=["GET"]),
]
