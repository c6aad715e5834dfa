"""Server-side campaigns over HTTP. Bearer token on every route.

- `POST /campaigns`: JSON `{name, agent_id?, mode?, recipients: [{phone, variables?,
  id?}], options?}`, or a CSV (`phone` column, the rest dynamic variables) as the
  multipart field `file` (with `name`, `agent_id`, `mode`, `options` as form fields)
  or as a `text/csv` body (those in the query string; `options` as JSON text).
  Invalid rows and duplicates are reported and skipped; a campaign with no valid
  row is a 422. `Idempotency-Key` works as on `POST /calls` (scope "campaigns").
- `GET /campaigns` (state, limit, cursor), `GET /campaigns/{id}`,
  `GET /campaigns/{id}/recipients` (state, limit, cursor),
  `GET /campaigns/{id}/results.csv`.
- `POST /campaigns/{id}/pause`, `/resume`, `/cancel` (409 when the state forbids it).
"""

from __future__ import annotations

import asyncio
import csv
import email.parser
import email.policy
import hashlib
import io
import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from bridge.campaigns import control, intake, queries, store
from bridge.campaigns.control import Conflict, NotFound
from bridge.campaigns.options import CampaignOptions, Mode
from bridge.elevenlabs.client_data import field_errors
from bridge.events import outbox
from bridge.events.outbox import Outbox
from bridge.outbound.idempotency import IdempotencyKeys, KeyConflict, Replay
from bridge.storage.database import Database
from bridge.web import bodies
from bridge.web.auth import api_token
from bridge.web.bodies import BadBody

SCOPE = "campaigns"
# A campaign of 100,000 numbers with a few variables each fits.
MAX_CAMPAIGN_BYTES = 32 * 1024 * 1024
MAX_RECIPIENTS = 200_000
# Skipped rows listed in the answer (all are counted).
MAX_REPORTED = 1000
MAX_ID_LENGTH = 32  # campaigns.id
BAD_KEY = "Idempotency-Key must be 1 to 255 characters."
CSV_TYPES = ("text/csv", "application/csv")


def request_now(request: Request) -> datetime:
    """The time: `app.state.campaign_clock` when a test set one, else the real clock."""
    clock: Callable[[], datetime] | None = getattr(request.app.state, "campaign_clock", None)
    return clock() if clock is not None else datetime.now(UTC)


class Invalid(Exception):
    """`problems` say which fields to fix (422)."""

    def __init__(self, problems: list[dict[str, str]], **extra: Any) -> None:
        self.problems = problems
        self.extra = extra


