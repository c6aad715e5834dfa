"""The outbound API: `POST /calls` and live transfers to a human. Bearer token only."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import twiml
from bridge import phone
from bridge.answer.inbound import TRANSFER_STEP
from bridge.calllog.log_lines import logfmt
from bridge.calllog.records import CallRecords
from bridge.elevenlabs.client_data import field_errors
from bridge.outbound.destinations import destination_problem
from bridge.outbound.dialer import Dialer, NotPlaced, OutboundRequest
from bridge.outbound.idempotency import IdempotencyKeys, KeyConflict
from bridge.settings import Settings
from bridge.twilio.paths import DIAL_COMPLETE_PATH
from bridge.twilio.rest import CALL_SID, CALL_SID_PATTERN, TwilioError, TwilioREST
from bridge.web import bodies as json_body
from bridge.web.auth import refuse_unless_authorized

logger = logging.getLogger("bridge.outbound")

OUTCOME_UNKNOWN = {
    "error": "The bridge was interrupted while placing this call; it may have been placed.",
    "placed": "unknown",
}
MAX_TWIML_CHARS = 4000  # Twilio's limit for inline TwiML
TRANSFER_NO_ANSWER = "Sorry, nobody is available to take your call right now. Goodbye."


class BadRequest(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.body = body


async def json_object(request: Request) -> dict[str, Any]:
    try:
        return await json_body.json_object(request)
    except json_body.BodyError as bad:
        raise BadRequest(bad.status, {"error": bad.message}) from None


async def create_call(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    refusal = refuse_unless_authorized(request, settings)
    if refusal is not None:
        return refusal
    try:
        data = await json_object(request)
        call = _validated(OutboundRequest, data)
    except BadRequest as bad:
        return JSONResponse(bad.body, status_code=bad.status)
    problem = destination_problem(call.to, settings.allowed_countries())
    if problem:
        _log("call_refused", to=call.to, reason=problem)
        return JSONResponse({"error": problem, "placed": False}, status_code=403)

    keys: IdempotencyKeys = request.app.state.idempotency
    key = request.headers.get("idempotency-key")
    if key is not None:
        if not 1 <= len(key) <= 255:
            return JSONResponse(
                {"error": "Idempotency-Key must be 1 to 255 characters."}, status_code=400
            )
        try:
            replay = await keys.begin("calls", key, keys.fingerprint("calls", data))
        except KeyConflict as conflict:
            return JSONResponse({"error": conflict.message}, status_code=conflict.status)
        if replay is not None:
            return JSONResponse(
                replay.body, status_code=replay.status, headers={"idempotent-replayed": "true"}
            )

    dialer: Dialer = request.app.state.dialer
    requested = request.app.state.metrics.outbound_requests
    try:
        placed = await dialer.place(call)
    except NotPlaced as failure:
        requested.labels(
            call.mode or dialer.default_mode(), "not_placed" if failure.definite else "unknown"
        ).inc()
        _log("call_not_placed", to=call.to, status=failure.status, reason=failure.message)
        if key is not None:
            if failure.definite:
                await keys.release("calls", key)
            else:
                await keys.finish("calls", key, failure.status, failure.body())
        return JSONResponse(failure.body(), status_code=failure.status)
    except BaseException:
        requested.labels(call.mode or dialer.default_mode(), "unknown").inc()
        if key is not None:
            # The bridge failed or was interrupted while dialling: the call may exist.
            # Every retry with this key gets that answer rather than a second ring.
            await asyncio.shield(keys.finish("calls", key, 500, OUTCOME_UNKNOWN))
        raise
    requested.labels(placed["mode"], "placed").inc()
    if key is not None:
        await keys.finish("calls", key, 201, placed)
    records: CallRecords = request.app.state.call_records
    try:
        await records.record_placed(placed, idempotency_key=key)
    except Exception:
        # The call is placed whatever the log says: report it, and say why it is missing.
        logger.exception("event=call_log_failed call_sid=%s", placed.get("call_sid"))
    _log("call_placed", to=call.to, mode=placed["mode"], call_sid=placed.get("call_sid"))
    return JSONResponse(placed, status_code=201)


class TransferRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str = Field(pattern=phone.E164_PATTERN)
    message: str | None = Field(default=None, max_length=1000)
    call_sid: str | None = Field(default=None, pattern=CALL_SID_PATTERN)


async def transfer_call(request: Request) -> Response:
    """Move a live call to a person: `POST /calls/{call_sid}/transfer`, or
    `POST /calls/transfer` with `call_sid` in the body (an ElevenLabs server tool
    sending `{{system__call_sid}}`)."""
    settings: Settings = request.app.state.settings
    refusal = refuse_unless_authorized(request, settings)
    if refusal is not None:
        return refusal
    try:
        transfer = _validated(TransferRequest, await json_object(request))
    except BadRequest as bad:
        return JSONResponse(bad.body, status_code=bad.status)
    call_sid = request.path_params.get("call_sid") or transfer.call_sid
    if not call_sid:
        return _problems([{"field": "call_sid", "problem": "required"}])
    if request.path_params.get("call_sid") and not _is_call_sid(call_sid):
        return JSONResponse({"error": f"{call_sid!r} is not a Twilio call SID."}, status_code=404)
    problem = destination_problem(transfer.to, settings.allowed_countries())
    if problem:
        _log("transfer_refused", call_sid=call_sid, to=transfer.to, reason=problem)
        return JSONResponse({"error": problem, "transferred": False}, status_code=403)
    twilio: TwilioREST | None = request.app.state.twilio
    if twilio is None:
        return JSONResponse(
            {"error": "Transfers need TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN to be set."},
            status_code=503,
        )
    try:
        document = _transfer_twiml(transfer, settings)
    except ValueError as exc:
        return _problems([{"field": "message", "problem": str(exc)}])
    if len(document) > MAX_TWIML_CHARS:
        return _problems(
            [{"field": "message", "problem": "too long once written as TwiML (Twilio's limit)"}]
        )
    try:
        await twilio.redirect_call(call_sid, twiml=document)
    except TwilioError as exc:
        status = 404 if exc.status == 404 else 502
        return JSONResponse(
            {
                "error": f"Twilio API error ({exc.status}): {exc.message}",
                "transferred": False,
                "upstream_status": exc.status,
            },
            status_code=status,
        )
    _log("call_transferred", call_sid=call_sid, to=transfer.to)
    return JSONResponse(
        {
            "transferred": True,
            "call_sid": call_sid,
            "to": transfer.to,
            # Read by the agent when this endpoint is its server tool.
            "message": f"Transferring the caller to {transfer.to}.",
        }
    )


def _transfer_twiml(transfer: TransferRequest, settings: Settings) -> str:
    """Ends the agent's stream; the caller hears the message, then the phone rings.

    With PUBLIC_BASE_URL the Dial reports back (an absolute URL: the TwiML is inline,
    so there is no document to be relative to) and only a caller nobody answered
    hears the goodbye; without it, the goodbye follows the Dial either way.
    """
    base = settings.public_base_url
    return twiml.forward(
        [transfer.to],
        message=transfer.message,
        timeout=30,
        caller_id=settings.twilio_phone_number or None,
        action_url=f"{base}{DIAL_COMPLETE_PATH}?step={TRANSFER_STEP}" if base else None,
        after_message=None if base else TRANSFER_NO_ANSWER,
    )


def _is_call_sid(value: str) -> bool:
    return bool(CALL_SID.fullmatch(value))


Model = TypeVar("Model", bound=BaseModel)


def _validated(model: type[Model], data: dict[str, Any]) -> Model:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise BadRequest(422, _problem_body(field_errors(error))) from None


def _problem_body(problems: list[dict[str, str]]) -> dict[str, Any]:
    summary = "; ".join(f"{item['field']}: {item['problem']}" for item in problems)
    return {"error": f"Invalid request: {summary}", "problems": problems}


def _problems(problems: list[dict[str, str]]) -> JSONResponse:
    return JSONResponse(_problem_body(problems), status_code=422)


def _log(event: str, **fields: object) -> None:
    if "to" in fields:
        fields["to"] = phone.mask(str(fields["to"]))
    logger.info(logfmt({"event": event, **fields}))


routes = [
    Route("/calls", create_call, methods=["POST"]),
    Route("/calls/transfer", transfer_call, methods=["POST"]),
    Route("/calls/{call_sid}/transfer", transfer_call, methods=["POST"]),
]
