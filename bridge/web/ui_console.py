"""The console's pages (/ui/*), all behind sign-in (bridge.web.ui): the dashboard and
its live JSON, the calls list with filters, paging both ways and CSV export, a call
read as a conversation, and the rules tester (the dry run of `callbridge route`).

Endpoints are thin: parse, ask bridge.calllog (or the routing table), render a
template (bridge.web.ui_render).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from bridge import phone
from bridge.answer.actions import redact, register_request
from bridge.answer.actions import render as render_twiml
from bridge.call import Call
from bridge.calllog import dashboard as figures
from bridge.calllog.queries import (
    BadFilter,
    CallFilter,
    decode_cursor,
    find_call,
    list_calls,
)
from bridge.calllog.records import STATUS_RANK
from bridge.calllog.timeline import FALLBACK_REASONS
from bridge.elevenlabs.register_request import REGISTER_CALL_PATH
from bridge.routing import RoutingTable
from bridge.routing.rules import AgentAction
from bridge.settings import Settings
from bridge.web import ui_campaigns, ui_charts
from bridge.web.ui import signed_in
from bridge.web.ui_render import HEADERS, local, message, render

PAGE_SIZE = 50
CSV_MAX_ROWS = 100_000
SUMMARY_CHARS = 200
FORM_FIELDS = ("direction", "outcome", "status", "rule", "number", "from", "to", "voicemail")
TWILIO_CALL = (
    "https://console.twilio.com/us1/monitor/logs/calls"
    "?frameUrl=%2Fconsole%2Fvoice%2Fcalls%2Flogs%2F{sid}"
)
ELEVENLABS_CONVERSATION = "https://elevenlabs.io/app/agents/history/{id}"
AUDIO_LABELS = {
    "voicemail": "Voicemail",
    "recording": "Call recording",
    "post_call": "Post-call audio",
}


def _zone(request: Request) -> ZoneInfo:
    settings: Settings = request.app.state.settings
    return ZoneInfo(settings.ui_timezone)


def _page(request: Request, name: str, title: str, **context: Any) -> Response:
    return render(request, name, {"title": title, "signed_in": True, **context})


# Dashboard.


@signed_in
async def dashboard_page(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    board = await figures.dashboard(request.app.state.database, settings.ui_timezone)
    segments, ticks, labels = ui_charts.days_chart(board.days, board.by_day)
    reason_bars, reason_height = ui_charts.bars(
        [(FALLBACK_REASONS.get(name, name), count) for name, count in board.fallback_reasons]
    )
    rule_bars, rule_height = ui_charts.bars(board.rules)
    return _page(
        request,
        "dashboard.html",
        "Dashboard",
        outcomes=figures.OUTCOMES,
        labels=figures.OUTCOME_LABELS,
        today=board.totals(1),
        week=board.totals(7),
        month=board.totals(figures.DAYS),
        segments=segments,
        ticks=ticks,
        day_labels=labels,
        chart_width=ui_charts.WIDTH,
        chart_height=ui_charts.HEIGHT,
        chart_left=ui_charts.LEFT,
        reason_bars=reason_bars,
        reason_height=reason_height,
        rule_bars=rule_bars,
        rule_height=rule_height,
        latency=board.latency,
        voicemails_today=board.voicemails_today,
        voicemails_week=board.voicemails_week,
        live=board.live,
        campaigns=await ui_campaigns.running(request),
    )


@signed_in
async def live_json(request: Request) -> Response:
    """The calls in progress, for the dashboard's script."""
    zone = _zone(request)
    engine_calls = await figures.live_calls(request.app.state.database)
    body = {
        "at": local(datetime.now(UTC), zone, "%H:%M:%S"),
        "calls": [
            {
                "key": call["call_sid"] or call["id"],
                "started": local(call["created_at"], zone, "%H:%M:%S"),
                "from": call["from"],
                "to": call["to"],
                "rule": call["rule"],
                "status": call["status"],
            }
            for call in engine_calls
        ],
    }
    return JSONResponse(body, headers=HEADERS)


