"""A small server-rendered view of the call log: `GET /ui/calls`, `GET /ui/calls/{key}`.

Signing in takes BRIDGE_API_TOKEN, through the login form (which sets a signed,
HttpOnly, SameSite=Strict session cookie) or HTTP Basic auth (any user name, the
token as password). After LOGIN_FAILURES wrong tokens in LOGIN_WINDOW_SECONDS from
one client address (bridge.forwarded), that address gets 429 for a while
(bridge.web.throttle); signing out ends the session for every copy of its cookie
(bridge.web.ui_sessions). Every value from the database is HTML-escaped; the login and
logout POSTs are refused when their Origin (or Referer) names another host.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
import time
from urllib.parse import parse_qs, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bridge import forwarded, signed
from bridge.calllog.queries import BadFilter, find_call, list_calls, parse_filter
from bridge.settings import Settings
from bridge.web import bodies, ui_sessions
from bridge.web import ui_pages as pages
from bridge.web.auth import Endpoint, token_equals
from bridge.web.bodies import BadBody

COOKIE = "callbridge_ui"
COOKIE_PATH = "/ui"
SESSION_SECONDS = 12 * 3600
MAX_FORM_BYTES = 4096
LOGIN_FAILURES = 10
LOGIN_WINDOW_SECONDS = 60
_KEY_LABEL = b"callbridge ui session v1"

# Sessions.


def _key(settings: Settings) -> bytes:
    """A key for UI sessions only; changing BRIDGE_API_TOKEN ends every session."""
    token_hash = hashlib.sha256(settings.bridge_api_token.reveal().encode()).digest()
    return hmac.new(signed.session_key(settings), _KEY_LABEL + token_hash, hashlib.sha256).digest()


def dump_session(key: bytes, now: float | None = None) -> str:
    """A signed `{"exp": <unix time>, "sid": <random id>}` (`bridge.signed`)."""
    expires = int((time.time() if now is None else now) + SESSION_SECONDS)
    return signed.dump({"exp": expires, "sid": secrets.token_urlsafe(16)}, key)


def _session(cookie: str | None, key: bytes, now: float | None = None) -> tuple[str, int] | None:
    """(id, expiry) of a well-signed session cookie that has not expired."""
    data = signed.load(cookie, key)
    if not isinstance(data, dict):
        return None
    expires, session_id = data.get("exp"), data.get("sid")
    if not isinstance(expires, int) or not isinstance(session_id, str) or not session_id:
        return None
    if (time.time() if now is None else now) >= expires:
        return None
    return session_id, expires


def session_valid(cookie: str | None, key: bytes, now: float | None = None) -> bool:
    """Signed and not expired (whether it was signed out is `ui_sessions.revoked`)."""
    return _session(cookie, key, now) is not None


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


async def has_session(request: Request) -> bool:
    """The request carries the console's session cookie, signed, current and not
    signed out (also how the console's audio players reach `/calls/.../audio/...`)."""
    settings: Settings = request.app.state.settings
    if not settings.bridge_api_token:
        return False
    session = _session(request.cookies.get(COOKIE), _key(settings))
    return session is not None and not await ui_sessions.revoked(
        request.app.state.database, session[0]
    )


async def _refuse_unless_signed_in(request: Request) -> Response | None:
    """None when the request may see the call log; else the page to answer with."""
    settings: Settings = request.app.state.settings
    token = settings.bridge_api_token.reveal()
    if not token:
        return pages.disabled()
    if await has_session(request):
        return None
    password = _basic_password(request.headers.get("authorization"))
    if password is None:
        return pages.login_page()
    return _refuse_wrong_token(request, password, token)


def _refuse_wrong_token(request: Request, given: str, token: str) -> Response | None:
    """None for the right token; else 401, or 429 while the address is throttled."""
    throttle = request.app.state.login_throttle
    address = request.client.host if request.client else "unknown"
    wait = throttle.retry_after(address)
    if wait is not None:
        refused = pages.login_page(f"Too many wrong tokens: try again in {wait} s", 429)
        refused.headers["retry-after"] = str(wait)
        return refused
    if token_equals(given, token):
        throttle.succeeded(address)
        return None
    throttle.failed(address)
    return pages.login_page("Wrong token", 401)


def signed_in(endpoint: Endpoint) -> Endpoint:
    """Run the endpoint only for a signed-in request; else send the refusal page."""

    @functools.wraps(endpoint)
    async def checked(request: Request) -> Response:
        refused = await _refuse_unless_signed_in(request)
        if refused is not None:
            return refused
        return await endpoint(request)

    return checked


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
    refused = _refuse_wrong_token(request, await _form_token(request), token)
    if refused is not None:
        return refused
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
    settings: Settings = request.app.state.settings
    if settings.bridge_api_token:
        session = _session(request.cookies.get(COOKIE), _key(settings))
        if session is not None:
            await ui_sessions.revoke(request.app.state.database, *session)
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
