"""A small server-rendered view of the call log: `GET /ui/calls`, `GET /ui/calls/{key}`.

Signing in takes BRIDGE_API_TOKEN, through the login form (which sets a signed,
HttpOnly, SameSite=Strict session cookie) or HTTP Basic auth (any user name, the
token as password). Every value from the database is HTML-escaped; the login and
logout POSTs are refused when their Origin (or Referer) names another host.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from html import escape
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from bridge import forwarded, signed
from bridge.calllog.queries import BadFilter, find_call, list_calls, parse_filter
from bridge.settings import Settings
from bridge.storage.database import Database
from bridge.web import bodies
from bridge.web.auth import guarded, token_equals
from bridge.web.bodies import BadBody

COOKIE = "callbridge_ui"
COOKIE_PATH = "/ui"
SESSION_SECONDS = 12 * 3600
MAX_FORM_BYTES = 4096
SUMMARY_CHARS = 200
_KEY_LABEL = b"callbridge ui session v1"

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


def _page(title: str, body: str, status_code: int = 200) -> HTMLResponse:
    document = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)} · callbridge</title><style>{STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )
    return HTMLResponse(document, status_code=status_code, headers=HEADERS)


def _login_page(error: str = "", status_code: int = 200) -> HTMLResponse:
    message = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    return _page(
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


def _disabled() -> HTMLResponse:
    return _page(
        "Disabled",
        "<h1>callbridge</h1><p>BRIDGE_API_TOKEN is not set: the call log UI is disabled "
        "until it is.</p>",
        503,
    )


# Sessions.


def _key(settings: Settings) -> bytes:
    """A key for UI sessions only; changing BRIDGE_API_TOKEN ends every session."""
    token_hash = hashlib.sha256(settings.bridge_api_token.reveal().encode()).digest()
    return hmac.new(signed.session_key(settings), _KEY_LABEL + token_hash, hashlib.sha256).digest()


def dump_session(key: bytes, now: float | None = None) -> str:
    """A signed `{"exp": <unix time>}` (`bridge.signed`)."""
    expires = int((time.time() if now is None else now) + SESSION_SECONDS)
    return signed.dump({"exp": expires}, key)


def session_valid(cookie: str | None, key: bytes, now: float | None = None) -> bool:
    data = signed.load(cookie, key)
    expires = data.get("exp") if isinstance(data, dict) else None
    if not isinstance(expires, int):
        return False
    return (time.time() if now is None else now) < expires


def _basic_password(authorization: str | None) -> str | None:
    """The password of `Authorization: Basic ...`, or None when there is none."""
    if not authorization:
        return None
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ""
    _, colon, password = decoded.partition(":")
    return password if colon else ""


def _refuse_unless_signed_in(request: Request) -> Response | None:
    """None when the request may see the call log; else the page to answer with."""
    settings: Settings = request.app.state.settings
    token = settings.bridge_api_token.reveal()
    if not token:
        return _disabled()
    if session_valid(request.cookies.get(COOKIE), _key(settings)):
        return None
    password = _basic_password(request.headers.get("authorization"))
    if password is None:
        return _login_page()
    if token_equals(password, token):
        return None
    return _login_page("Wrong token", 401)


signed_in = guarded(_refuse_unless_signed_in)


def _origin(request: Request) -> tuple[str, str]:
    settings: Settings = request.app.state.settings
    return forwarded.origin(
        request.url.scheme,
        request.headers.get("host", ""),
        request.headers,
        trust=settings.trust_forwarded_headers,
    )


def _same_site(request: Request) -> bool:
    """A POST from one of our own pages: Origin, else Referer, names our host (when sent)."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if source is None:
        return True
    host = urlsplit(source).netloc.lower()
    if not host:
        return False
    settings: Settings = request.app.state.settings
    ours = {request.headers.get("host", "").lower(), _origin(request)[1].lower()}
    if settings.public_base_url:
        ours.add(urlsplit(settings.public_base_url).netloc.lower())
    ours.discard("")
    return host in ours


def _https(request: Request) -> bool:
    return request.url.scheme == "https" or _origin(request)[0].lower() == "https"


def _cross_site() -> HTMLResponse:
    return _page("Refused", "<h1>Refused</h1><p>Cross-site request refused.</p>", 403)


async def _form_token(request: Request) -> str:
    try:
        body = await bodies.read(request, MAX_FORM_BYTES)
    except BadBody:
        return ""  # then "Wrong token", as for any other token
    values = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return values.get("token", [""])[0]


# Endpoints.


async def login(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    token = settings.bridge_api_token.reveal()
    if not token:
        return _disabled()
    if not _same_site(request):
        return _cross_site()
    if not token_equals(await _form_token(request), token):
        return _login_page("Wrong token", 401)
    response = RedirectResponse("/ui/calls", status_code=303, headers=HEADERS)
    response.set_cookie(
        COOKIE,
        dump_session(_key(settings)),
        max_age=SESSION_SECONDS,
        path=COOKIE_PATH,
        secure=_https(request),
        httponly=True,
        samesite="strict",
    )
    return response


async def logout(request: Request) -> Response:
    if not _same_site(request):
        return _cross_site()
    response = RedirectResponse("/ui/calls", status_code=303, headers=HEADERS)
    response.delete_cookie(
        COOKIE, path=COOKIE_PATH, secure=_https(request), httponly=True, samesite="strict"
    )
    return response


@signed_in
async def call_list(request: Request) -> Response:
    try:
        wanted = parse_filter(request.query_params)
    except BadFilter as bad:
        return _page("Bad request", f"<h1>Bad request</h1><p>{escape(bad.message)}</p>", 400)
    database: Database = request.app.state.database
    page = await list_calls(database, wanted)
    rows = "".join(_list_row(call) for call in page.calls)
    if not rows:
        rows = '<tr><td colspan="7">No calls.</td></tr>'
    more = ""
    if page.next_cursor is not None:
        params = {k: v for k, v in request.query_params.items() if k != "cursor"}
        params["cursor"] = page.next_cursor
        more = f'<p><a rel="next" href="/ui/calls?{escape(urlencode(params))}">Next page</a></p>'
    return _page(
        "Calls",
        _header("Calls")
        + "<table><thead><tr><th>Time</th><th>Direction</th><th>From → To</th><th>Rule</th>"
        "<th>Status</th><th>Duration</th><th>Summary</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>{more}",
    )


@signed_in
async def call_detail(request: Request) -> Response:
    key: str = request.path_params["key"]
    database: Database = request.app.state.database
    record = await find_call(database, key)
    if record is None:
        return _page(
            "Not found",
            f"<h1>Not found</h1><p>No call {escape(key)} in the call log.</p>"
            '<p><a href="/ui/calls">All calls</a></p>',
            404,
        )
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
    return _page(
        title,
        _header(title)
        + '<p><a href="/ui/calls">All calls</a></p>'
        + f"<h2>Record</h2><table><tbody>{fields}</tbody></table>"
        + f"<h2>Transcript</h2><table><tbody>{lines}</tbody></table>"
        + "<h2>Events</h2><table><thead><tr><th>Kind</th><th>Time</th><th>Data</th></tr>"
        + f"</thead><tbody>{event_rows}</tbody></table>",
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


routes = [
    Route("/ui/calls", call_list, methods=["GET"]),
    Route("/ui/calls/{key}", call_detail, methods=["GET"]),
    Route("/ui/login", login, methods=["POST"]),
    Route("/ui/logout", logout, methods=["POST"]),
]