# Calls.


def _form(params: Mapping[str, str]) -> dict[str, str]:
    return {name: params.get(name, "").strip() for name in FORM_FIELDS}


def _day(text: str, field: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadFilter(field, f"{field} must be a date like 2026-03-01") from None


def console_filter(params: Mapping[str, str], zone: ZoneInfo, limit: int = PAGE_SIZE) -> CallFilter:
    """The calls list's form as a CallFilter. Raises BadFilter."""
    form = _form(params)
    if form["direction"] and form["direction"] not in ("inbound", "outbound"):
        raise BadFilter("direction", "direction must be inbound or outbound")
    if form["outcome"] and form["outcome"] not in figures.OUTCOMES:
        raise BadFilter("outcome", f"outcome must be one of {', '.join(figures.OUTCOMES)}")
    if form["status"] and form["status"] not in STATUS_RANK:
        raise BadFilter("status", "unknown status")
    if len(form["rule"]) > 100 or "\x00" in form["rule"]:
        raise BadFilter("rule", "rule must be at most 100 characters")
    number = "".join(c for c in form["number"] if c in "+0123456789")
    if form["number"] and not number:
        raise BadFilter("number", "number search takes digits (and +)")
    first, last = _day(form["from"], "from"), _day(form["to"], "to")
    since = datetime.combine(first, time(), zone).astimezone(UTC) if first else None
    until = (
        datetime.combine(last + timedelta(days=1), time(), zone).astimezone(UTC) if last else None
    )
    if since and until and until <= since:
        raise BadFilter("to", "the To date is before the From date")
    after = params.get("after")
    before = params.get("before")
    return CallFilter(
        direction=form["direction"] or None,
        status=form["status"] or None,
        rule=form["rule"] or None,
        since=since,
        until=until,
        has_voicemail=True if form["voicemail"] == "yes" else None,
        limit=limit,
        after=decode_cursor(after) if after else None,
        before=decode_cursor(before) if before else None,
        outcome=form["outcome"] or None,
        number_contains=number or None,
    )


def _href(path: str, form: dict[str, str], **extra: str) -> str:
    params = {name: value for name, value in form.items() if value}
    params.update(extra)
    return f"{path}?{urlencode(params)}" if params else path


def _shown(call: dict[str, Any]) -> dict[str, Any]:
    summary = call.get("summary") or ""
    if len(summary) > SUMMARY_CHARS:
        summary = summary[:SUMMARY_CHARS] + "…"
    return {
        **call,
        "key": call.get("call_sid") or call["id"],
        "console_outcome": figures.console_outcome(call.get("outcome"), call.get("status")),
        "summary_short": summary,
    }


@signed_in
async def calls_page(request: Request) -> Response:
    form = _form(request.query_params)
    context: dict[str, Any] = {
        "form": form,
        "directions": ("inbound", "outbound"),
        "outcomes": figures.OUTCOMES,
        "labels": figures.OUTCOME_LABELS,
        "statuses": tuple(STATUS_RANK),
        "csv_href": _href("/ui/calls.csv", form),
        "calls": [],
        "prev_href": None,
        "next_href": None,
    }
    try:
        wanted = console_filter(request.query_params, _zone(request))
    except BadFilter as bad:
        return render(
            request,
            "calls.html",
            {"title": "Calls", "signed_in": True, "error": bad.message, **context},
            400,
        )
    page = await list_calls(request.app.state.database, wanted)
    context["calls"] = [_shown(call) for call in page.calls]
    if page.next_cursor:
        context["next_href"] = _href("/ui/calls", form, after=page.next_cursor)
    if page.prev_cursor:
        context["prev_href"] = _href("/ui/calls", form, before=page.prev_cursor)
    return _page(request, "calls.html", "Calls", **context)


CSV_COLUMNS = (
    "time",
    "call_sid",
    "direction",
    "from",
    "to",
    "rule",
    "outcome",
    "status",
    "duration_s",
    "summary",
)


def _cell(value: object) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "@", "\t", "\r") or (
        text[:1] in ("+", "-") and not phone.is_e164(text) and not text[1:].isdigit()
    ):
        return "'" + text
    return text


