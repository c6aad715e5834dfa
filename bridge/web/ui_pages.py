"""The call-log page's HTML (bridge.web.ui): every value from the database goes
through escape(), and every page carries the same strict headers."""

from __future__ import annotations

import json
from html import escape
from typing import Any
from urllib.parse import quote

from starlette.responses import HTMLResponse

SUMMARY_CHARS = 200

HEADERS = {
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "content-security-policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4}
pre{white-space:pre-wrap;word-break:break-word;margin:0}
.error{color:#a00}
header{display:flex;justify-content:space-between;align-items:center}
"""


# Pages.


def page(title: str, body: str, status_code: int = 200) -> HTMLResponse:
    document = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)} · callbridge</title><style>{STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )
    return HTMLResponse(document, status_code=status_code, headers=HEADERS)


def login_page(error: str = "", status_code: int = 200) -> HTMLResponse:
    message = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    return page(
        "Sign in",
        "<h1>callbridge</h1>"
        f"{message}"
        '<form method="post" action="/ui/login">'
        "<label>API token (BRIDGE_API_TOKEN) "
        '<input type="password" name="token" autocomplete="current-password" required autofocus>'
        '</label> <button type="submit">Sign in</button></form>',
        status_code,
    )


def _header(title: str) -> str:
    return (
        f"<header><h1>{escape(title)}</h1>"
        '<form method="post" action="/ui/logout"><button type="submit">Sign out</button></form>'
        "</header>"
    )


def disabled() -> HTMLResponse:
    return page(
        "Disabled",
        "<h1>callbridge</h1><p>BRIDGE_API_TOKEN is not set: the call log UI is disabled "
        "until it is.</p>",
        503,
    )


def cross_site() -> HTMLResponse:
    return page("Refused", "<h1>Refused</h1><p>Cross-site request refused.</p>", 403)


def calls_page(calls: list[dict[str, Any]], next_href: str | None) -> HTMLResponse:
    """`/ui/calls`: one row a call, newest first, and a link to the next page."""
    rows = "".join(_list_row(call) for call in calls)
    if not rows:
        rows = '<tr><td colspan="7">No calls.</td></tr>'
    more = ""
    if next_href is not None:
        more = f'<p><a rel="next" href="{escape(next_href)}">Next page</a></p>'
    return page(
        "Calls",
        _header("Calls")
        + "<table><thead><tr><th>Time</th><th>Direction</th><th>From → To</th><th>Rule</th>"
        "<th>Status</th><th>Duration</th><th>Summary</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>{more}",
    )


def call_page(record: dict[str, Any]) -> HTMLResponse:
    """`/ui/calls/{key}`: the record's fields, its transcript and its events."""
    record = dict(record)
    events = record.pop("events")
    transcript = record.pop("transcript")
    fields = "".join(
        f"<tr><th>{escape(name)}</th><td>{_field(value)}</td></tr>"
        for name, value in record.items()
    )
    lines = "".join(_transcript_line(turn) for turn in transcript) or (
        '<tr><td colspan="2">No transcript.</td></tr>'
    )
    event_rows = (
        "".join(
            f"<tr><td>{_text(event.get('kind'))}</td><td>{_text(_when(event.get('at')))}</td>"
            f"<td><pre>{escape(_compact(event.get('data')))}</pre></td></tr>"
            for event in events
        )
        or '<tr><td colspan="3">No events.</td></tr>'
    )
    title = f"Call {record.get('call_sid') or record.get('id')}"
    return page(
        title,
        _header(title)
        + '<p><a href="/ui/calls">All calls</a></p>'
        + f"<h2>Record</h2><table><tbody>{fields}</tbody></table>"
        + f"<h2>Transcript</h2><table><tbody>{lines}</tbody></table>"
        + "<h2>Events</h2><table><thead><tr><th>Kind</th><th>Time</th><th>Data</th></tr>"
        + f"</thead><tbody>{event_rows}</tbody></table>",
    )


def bad_request(message: str) -> HTMLResponse:
    return page("Bad request", f"<h1>Bad request</h1><p>{escape(message)}</p>", 400)


def not_found(key: str) -> HTMLResponse:
    return page(
        "Not found",
        f"<h1>Not found</h1><p>No call {escape(key)} in the call log.</p>"
        '<p><a href="/ui/calls">All calls</a></p>',
        404,
    )


# Cells: every value goes through escape().


def _text(value: object) -> str:
    return "" if value is None else escape(str(value))


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def _field(value: object) -> str:
    if isinstance(value, dict | list):
        return f"<pre>{escape(_compact(value))}</pre>"
    return _text(value)


def _when(value: object) -> object:
    if isinstance(value, str) and value.endswith("+00:00"):
        return value[: -len("+00:00")].replace("T", " ") + " UTC"
    return value


def _list_row(call: dict[str, Any]) -> str:
    key = call.get("call_sid") or call["id"]
    href = escape("/ui/calls/" + quote(str(key), safe=""))
    summary = call.get("summary") or ""
    if len(summary) > SUMMARY_CHARS:
        summary = summary[:SUMMARY_CHARS] + "…"
    duration = call.get("duration")
    return (
        f'<tr><td><a href="{href}">{_text(_when(call.get("created_at")))}</a></td>'
        f"<td>{_text(call.get('direction'))}</td>"
        f"<td>{_text(call.get('from'))} → {_text(call.get('to'))}</td>"
        f"<td>{_text(call.get('rule'))}</td>"
        f"<td>{_text(call.get('status'))}</td>"
        f"<td>{'' if duration is None else _text(duration) + ' s'}</td>"
        f"<td>{escape(summary)}</td></tr>"
    )


def _transcript_line(turn: object) -> str:
    if isinstance(turn, dict):
        role, message = turn.get("role"), turn.get("message")
        if message is None:
            rest = {k: v for k, v in turn.items() if k not in ("role", "message")}
            return f"<tr><th>{_text(role)}</th><td><pre>{escape(_compact(rest))}</pre></td></tr>"
        return f"<tr><th>{_text(role)}</th><td>{_text(message)}</td></tr>"
    return f"<tr><th></th><td><pre>{escape(_compact(turn))}</pre></td></tr>"
