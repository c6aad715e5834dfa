"""The do-not-call list over HTTP: `POST /dnc`, `GET /dnc` (cursor pages),
`GET /dnc/{number}`, `DELETE /dnc/{number}`, `POST /dnc/import` (CSV). Bearer token.

Adding a number also stops its waiting campaign calls (bridge.dnc.entries).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bridge import phone
from bridge.calllog.log_lines import logfmt
from bridge.dnc import entries, imports
from bridge.dnc.entries import MAX_LIMIT, Added, BadCursor, BadNumber, Stopped
from bridge.elevenlabs.client_data import field_errors
from bridge.events.outbox import Outbox
from bridge.storage.database import Database
from bridge.web import bodies
from bridge.web.auth import api_token
from bridge.web.bodies import BadBody

logger = logging.getLogger("bridge.dnc")

# A CSV of a million numbers is ~20 MB; an import larger than this goes in parts.
MAX_IMPORT_BYTES = 20 * 1024 * 1024
LIST_PARAMETERS = ("limit", "cursor", "source")
FORM_UNSUPPORTED = (
    "This bridge cannot read form uploads (python-multipart is not installed): send the "
    "CSV file as the body, with Content-Type: text/csv."
)


class NewEntry(BaseModel):
    """The body of `POST /dnc`."""

    model_config = ConfigDict(extra="forbid")

    number: str
    reason: str | None = Field(default=None, max_length=entries.MAX_REASON)
    # Who adds it: `callbridge dnc add` says "cli".
    source: Literal["api", "cli"] = "api"

    @field_validator("number")
    @classmethod
    def _e164(cls, value: str) -> str:
        try:
            return entries.normalized(value)
        except BadNumber as bad:
            raise ValueError(str(bad)) from None


@api_token
async def add_number(request: Request) -> Response:
    try:
        data = await bodies.json_object(request)
        wanted = NewEntry.model_validate(data)
    except BadBody as bad:
        return JSONResponse({"error": bad.message}, status_code=bad.status)
    except ValidationError as error:
        return problems(field_errors(error))
    engine = await _database(request).engine()
    async with engine.begin() as connection:
        added = await entries.add(
            connection,
            wanted.number,
            reason=wanted.reason,
            source=wanted.source,
            now=datetime.now(UTC),
        )
        await recipients_stopped(connection, outbox(request), added.stopped_recipients)
    log("dnc_added" if added.added else "dnc_listed_already", added.number, stopped=added.stopped)
    return JSONResponse(added_body(added), status_code=201 if added.added else 200)


def added_body(added: Added) -> dict[str, Any]:
    created = added.created_at
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return {
        "number": added.number,
        "reason": added.reason,
        "source": added.source,
        "created_at": created.isoformat(),
        "added": added.added,
        "stopped_campaign_calls": added.stopped,
    }


@api_token
async def list_numbers(request: Request) -> Response:
    params = request.query_params
    for name in params:
        if name not in LIST_PARAMETERS:
            return _bad_parameter(name, f"unknown parameter; expected one of {LIST_PARAMETERS}")
    limit_text = params.get("limit", str(entries.DEFAULT_LIMIT))
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
        return _bad_parameter("limit", f"must be a whole number from 1 to {MAX_LIMIT}")
    source = params.get("source")
    if source is not None and source not in entries.SOURCES:
        return _bad_parameter("source", f"must be one of {', '.join(entries.SOURCES)}")
    engine = await _database(request).engine()
    try:
        async with engine.connect() as connection:
            found = await entries.page(
                connection,
                limit=int(limit_text),
                cursor=params.get("cursor"),
                source=source,
            )
    except BadCursor as bad:
        return _bad_parameter("cursor", str(bad))
    return JSONResponse({"numbers": found.entries, "next_cursor": found.next_cursor})


@api_token
async def show_number(request: Request) -> Response:
    number = _path_number(request)
    if number is None:
        return _not_listed(request.path_params["number"])
    engine = await _database(request).engine()
    async with engine.connect() as connection:
        found = await entries.entry(connection, number)
    if found is None:
        return _not_listed(number)
    return JSONResponse(found)


@api_token
async def remove_number(request: Request) -> Response:
    number = _path_number(request)
    if number is None:
        return _not_listed(request.path_params["number"])
    engine = await _database(request).engine()
    async with engine.begin() as connection:
        removed = await entries.remove(connection, number)
    if not removed:
        return _not_listed(number)
    log("dnc_removed", number)
    return JSONResponse({"number": number, "removed": True})


@api_token
async def import_numbers(request: Request) -> Response:
    """A CSV file as the body (`text/csv`), or as the `file` field of a form upload."""
    try:
        data = await _csv_body(request)
        parsed = imports.parse(data)
    except BadBody as bad:
        return JSONResponse({"error": bad.message}, status_code=bad.status)
    except imports.BadFile as bad:
        return problems([{"field": "file", "problem": str(bad)}])
    engine = await _database(request).engine()
    async with engine.begin() as connection:
        done = await entries.add_many(
            connection,
            [(number, reason) for _, number, reason in parsed.rows],
            source="import",
            now=datetime.now(UTC),
        )
        await recipients_stopped(connection, outbox(request), done.stopped_recipients)
    logger.info(
        logfmt(
            {
                "event": "dnc_imported",
                "added": done.added,
                "already_listed": done.already_listed,
                "invalid": len(parsed.problems),
                "stopped": done.stopped,
            }
        )
    )
    return JSONResponse(
        {
            "added": done.added,
            "already_listed": done.already_listed,
            "invalid": len(parsed.problems),
            "stopped_campaign_calls": done.stopped,
            "problems": parsed.problems,
        }
    )


async def _csv_body(request: Request) -> bytes:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        return await _uploaded(request)
    return await bodies.read(request, MAX_IMPORT_BYTES)


async def _uploaded(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_IMPORT_BYTES):
        raise BadBody(413, bodies.too_large(MAX_IMPORT_BYTES))
    try:
        async with request.form(max_files=1, max_fields=10, max_part_size=MAX_IMPORT_BYTES) as form:
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise BadBody(
                    422, "Invalid request: file: required (the CSV file, as a form upload)"
                )
            return await upload.read()
    except AssertionError:  # Starlette's form parser needs python-multipart
        raise BadBody(415, FORM_UNSUPPORTED) from None
    except ValueError as exc:
        raise BadBody(400, f"Request body is not a readable form upload: {exc}") from None


def _path_number(request: Request) -> str | None:
    try:
        return entries.normalized(str(request.path_params["number"]))
    except BadNumber:
        return None


def _not_listed(number: str) -> JSONResponse:
    return JSONResponse({"error": f"{number} is not on the do-not-call list."}, status_code=404)


def _bad_parameter(field: str, problem: str) -> JSONResponse:
    return JSONResponse({"error": f"{field}: {problem}", "field": field}, status_code=400)


def problems(found: list[dict[str, str]]) -> JSONResponse:
    summary = "; ".join(f"{item['field']}: {item['problem']}" for item in found)
    return JSONResponse(
        {"error": f"Invalid request: {summary}", "problems": found}, status_code=422
    )


async def recipients_stopped(
    connection: Any, events: Outbox | None, stopped: Sequence[Stopped]
) -> None:
    """A `campaign.recipient.finished` event for each recipient the listing stopped, in
    its transaction: the data and dedupe key the campaign worker uses for the same
    event (bridge.campaigns), so a consumer sees every recipient end once."""
    if events is None:
        return
    for recipient in stopped:
        await events.enqueue(
            connection,
            "campaign.recipient.finished",
            {
                "campaign_id": recipient.campaign_id,
                "recipient_id": recipient.id,
                "external_id": recipient.external_id,
                "phone": recipient.phone,
                "state": "do_not_call",
                "attempts": recipient.attempts,
                "call_sid": recipient.call_sid,
                "call_successful": None,
                "error": recipient.error,
            },
            dedupe_key=f"campaign.recipient.finished:{recipient.id}",
        )


def outbox(request: Request) -> Outbox | None:
    """The app's outbox (None without EVENTS_WEBHOOK_URL), which the call log holds."""
    events: Outbox | None = request.app.state.call_records.events
    return events


def _database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def log(event: str, number: str, **fields: object) -> None:
    logger.info(logfmt({"event": event, "number": phone.mask(number), **fields}))


routes = [
    Route("/dnc", add_number, methods=["POST"]),
    Route("/dnc", list_numbers, methods=["GET"]),
    Route("/dnc/import", import_numbers, methods=["POST"]),
    Route("/dnc/{number}", show_number, methods=["GET"]),
    Route("/dnc/{number}", remove_number, methods=["DELETE"]),
]