@signed_in
async def calls_csv(request: Request) -> Response:
    zone = _zone(request)
    try:
        wanted = console_filter(request.query_params, zone, limit=500)
    except BadFilter as bad:
        return message(request, "Bad request", bad.message, 400, signed_in=True)
    database = request.app.state.database

    async def rows() -> AsyncIterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        sent, cursor = 0, wanted.after
        while True:
            page = await list_calls(
                database,
                CallFilter(**{**wanted.__dict__, "after": cursor, "before": None}),
            )
            for call in page.calls:
                writer.writerow(
                    _cell(value)
                    for value in (
                        local(call["created_at"], zone, "%Y-%m-%d %H:%M:%S %Z"),
                        call["call_sid"],
                        call["direction"],
                        call["from"],
                        call["to"],
                        call["rule"],
                        figures.console_outcome(call["outcome"], call["status"]),
                        call["status"],
                        call["duration"],
                        call["summary"],
                    )
                )
            sent += len(page.calls)
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            if page.next_cursor is None or sent >= CSV_MAX_ROWS:
                return
            cursor = decode_cursor(page.next_cursor)

    stamp = datetime.now(zone).strftime("%Y%m%d-%H%M")
    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={
            **HEADERS,
            "content-disposition": f'attachment; filename="calls-{stamp}.csv"',
        },
    )


# One call.


def _offset(seconds: object) -> str:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        return ""
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02}"


def conversation(transcript: list[Any]) -> list[dict[str, str]]:
    """Turns as the page shows them: who, the offset in the call, the words."""
    turns = []
    for turn in transcript:
        if not isinstance(turn, dict):
            turns.append({"side": "other", "who": "", "offset": "", "text": _compact(turn)})
            continue
        role = str(turn.get("role") or "")
        text = turn.get("message")
        if text is None:
            shown = ("role", "message", "time_in_call_secs")
            rest = {k: v for k, v in turn.items() if k not in shown}
            text = _compact(rest)
        side = role if role in ("agent", "user") else "other"
        who = {"agent": "Agent", "user": "Caller"}.get(role, role)
        turns.append(
            {
                "side": side,
                "who": who,
                "offset": _offset(turn.get("time_in_call_secs")),
                "text": str(text),
            }
        )
    return turns


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def results(analysis: object) -> list[dict[str, str]]:
    """Data collection and evaluation results as rows: name, value, why."""
    if not isinstance(analysis, dict):
        return []
    rows = []
    for key in ("data_collection_results", "evaluation_criteria_results"):
        found = analysis.get(key)
        if not isinstance(found, dict):
            continue
        for name, item in found.items():
            if isinstance(item, dict):
                value = item.get("value", item.get("result"))
                why = item.get("rationale") or ""
            else:
                value, why = item, ""
            shown = value if isinstance(value, str) else _compact(value)
            rows.append({"name": str(name).replace("_", " "), "value": shown, "why": str(why)})
    success = analysis.get("call_successful")
    if isinstance(success, str):
        rows.insert(0, {"name": "call successful", "value": success, "why": ""})
    return rows


