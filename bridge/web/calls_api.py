"""The outbound API: `POST /calls` and live transfers to a human. Bearer token only.

Each handler parses the request, calls the service (bridge.outbound.placement,
bridge.answer.transfer) and renders what it returns.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bridge import phone
from bridge.answer import transfer
from bridge.answer.transfer import TransferRequest
from bridge.calllog.log_lines import logfmt
from bridge.calllog.records import CallRecords
from bridge.dnc import opt_out
from bridge.elevenlabs.client_data import field_errors
from bridge.outbound.dialer import OutboundRequest
from bridge.outbound.placement import Placement
from bridge.settings import Settings
from bridge.web import bodies
from bridge.web.auth import api_token
from bridge.web.bodies import BadBody
from bridge.web.dnc_api import outbox, recipients_stopped

logger = logging.getLogger("bridge.dnc")
# What a 429 (OUTBOUND_MAX_CONCURRENT_CALLS reached) asks the client to wait.
RETRY_AT_CAPACITY_SECONDS = 10


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
    headers = {"idempotent-replayed": "true"} if placed.replayed else {}
    if placed.status == 429:
        headers["retry-after"] = str(RETRY_AT_CAPACITY_SECONDS)
    return JSONResponse(placed.body, status_code=placed.status, headers=headers or None)


def _placement(request: Request) -> Placement:
    state = request.app.state
    settings: Settings = state.settings
    return Placement(
        dialer=state.dialer,
        keys=state.idempotency,
        records=state.call_records,
        metrics=state.metrics,
        allowed_countries=settings.allowed_countries(),
        database=state.database,
        max_concurrent_calls=settings.outbound_max_concurrent_calls,
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


class OptOutRequest(BaseModel):
    """The body of `POST /calls/opt-out` (an ElevenLabs server tool)."""

    model_config = ConfigDict(extra="forbid")

    # `{{system__call_sid}}`; a native call's conversation id is found too.
    call_sid: str = Field(min_length=1, max_length=128)
    # What the callee said, in the agent's words (optional).
    reason: str | None = Field(default=None, max_length=500)


@api_token
async def opt_out_call(request: Request) -> Response:
    """The callee asked not to be called again: list their number and stop their
    waiting campaign calls, then tell the agent what was done."""
    try:
        wanted = _validated(OptOutRequest, await bodies.json_object(request))
    except BadBody as bad:
        return JSONResponse({"error": bad.message}, status_code=bad.status)
    except Invalid as invalid:
        return _problems(invalid.problems)
    engine = await request.app.state.database.engine()
    try:
        async with engine.begin() as connection:
            done = await opt_out.opt_out(
                connection, wanted.call_sid, reason=wanted.reason, now=datetime.now(UTC)
            )
            await recipients_stopped(connection, outbox(request), done.added.stopped_recipients)
    except opt_out.NoSuchCall:
        return JSONResponse(
            {"error": f"No call {wanted.call_sid!r} in the call log.", "listed": False},
            status_code=404,
        )
    except opt_out.NoNumber as no_number:
        return JSONResponse(
            {"error": f"Cannot opt out: {no_number}.", "listed": False}, status_code=422
        )
    stopped = done.added.stopped
    await _opted_out_step(request, done)
    logger.info(
        logfmt(
            {
                "event": "dnc_opt_out",
                "call_sid": wanted.call_sid,
                "number": phone.mask(done.number),
                "added": done.added.added,
                "stopped": stopped,
            }
        )
    )
    also = f" and {stopped} scheduled campaign call(s) to it were cancelled" if stopped else ""
    return JSONResponse(
        {
            "listed": True,
            "added": done.added.added,
            "number": done.number,
            "stopped_campaign_calls": stopped,
            "message": (
                f"The {'callee' if done.direction == 'outbound' else 'caller'}'s number is on "
                f"the do-not-call list{also}; they will not be called again."
            ),
        }
    )


async def _opted_out_step(request: Request, done: opt_out.OptedOut) -> None:
    """The opt-out as a step on the call's timeline ("opted out: ..."); the list is
    what matters, so a failure here is only logged."""
    if done.call_sid is None:
        return
    records: CallRecords = request.app.state.call_records
    try:
        await records.record_step(
            done.call_sid,
            "opted_out",
            {
                "status": "added to the do-not-call list",
                "requested_by": "agent_tool",
                "stopped_campaign_calls": done.added.stopped,
            },
            dedupe_key=f"opted_out:{done.call_sid}",
            direction=done.direction,
        )
    except Exception:
        logger.exception("event=opt_out_step_not_recorded call_sid=%s", done.call_sid)


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
    Route("/calls/opt-out", opt_out_call, methods=["POST"]),
    Route("/calls/{call_sid}/transfer", transfer_call, methods=["POST"]),
]
