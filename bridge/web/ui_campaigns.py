"""The console's campaign pages (/ui/campaigns...), behind sign-in (bridge.web.ui).

A campaign is made in two steps: the upload (a CSV and the options) is parsed and
shown as a preview; "Start campaign" then creates it through the same path as
`POST /campaigns` (bridge.web.campaigns_api). Between the two, the upload travels
sealed (encrypted and authenticated, bridge.outbound.sealing) in a hidden field, so
the browser never sends the file twice and nothing is kept on disk; the campaign's id
follows from the sealed upload, so a double click cannot make two campaigns.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from bridge.campaigns import control, intake, queries, store
from bridge.campaigns.control import Conflict, NotFound
from bridge.campaigns.states import FINAL, RECIPIENT_STATES, RETRY_OUTCOMES
from bridge.events import outbox
from bridge.outbound.sealing import Sealer
from bridge.routing.schedule import WEEKDAYS
from bridge.settings import Settings
from bridge.web import bodies, campaigns_api
from bridge.web.bodies import BadBody
from bridge.web.campaigns_api import Invalid
from bridge.web.ui import refusal, signed_in
from bridge.web.ui_render import HEADERS, local, message, render

# Larger files go through `POST /campaigns` or `callbridge campaign`: the preview
# carries the upload back sealed in the page.
MAX_UPLOAD_BYTES = 2 * 1024 * 1024
MAX_CONFIRM_BYTES = 4 * MAX_UPLOAD_BYTES
PREVIEW_ROWS = 20
PREVIEW_PROBLEMS = 200
# How long a preview can be confirmed.
SEALED_SECONDS = 3600
PAGE_SIZE = 50
LIVE_STATES = ("active", "paused")
DEFAULTS = {
    "name": "",
    "agent_id": "",
    "open": "09:00",
    "close": "20:00",
    "timezone": "",
    "rate": "1",
    "max_in_flight": "10",
    "retry_attempts": "2",
    "retry_delay": "3600",
    "start_at": "",
}
CHECKED_DEFAULT = {
    **{f"day_{day}": day != "sun" for day in WEEKDAYS},
    **{f"retry_{outcome}": outcome in ("busy", "no-answer") for outcome in RETRY_OUTCOMES},
    "allow_outside": False,
    "machine_detection": False,
}
FIELD_NAMES = {
    "name": "Name",
    "agent_id": "Agent id",
    "options.calling_hours.open": "Calling hours open",
    "options.calling_hours.close": "Calling hours close",
    "options.calling_hours.days": "Days",
    "options.calling_hours": "Calling hours",
    "options.timezone": "Time zone",
    "options.rate": "Rate",
    "options.max_in_flight": "Calls at once",
    "options.retry.attempts": "Retries",
    "options.retry.delay": "Retry delay",
    "options.retry.on": "Retry on",
    "options.start_at": "Start at",
    "options": "Options",
    "file": "CSV file",
}


def _zone(request: Request) -> ZoneInfo:
    settings: Settings = request.app.state.settings
    return ZoneInfo(settings.ui_timezone)


def _now(request: Request) -> datetime:
    return campaigns_api.request_now(request)


def _sealer(request: Request) -> Sealer:
    sealer: Sealer = request.app.state.sealer
    return sealer


def _page(
    request: Request, template: str, title: str, status: int = 200, **context: Any
) -> Response:
    return render(request, template, {"title": title, "signed_in": True, **context}, status)


# --- progress, as the pages and their script show it ---------------------------------------


def progress(campaign: dict[str, Any]) -> dict[str, Any]:
    """A campaign summary with what its progress bar shows: recipients done, of how many."""
    counts: dict[str, int] = campaign["counts"]
    done = sum(count for state, count in counts.items() if state in FINAL)
    total = campaign["recipient_count"] or sum(counts.values())
    percent = int(100 * done / total) if total else 100
    return {**campaign, "done": done, "total": total, "percent": percent}


def _live(campaign: dict[str, Any], zone: ZoneInfo) -> dict[str, Any]:
    shown = progress(campaign)
    return {
        "id": shown["id"],
        "name": shown["name"],
        "state": shown["state"],
        "done": shown["done"],
        "total": shown["total"],
        "percent": shown["percent"],
        "counts": shown["counts"],
        "eta": local(shown["eta"], zone, "%Y-%m-%d %H:%M") if shown["eta"] else "",
    }


async def running(request: Request) -> list[dict[str, Any]]:
    """Active and paused campaigns, newest first (the dashboard's panel)."""
    found: list[dict[str, Any]] = []
    for state in LIVE_STATES:
        page = await queries.list_campaigns(
            request.app.state.database, state=state, limit=20, now=_now(request)
        )
        found.extend(page.items)
    found.sort(key=lambda item: item["created_at"] or "", reverse=True)
    return [progress(item) for item in found]


@signed_in
async def running_json(request: Request) -> Response:
    zone = _zone(request)
    body = {
        "at": local(datetime.now(UTC), zone, "%H:%M:%S"),
        "campaigns": [_live(item, zone) for item in await running(request)],
    }
    return JSONResponse(body, headers=HEADERS)


@signed_in
async def progress_json(request: Request) -> Response:
    campaign_id: str = request.path_params["campaign_id"]
    shown = await _find(request, campaign_id)
    if shown is None:
        return JSONResponse({"error": "no such campaign"}, status_code=404, headers=HEADERS)
    zone = _zone(request)
    body = {"at": local(datetime.now(UTC), zone, "%H:%M:%S"), "campaigns": [_live(shown, zone)]}
    return JSONResponse(body, headers=HEADERS)


# --- the list -------------------------------------------------------------------------------


@signed_in
async def campaigns_page(request: Request) -> Response:
    try:
        state, _, after = queries.parse_campaign_filter(request.query_params)
    except queries.BadFilter as bad:
        return message(request, "Bad request", bad.message, 400, signed_in=True)
    page = await queries.list_campaigns(
        request.app.state.database, state=state, limit=PAGE_SIZE, after=after, now=_now(request)
    )
    next_href = None
    if page.next_cursor:
        next_href = "/ui/campaigns?" + urlencode(
            {**({"state": state} if state else {}), "cursor": page.next_cursor}
        )
    return _page(
        request,
        "campaigns.html",
        "Campaigns",
        campaigns=[progress(item) for item in page.items],
        state=state or "",
        states=("active", "paused", "cancelled", "finished"),
        next_href=next_href,
        first_href="/ui/campaigns" if after else None,
    )


# --- new: form, preview, start ------------------------------------------------------------


def _options(form: dict[str, str], zone: ZoneInfo) -> dict[str, Any]:
    """The options form as `POST /campaigns` options (validated there)."""
    options: dict[str, Any] = {
        "calling_hours": {
            "open": form["open"],
            "close": form["close"],
            "days": [day for day in WEEKDAYS if form.get(f"day_{day}")],
        },
        "allow_outside_legal_hours": bool(form.get("allow_outside")),
        "rate": form["rate"],
        "max_in_flight": form["max_in_flight"],
        "retry": {
            "on": [outcome for outcome in RETRY_OUTCOMES if form.get(f"retry_{outcome}")],
            "attempts": form["retry_attempts"],
            "delay": form["retry_delay"],
        },
        "machine_detection": bool(form.get("machine_detection")),
    }
    if form["timezone"]:
        options["timezone"] = form["timezone"]
    if form["start_at"]:
        try:
            moment = datetime.fromisoformat(form["start_at"])
        except ValueError:
            raise Invalid(
                [{"field": "options.start_at", "problem": "not a date and time"}],
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone)
        options["start_at"] = moment.isoformat()
    return options


def _given(form: dict[str, str], zone: ZoneInfo) -> dict[str, str]:
    """The fields as `POST /campaigns` takes them with a CSV (options as JSON text)."""
    given = {"name": form["name"], "options": json.dumps(_options(form, zone))}
    if form["agent_id"]:
        given["agent_id"] = form["agent_id"]
    return given


def _form_values(fields: dict[str, str] | None) -> dict[str, Any]:
    values: dict[str, Any] = dict(DEFAULTS)
    if fields is None:
        values.update(CHECKED_DEFAULT)
        return values
    values.update({name: fields.get(name, "").strip() for name in DEFAULTS})
    values.update({name: bool(fields.get(name)) for name in CHECKED_DEFAULT})
    return values


def _new_page(
    request: Request, form: dict[str, Any], problems: list[dict[str, str]], status: int = 200
) -> Response:
    shown = [
        {"field": FIELD_NAMES.get(item["field"], item["field"]), "problem": item["problem"]}
        for item in problems
    ]
    return _page(
        request,
        "campaign_new.html",
        "New campaign",
        status,
        form=form,
        weekdays=WEEKDAYS,
        retry_outcomes=RETRY_OUTCOMES,
        problems=shown,
        max_upload_mb=MAX_UPLOAD_BYTES // (1024 * 1024),
    )


@signed_in
async def new_form(request: Request) -> Response:
    return _new_page(request, _form_values(None), [])


@signed_in
async def preview(request: Request) -> Response:
    try:
        fields, data = await campaigns_api.read_upload(request, MAX_UPLOAD_BYTES + 64 * 1024)
    except BadBody as bad:
        return message(request, "Upload refused", bad.message, bad.status, signed_in=True)
    except Invalid as invalid:
        return _new_page(request, _form_values(None), invalid.problems, 400)
    refused = refusal(request, fields)
    if refused is not None:
        return refused
    form = _form_values(fields)
    zone = _zone(request)
    try:
        given = _given(form, zone)
        submission = await asyncio.to_thread(campaigns_api.csv_submission, given, data)
    except Invalid as invalid:
        return _new_page(request, form, invalid.problems, 400)
    engine = await request.app.state.database.engine()
    async with engine.connect() as connection:
        made = await intake.intake(connection, submission.rows, submission.options, _now(request))
    sealed = _sealer(request).seal_text(
        json.dumps({"at": time.time(), "given": given, "csv": base64.b64encode(data).decode()})
    )
    rows: list[dict[str, Any]] = [
        {
            "line": recipient.line,
            "phone": recipient.phone,
            "zones": ", ".join(recipient.time_zones),
            "state": recipient.state,
            "variables": queries.shown_variables(recipient.variables),
        }
        for recipient in made.recipients[:PREVIEW_ROWS]
    ]
    columns = sorted({name for row in rows for name in row["variables"]})
    return _page(
        request,
        "campaign_preview.html",
        "New campaign: preview",
        200 if made.recipients else 422,
        name=form["name"],
        sealed=sealed,
        rows=rows,
        columns=columns,
        accepted=len(made.recipients),
        callable=made.callable,
        do_not_call=made.do_not_call,
        invalid=[item.as_json("line") for item in made.invalid[:PREVIEW_PROBLEMS]],
        invalid_count=len(made.invalid),
        duplicates=[item.as_json("line") for item in made.duplicates[:PREVIEW_PROBLEMS]],
        duplicate_count=len(made.duplicates),
        options=options_in_words(submission.options.model_dump(mode="json"), zone),
    )


def _opened(request: Request, sealed: str) -> tuple[dict[str, str], bytes] | None:
    """The upload a preview sealed, while it is fresh; None otherwise."""
    try:
        upload = json.loads(_sealer(request).open_text(sealed))
        if time.time() - float(upload["at"]) > SEALED_SECONDS:
            return None
        return dict(upload["given"]), base64.b64decode(upload["csv"])
    except (ValueError, KeyError, TypeError):
        return None


@signed_in
async def start(request: Request) -> Response:
    try:
        raw = await bodies.read(request, MAX_CONFIRM_BYTES)
    except BadBody as bad:
        return message(request, "Refused", bad.message, bad.status, signed_in=True)
    fields = {name: values[0] for name, values in parse_qs(raw.decode("utf-8", "replace")).items()}
    refused = refusal(request, fields)
    if refused is not None:
        return refused
    sealed = fields.get("upload", "")
    opened = _opened(request, sealed)
    if opened is None:
        return message(
            request,
            "Preview expired",
            "This preview is out of date or was not made here: upload the file again.",
            400,
            signed_in=True,
        )
    given, data = opened
    try:
        submission = await asyncio.to_thread(campaigns_api.csv_submission, given, data)
    except Invalid as invalid:
        text = "; ".join(f"{item['field']}: {item['problem']}" for item in invalid.problems)
        return message(request, "Not started", text, 400, signed_in=True)
    # The same preview posted twice (a double click, a reload) names the same campaign.
    campaign_id = store.ID_PREFIX + hashlib.sha256(sealed.encode()).hexdigest()[:24]
    status, body = await campaigns_api.create(request, submission, campaign_id)
    if status != 201:
        return message(request, "Not started", str(body.get("error")), status, signed_in=True)
    return RedirectResponse(f"/ui/campaigns/{body['id']}", status_code=303, headers=HEADERS)


# --- one campaign --------------------------------------------------------------------------


async def _find(request: Request, campaign_id: str) -> dict[str, Any] | None:
    if not campaigns_api.plausible(campaign_id):
        return None
    return await queries.find_campaign(request.app.state.database, campaign_id, _now(request))


def options_in_words(options: dict[str, Any], zone: ZoneInfo) -> list[tuple[str, str]]:
    """A campaign's options as (what, in words) pairs."""
    hours = options.get("calling_hours") or {}
    days = ", ".join(hours.get("days") or [])
    retry = options.get("retry") or {}
    retry_on = ", ".join(retry.get("on") or [])
    where = options.get("timezone") or "each callee's local time"
    words = [
        ("Calling hours", f"{hours.get('open', '')[:5]}-{hours.get('close', '')[:5]} on {days}"),
        ("Read in", where),
        (
            "Outside 08:00-21:00",
            "allowed" if options.get("allow_outside_legal_hours") else "not allowed",
        ),
        (
            "Pace",
            f"{options.get('rate')} calls a second, at most {options.get('max_in_flight')} at once",
        ),
        (
            "Retries",
            f"up to {retry.get('attempts')} on {retry_on}, {retry.get('delay')} s apart"
            if retry.get("attempts") and retry_on
            else "none",
        ),
        ("Answering machines", "detected" if options.get("machine_detection") else "not detected"),
        (
            "Starts",
            local(options["start_at"], zone, "%Y-%m-%d %H:%M %Z")
            if options.get("start_at")
            else "at once",
        ),
    ]
    return words


async def _campaign_page(
    request: Request, campaign_id: str, error: str = "", status: int = 200
) -> Response:
    shown = await _find(request, campaign_id)
    if shown is None:
        return message(request, "Not found", f"No campaign {campaign_id}.", 404, signed_in=True)
    try:
        state, _, after = queries.parse_recipient_filter(request.query_params)
    except queries.BadFilter as bad:
        state, after, error, status = None, None, bad.message, 400
    page = await queries.list_recipients(
        request.app.state.database, campaign_id, state=state, limit=PAGE_SIZE, after=after
    )
    recipients = page.items if page else []
    base = f"/ui/campaigns/{campaign_id}"
    next_href = None
    if page and page.next_cursor:
        next_href = (
            base
            + "?"
            + urlencode({**({"state": state} if state else {}), "cursor": page.next_cursor})
        )
    zone = _zone(request)
    campaign = progress(shown)
    return _page(
        request,
        "campaign.html",
        f"Campaign {campaign['name']}",
        status,
        campaign=campaign,
        options=options_in_words(shown.get("options") or {}, zone),
        recipients=recipients,
        recipient_states=RECIPIENT_STATES,
        state=state or "",
        next_href=next_href,
        first_href=base + (f"?state={state}" if state else "") if after else None,
        error=error,
        actions=control.ACTIONS,
    )


@signed_in
async def campaign_page(request: Request) -> Response:
    return await _campaign_page(request, request.path_params["campaign_id"])


def _controlling(action: control.Action) -> Any:
    @signed_in
    async def endpoint(request: Request) -> Response:
        campaign_id: str = request.path_params["campaign_id"]
        try:
            raw = await bodies.read(request, 4096)
        except BadBody as bad:
            return message(request, "Refused", bad.message, bad.status, signed_in=True)
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        refused = refusal(request, form)
        if refused is not None:
            return refused
        if not campaigns_api.plausible(campaign_id):
            return message(request, "Not found", f"No campaign {campaign_id}.", 404, signed_in=True)
        events = request.app.state.call_records.events
        try:
            await control.control(
                request.app.state.database, campaign_id, action, events=events, now=_now(request)
            )
        except NotFound:
            return message(request, "Not found", f"No campaign {campaign_id}.", 404, signed_in=True)
        except Conflict as conflict:
            return await _campaign_page(request, campaign_id, conflict.message, 409)
        if events is not None:
            outbox.notify()
        return RedirectResponse(f"/ui/campaigns/{campaign_id}", status_code=303, headers=HEADERS)

    endpoint.__name__ = f"ui_{action}_campaign"
    return endpoint


@signed_in
async def results_csv(request: Request) -> Response:
    campaign_id: str = request.path_params["campaign_id"]
    database = request.app.state.database
    if not campaigns_api.plausible(campaign_id) or not await queries.campaign_exists(
        database, campaign_id
    ):
        return message(request, "Not found", f"No campaign {campaign_id}.", 404, signed_in=True)
    return campaigns_api.results_response(database, campaign_id, HEADERS)


routes = [
    Route("/ui/campaigns", campaigns_page, methods=["GET"]),
    Route("/ui/campaigns/new", new_form, methods=["GET"]),
    Route("/ui/campaigns/new", preview, methods=["POST"]),
    Route("/ui/campaigns/start", start, methods=["POST"]),
    Route("/ui/campaigns/running.json", running_json, methods=["GET"]),
    Route("/ui/campaigns/{campaign_id}", campaign_page, methods=["GET"]),
    Route("/ui/campaigns/{campaign_id}/progress.json", progress_json, methods=["GET"]),
    Route("/ui/campaigns/{campaign_id}/results.csv", results_csv, methods=["GET"]),
    *(
        Route(f"/ui/campaigns/{{campaign_id}}/{action}", _controlling(action), methods=["POST"])
        for action in control.ACTIONS
    ),
]