class CampaignFields(BaseModel):
    """What a campaign is besides its recipients."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    agent_id: str | None = Field(default=None, min_length=1, max_length=255)
    mode: Mode | None = None
    options: CampaignOptions = Field(default_factory=CampaignOptions)

    def resolved_options(self) -> CampaignOptions:
        """The options with the top-level `mode` in them (it is where the worker reads it)."""
        if self.mode is None:
            return self.options
        if self.options.mode is not None and self.options.mode != self.mode:
            raise Invalid([{"field": "mode", "problem": "differs from options.mode"}])
        return self.options.model_copy(update={"mode": self.mode})


@dataclass(frozen=True)
class Submission:
    fields: CampaignFields
    options: CampaignOptions
    rows: list[intake.Row]
    by: str  # how skipped rows are named: "line" (CSV) or "index" (JSON)
    fingerprint_body: dict[str, Any]


# --- POST /campaigns ---------------------------------------------------------------------


@api_token
async def create_campaign(request: Request) -> Response:
    try:
        submission = await _submission(request)
    except BadBody as bad:
        return JSONResponse({"error": bad.message}, status_code=bad.status)
    except Invalid as invalid:
        return _problems(invalid.problems, **invalid.extra)
    key = request.headers.get("idempotency-key")
    keys: IdempotencyKeys = request.app.state.idempotency
    campaign_id = None
    if key is not None:
        if not 1 <= len(key) <= 255:
            return JSONResponse({"error": BAD_KEY}, status_code=400)
        fingerprint = keys.fingerprint(SCOPE, submission.fingerprint_body)
        try:
            replay = await keys.begin(SCOPE, key, fingerprint)
        except KeyConflict as conflict:
            return JSONResponse({"error": conflict.message}, status_code=conflict.status)
        if replay is not None:
            return _replayed(replay)
        # The id follows from the key and the request: a retry after an answer that was
        # lost (or a key released on an interruption) finds the campaign, never a twin.
        campaign_id = (
            store.ID_PREFIX + hashlib.sha256(f"{key}\n{fingerprint}".encode()).hexdigest()[:24]
        )
    try:
        status, body = await create(request, submission, campaign_id)
    except BaseException:
        if key is not None:
            await keys.release(SCOPE, key)  # a retry finds the campaign if it was written
        raise
    if key is not None:
        if status == 201:
            await keys.finish(SCOPE, key, status, body)
        else:
            await keys.release(SCOPE, key)
    return JSONResponse(body, status_code=status)


def _replayed(replay: Replay) -> Response:
    return JSONResponse(
        replay.body, status_code=replay.status, headers={"idempotent-replayed": "true"}
    )


async def create(
    request: Request, submission: Submission, campaign_id: str | None
) -> tuple[int, dict[str, Any]]:
    options = submission.options
    database: Database = request.app.state.database
    now = request_now(request)
    engine = await database.engine()
    report: dict[str, Any] = {}
    try:
        async with engine.begin() as connection:
            made = await intake.intake(connection, submission.rows, options, now)
            report = _report(made, submission.by)
            if not made.recipients:
                return 422, {
                    "error": "Invalid request: recipients: no valid recipient "
                    f"({len(made.invalid)} invalid, {len(made.duplicates)} duplicate)",
                    "problems": [{"field": "recipients", "problem": "no valid recipient"}],
                    **report,
                }
            campaign_id = await store.create_campaign(
                connection,
                name=submission.fields.name,
                agent_id=submission.fields.agent_id,
                options=options,
                recipients=made.recipients,
                now=now,
                campaign_id=campaign_id,
                # secret__ variables are kept sealed under the API token's key.
                sealer=request.app.state.sealer,
            )
            shown = await queries.campaign_in(connection, campaign_id, now)
    except IntegrityError:
        if campaign_id is None:
            raise
        # Written by an earlier try with this Idempotency-Key whose answer was lost.
        shown = await queries.find_campaign(database, campaign_id, now)
        if shown is None:
            raise
    return 201, {**(shown or {}), **report}


def _report(made: intake.Intake, by: str) -> dict[str, Any]:
    how = cast(Any, by)
    return {
        "accepted": len(made.recipients),
        "do_not_call": made.do_not_call,
        "invalid_count": len(made.invalid),
        "invalid": [item.as_json(how) for item in made.invalid[:MAX_REPORTED]],
        "duplicate_count": len(made.duplicates),
        "duplicates": [item.as_json(how) for item in made.duplicates[:MAX_REPORTED]],
    }


async def _submission(request: Request) -> Submission:
    content_type = request.headers.get("content-type", "")
    kind = content_type.split(";", 1)[0].strip().lower()
    raw = await bodies.read(request, MAX_CAMPAIGN_BYTES)
    # Parsing 100,000 rows takes a while: in a thread, so calls keep being answered.
    if kind == "multipart/form-data":
        form, data = await asyncio.to_thread(multipart_form, content_type, raw)
        return await asyncio.to_thread(csv_submission, form, data)
    if kind in CSV_TYPES:
        return await asyncio.to_thread(csv_submission, dict(request.query_params), raw)
    if kind not in ("application/json", ""):
        raise BadBody(
            415,
            "Send the campaign as application/json, as text/csv, or as multipart/form-data "
            "with the CSV in the field 'file'.",
        )
    body_data = await asyncio.to_thread(bodies.parse_json_object, raw)
    recipients = body_data.pop("recipients", None)
    fields = _fields(body_data)
    if not isinstance(recipients, list) or not recipients:
        raise Invalid([{"field": "recipients", "problem": "required: a non-empty list"}])
    if len(recipients) > MAX_RECIPIENTS:
        raise Invalid([{"field": "recipients", "problem": f"at most {MAX_RECIPIENTS}"}])
    body = {**body_data, "recipients": recipients}
    return Submission(
        fields, fields.resolved_options(), intake.json_rows(recipients), "index", body
    )


def csv_submission(given: Mapping[str, str], data: bytes) -> Submission:
    values: dict[str, Any] = {
        name: given[name] for name in ("name", "agent_id", "mode") if given.get(name)
    }
    unknown = sorted(set(given) - {"name", "agent_id", "mode", "options"})
    if unknown:
        raise Invalid([{"field": name, "problem": "unknown field"} for name in unknown])
    if given.get("options"):
        try:
            values["options"] = json.loads(given["options"])
        except ValueError:
            raise Invalid([{"field": "options", "problem": "must be a JSON object"}]) from None
    fields = _fields(values)
    options = fields.resolved_options()
    try:
        rows = intake.csv_rows(data)
    except intake.BadFile as bad:
        where = f"line {bad.line}: " if bad.line is not None else ""
        raise Invalid([{"field": "file", "problem": f"{where}{bad.message}"}]) from None
    if len(rows) > MAX_RECIPIENTS:
        raise Invalid([{"field": "file", "problem": f"at most {MAX_RECIPIENTS} rows"}])
    fingerprint = {"csv": hashlib.sha256(data).hexdigest(), **values}
    return Submission(fields, options, rows, "line", fingerprint)


def _fields(values: dict[str, Any]) -> CampaignFields:
    try:
        return CampaignFields.model_validate(values)
    except ValidationError as error:
        raise Invalid(field_errors(error)) from None


async def read_upload(request: Request, limit: int) -> tuple[dict[str, str], bytes]:
    """A console form with a file (its text fields, the `file` field's bytes), read up to
    `limit` bytes. `BadBody` when too large or not multipart; `Invalid` without a file."""
    content_type = request.headers.get("content-type", "")
    raw = await bodies.read(request, limit)
    if content_type.split(";", 1)[0].strip().lower() != "multipart/form-data":
        raise BadBody(415, "Send the form as a file upload (multipart/form-data).")
    return await asyncio.to_thread(multipart_form, content_type, raw)


def multipart_form(content_type: str, raw: bytes) -> tuple[dict[str, str], bytes]:
    """(the text fields, the `file` field's bytes) of a multipart/form-data body.

    Parsed with the standard library's MIME parser over the capped body: the server
    needs no multipart package for one file and a few fields."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    if not message.is_multipart():
        raise BadBody(400, "Request body is not valid multipart/form-data.")
    fields: dict[str, str] = {}
    data: bytes | None = None
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        content = payload if isinstance(payload, bytes) else b""
        if name == "file":
            data = content
        else:
            fields[name] = content.decode("utf-8", errors="replace")
    if data is None:
        raise Invalid([{"field": "file", "problem": "required: the contacts CSV"}])
    return fields, data


def _problems(problems: list[dict[str, str]], **extra: Any) -> JSONResponse:
    summary = "; ".join(f"{item['field']}: {item['problem']}" for item in problems)
    return JSONResponse(
        {"error": f"Invalid request: {summary}", "problems": problems, **extra}, status_code=422
    )


# --- reading -----------------------------------------------------------------------------


def _bad_filter(bad: queries.BadFilter) -> JSONResponse:
    return JSONResponse({"error": bad.message, "field": bad.field}, status_code=400)


def plausible(campaign_id: str) -> bool:
    """Could be an id: PostgreSQL refuses a NUL in a query, and none is longer."""
    return 0 < len(campaign_id) <= MAX_ID_LENGTH and "\x00" not in campaign_id


def _no_campaign(campaign_id: str) -> JSONResponse:
    return JSONResponse({"error": f"No campaign {campaign_id!r}."}, status_code=404)


@api_token
async def list_campaigns(request: Request) -> Response:
    """Newest first: `{"campaigns": [...], "next_cursor": str | null}`."""
    try:
        state, limit, after = queries.parse_campaign_filter(request.query_params)
    except queries.BadFilter as bad:
        return _bad_filter(bad)
    page = await queries.list_campaigns(
        request.app.state.database, state=state, limit=limit, after=after, now=request_now(request)
    )
    return JSONResponse({"campaigns": page.items, "next_cursor": page.next_cursor})


@api_token
async def show_campaign(request: Request) -> Response:
    campaign_id: str = request.path_params["campaign_id"]
    if not plausible(campaign_id):
        return _no_campaign(campaign_id)
    shown = await queries.find_campaign(
        request.app.state.database, campaign_id, request_now(request)
    )
    if shown is None:
        return _no_campaign(campaign_id)
    return JSONResponse(shown)


@api_token
async def list_recipients(request: Request) -> Response:
    """In the order given: `{"recipients": [...], "next_cursor": str | null}`."""
    campaign_id: str = request.path_params["campaign_id"]
    if not plausible(campaign_id):
        return _no_campaign(campaign_id)
    try:
        state, limit, after = queries.parse_recipient_filter(request.query_params)
    except queries.BadFilter as bad:
        return _bad_filter(bad)
    page = await queries.list_recipients(
        request.app.state.database, campaign_id, state=state, limit=limit, after=after
    )
    if page is None:
        return _no_campaign(campaign_id)
    return JSONResponse({"recipients": page.items, "next_cursor": page.next_cursor})


@api_token
async def results_csv(request: Request) -> Response:
    campaign_id: str = request.path_params["campaign_id"]
    if not plausible(campaign_id):
        return _no_campaign(campaign_id)
    database: Database = request.app.state.database
    if not await queries.campaign_exists(database, campaign_id):
        return _no_campaign(campaign_id)
    return results_response(database, campaign_id)


def results_response(
    database: Database, campaign_id: str, headers: Mapping[str, str] | None = None
) -> StreamingResponse:
    """The results file of a campaign that exists (also served by the console)."""

    async def lines() -> AsyncIterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        async for row in queries.result_rows(database, campaign_id):
            writer.writerow(row)
            if buffer.tell() > 64 * 1024:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    filename = f"{campaign_id}.results.csv"
    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={**(headers or {}), "content-disposition": f'attachment; filename="{filename}"'},
    )


# --- pause, resume, cancel ---------------------------------------------------------------


def _controlling(action: control.Action) -> Any:
    @api_token
    async def endpoint(request: Request) -> Response:
        campaign_id: str = request.path_params["campaign_id"]
        if not plausible(campaign_id):
            return _no_campaign(campaign_id)
        events: Outbox | None = request.app.state.call_records.events
        try:
            shown = await control.control(
                request.app.state.database,
                campaign_id,
                action,
                events=events,
                now=request_now(request),
            )
        except NotFound:
            return _no_campaign(campaign_id)
        except Conflict as conflict:
            return JSONResponse(
                {"error": conflict.message, "state": conflict.state}, status_code=409
            )
        if events is not None:
            outbox.notify()  # the sender wakes up for the event now committed
        return JSONResponse(shown)

    endpoint.__name__ = f"{action}_campaign"
    return endpoint


routes = [
    Route("/campaigns", create_campaign, methods=["POST"]),
    Route("/campaigns", list_campaigns, methods=["GET"]),
    Route("/campaigns/{campaign_id}", show_campaign, methods=["GET"]),
    Route("/campaigns/{campaign_id}/recipients", list_recipients, methods=["GET"]),
    Route("/campaigns/{campaign_id}/results.csv", results_csv, methods=["GET"]),
    *(
        Route(f"/campaigns/{{campaign_id}}/{action}", _controlling(action), methods=["POST"])
        for action in control.ACTIONS
    ),
]
