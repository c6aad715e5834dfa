"""A small server-rendered view of the call log: `GET /ui/calls`, `GET /ui/calls/{key}`.

Signing in takes BRIDGE_API_TOKEN, through the login form (which sets a signed,
HttpOnly, SameSite=Strict session cookie) or HTTP Basic auth (any user name, the
token as password). Every value from the database is HTML-escaped; the login and
logout POSTs are refused when their Origin (or Referer) names another host.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import parse_qs, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bridge import forwarded, signed
from bridge.calllog.queries import BadFilter, find_call, list_calls, parse_filter
from bridge.settings import Settings
from bridge.web import bodies
from bridge.web import ui_pages as pages
from bridge.web.auth import guarded, token_equals
from bridge.web.bodies import BadBody

COOKIE = "callbridge_ui"
COOKIE_PATH = "/ui"
SESSION_SECONDS = 12 * 3600
MAX_FORM_BYTES = 4096
_KEY_LABEL = b"callbridge ui session v1"

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
    except ValueError:  # binascii.Error, UnicodeDecodeError, a non-ASCII header
        return ""
    _, colon, password = decoded.partition(":")
    return password if colon else ""


def _refuse_unless_signed_in(request: Request) -> Response | None:
    """None when the request may see the call log; else the page to answer with."""
    settings: Settings = request.app.state.settings
    token = settings.bridge_api_token.reveal()
    if not token:
        return pages.disabled()
    if session_valid(request.cookies.get(COOKIE), _key(settings)):
        return None
    password = _basic_password(request.headers.get("authorization"))
    if password is None:
        return pages.login_page()
    if token_equals(password, token):
        return None
    return pages.login_page("Wrong token", 401)


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
        return pages.disabled()
    if not _same_site(request):
        return pages.cross_site()
    if not token_equals(await _form_token(request), token):
        return pages.login_page("Wrong token", 401)
    response = RedirectResponse("/ui/calls", status_code=303, headers=pages.HEADERS)
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
        return pages.cross_site()
    response = RedirectResponse("/ui/calls", status_code=303, headers=pages.HEADERS)
    response.delete_cookie(
        COOKIE, path=COOKIE_PATH, secure=_https(request), httponly=True, samesite="strict"
    )
    return response


@signed_in
async def call_list(request: Request) -> Response:
    try:
        wanted = parse_filter(request.query_params)
    except BadFilter as bad:
        return pages.bad_request(bad.message)
    page = await list_calls(request.app.state.database, wanted)
    next_href = None
    if page.next_cursor is not None:
        params = {k: v for k, v in request.query_params.items() if k != "cursor"}
        params["cursor"] = page.next_cursor
        next_href = f"/ui/calls?{urlencode(params)}"
    return pages.calls_page(page.calls, next_href)


@signed_in
async def call_detail(request: Request) -> Response:
    key: str = request.path_params["key"]
    record = await find_call(request.app.state.database, key)
    if record is None:
        return pages.not_found(key)
    return pages.call_page(record)


routes = [
    Route("/ui/calls", call_list, methods=["GET"]),
    Route("/ui/calls/{key}", call_detail, methods=["GET"]),
    Route("/ui/login", login, methods=["POST"]),
    Route("/ui/logout", logout, methods=["POST"]),
]