@signed_in
async def call_page(request: Request) -> Response:
    key: str = request.path_params["key"]
    record = await find_call(request.app.state.database, key)
    if record is None:
        return message(request, "Not found", f"No call {key} in the call log.", 404, signed_in=True)
    outcome = figures.console_outcome(record["outcome"], record["status"])
    reason = next(
        (
            event["data"].get("reason")
            for event in record["events"]
            if event["kind"] == "fallback" and isinstance(event["data"], dict)
        ),
        None,
    )
    ui_key = quote(str(record["call_sid"] or record["id"]), safe="")
    audio = [
        {
            "label": AUDIO_LABELS.get(item["kind"], str(item["kind"]).replace("_", " ")),
            "src": f"/ui/calls/{ui_key}/audio/{quote(item['file'], safe='')}",
            "duration": item.get("duration"),
        }
        for item in record["audio"]
    ]
    analysis = record.get("analysis")
    summary = record.get("summary") or (
        analysis.get("transcript_summary") if isinstance(analysis, dict) else None
    )
    sid = record.get("call_sid")
    return _page(
        request,
        "call.html",
        f"Call {sid or record['id']}",
        call=record,
        outcome=outcome,
        outcome_label=figures.OUTCOME_LABELS[outcome],
        fallback_reason=FALLBACK_REASONS.get(str(reason), reason) if reason else None,
        audio=audio,
        timeline=record["timeline"],
        transcript=conversation(record["transcript"]),
        summary=summary,
        results=results(analysis),
        events=[{**event, "json": _compact(event["data"])} for event in record["events"]],
        twilio_href=TWILIO_CALL.format(sid=quote(sid, safe="")) if sid else None,
        elevenlabs_href=ELEVENLABS_CONVERSATION.format(id=quote(record["conversation_id"], safe=""))
        if record.get("conversation_id")
        else None,
    )


# Rules tester.


def dry_run(
    table: RoutingTable, settings: Settings, from_number: str, to_number: str, at: datetime
) -> dict[str, str]:
    """What `callbridge route` shows: the rule, and the TwiML or register-call request."""
    call = Call(call_sid="CA" + "0" * 32, from_number=from_number, to_number=to_number)
    decision = table.choose(call, at)
    action = decision.action
    if isinstance(action, AgentAction):
        request = register_request(action, call, default_agent_id=settings.elevenlabs_agent_id)
        if request is None:
            what = "No agent"
            body = "The rule names no agent_id and ELEVENLABS_AGENT_ID is not set."
        else:
            what = f"register-call: POST {settings.elevenlabs_api_base}{REGISTER_CALL_PATH}"
            body = json.dumps(redact(request.to_json()), indent=2)
    else:
        what = "TwiML"
        body = render_twiml(action, step=decision.step)
    return {
        "at": at.isoformat(),
        "rule": decision.rule,
        "action": action.action,
        "what": what,
        "body": body,
        "fallback_action": decision.fallback.action,
        "fallback": render_twiml(decision.fallback, step=decision.fallback_step),
    }


@signed_in
async def rules_page(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    table: RoutingTable = request.app.state.table
    form = {name: request.query_params.get(name, "").strip() for name in ("from", "to", "at")}
    context: dict[str, Any] = {"form": form, "source": table.source, "result": None}
    status = 200
    if form["from"] or form["to"]:
        zone = _zone(request)
        try:
            from_number = form["from"]
            if from_number != "anonymous" and not phone.is_e164(from_number):
                raise ValueError("From must be E.164, like +14155550123, or anonymous")
            if not phone.is_e164(form["to"]):
                raise ValueError("To must be E.164, like +14155550100")
            try:
                at = (
                    datetime.fromisoformat(form["at"]).replace(tzinfo=zone)
                    if form["at"]
                    else datetime.now(zone)
                )
            except ValueError:
                raise ValueError("Time must be a date and time, like 2026-03-08T09:30") from None
            context["result"] = dry_run(table, settings, from_number, form["to"], at)
        except ValueError as bad:
            context["error"] = str(bad)
            status = 400
    return render(
        request, "rules.html", {"title": "Rules tester", "signed_in": True, **context}, status
    )


routes = [
    Route("/ui/dashboard", dashboard_page, methods=["GET"]),
    Route("/ui/live.json", live_json, methods=["GET"]),
    Route("/ui/calls", calls_page, methods=["GET"]),
    Route("/ui/calls.csv", calls_csv, methods=["GET"]),
    Route("/ui/rules", rules_page, methods=["GET"]),
    Route("/ui/calls/{key}", call_page, methods=["GET"]),
]
