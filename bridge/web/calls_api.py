"""The outbound API: `POST /calls` and live transfers to a human. Bearer token only.

Each handler parses the request, calls the service (bridge.outbound.placement,
bridge.answer.transfer) and renders what it returns.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bridge.answer import transfer
from bridge.answer.transfer import TransferRequest
from bridge.elevenlabs.client_data import field_errors
from bridge.outbound.dialer import OutboundRequest
from bridge.outbound.placement import Placement
from bridge.settings import Settings
from bridge.web import bodies
from bridge.web.auth import api_token
from bridge.web.bodies import BadBody


class Invalid(Exception):
    """The body does not fit the model: `problems` say which fields to fix."""

    def __init__(self, problems: list[dict[str, str]]) -> None:
        self.problems = problems


@api_token
async def create_call(request: Request) -> Response:
    try:
        data = await bodies.json_object(request)
        call = _validated(OutboundRequest, data)
    except BadBody as bad:
        return JSONResponse({"error": bad.message}, status_code=bad.status)
    except Invalid as invalid:
        return _problems(invalid.problems)
    placed = await _placement(request).place(call, data, request.headers.get("idempotency-key"))
    headers = {"idempotent-replayed": "true"} if placed.replayed else None
    return JSONResponse(placed.body, status_code=placed.status, headers=headers)


def _placement(request: Request) -> Placement:
    state = request.app.state
    settings: Settings = state.settings
    return Placement(
        dialer=state.dialer,
        keys=state.idempotency,
        records=state.call_records,
        metrics=state.metrics,
        allowed_countries=settings.allowed_countries(),
    )


@api_token
async def transfer_call(request: Request) -> Response:
    """Move a live call to a person: `POST /calls/{call_sid}/transfer`, or
    `POST /calls/transfer` with `call_sid` in the body (an ElevenLabs server tool
    sending `{{system__call_sid}}`)."""
    try:
        wanted = _validated(TransferRequest, await bodies.json_object(request))
    except BadBody as bad:
        return JSONResponse({"error": bad.message}, status_code=bad.status)
    except Invalid as invalid:
        return _problems(invalid.problems)
    in_path: str | None = request.path_params.get("call_sid")
    call_sid = in_path or wanted.call_sid
    if not call_sid:
        return _problems([{"field": "call_sid", "problem": "required"}])
    if in_path and not transfer.is_call_sid(in_path):
        return JSONResponse({"error": f"{in_path!r} is not a Twilio call SID."}, status_code=404)
    state = request.app.state
    done = await transfer.transfer(
        call_sid,
        wanted,
        settings=state.settings,
        twilio=state.twilio,
        requested_by="api" if in_path else "agent_tool",
        call_log=transfer.TransferLog(state.call_records, state.call_log_writer),
    )
    if done.problems:
        return _problems(list(done.problems))
    return JSONResponse(done.body, status_code=done.status)


Model = TypeVar("Model", bound=BaseModel)


def _validated(model: type[Model], data: dict[str, Any]) -> Model:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise Invalid(field_errors(error)) from None


def _problems(problems: list[dict[str, str]]) -> JSONResponse:
    summary = "; ".join(f"{item['field']}: {item['problem']}" for item in problems)
    return JSONResponse(
        {"error": f"Invalid request: {summary}", "problems": problems}, status_code=422
    )


routes = [
    Route("/calls", create_call, methods=["POST"]),
    Route("/calls/transfer", transfer_call, methods=["POST"]),
    Route("/calls/{call_sid}/transfer", transfer_call, methods=["POST"]),
]
