"""Signing in to the console (/ui): the login form, HTTP Basic auth, sessions, sign-out.

Signing in takes BRIDGE_API_TOKEN, through the login form (which sets a signed,
HttpOnly, SameSite=Strict session cookie) or HTTP Basic auth (any user name, the
token as password). A client that sends Basic credentials, or that does not ask for
HTML (curl, scripts), gets `401` with `WWW-Authenticate: Basic`; a browser without a
session gets the login form. After LOGIN_FAILURES wrong tokens in
LOGIN_WINDOW_SECONDS from one client address (bridge.forwarded), that address gets 429
for a while (bridge.web.throttle). Signing out ends the session for every copy of its
cookie; "sign out everywhere" ends every session (bridge.web.ui_sessions). Every POST
needs the form's CSRF token (bridge.web.ui_render) and is refused when its Origin (or
Referer) names another host. The pages themselves are bridge.web.ui_console.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
import time
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from bridge import forwarded, signed
from bridge.settings import Settings
from bridge.web import bodies, ui_sessions
from bridge.web.auth import Endpoint, token_equals
from bridge.web.bodies import BadBody
from bridge.web.ui_render import CSRF_FIELD, HEADERS, csrf_ok, message, render

COOKIE = "callbridge_ui"
COOKIE_PATH = "/ui"
HOME = "/ui/dashboard"
SESSION_SECONDS = 12 * 3600
MAX_FORM_BYTES = 4096
LOGIN_FAILURES = 10
LOGIN_WINDOW_SECONDS = 60
REALM = 'Basic realm="callbridge console", charset="UTF-8"'
_KEY_LABEL = b"callbridge ui session v1"

# Sessions.


def _key(settings: Settings) -> bytes:
    """A key for UI sessions only; changing BRIDGE_API_TOKEN ends every session."""
    token_hash = hashlib.sha256(settings.bridge_api_token.reveal().encode()).digest()
    return hmac.new(signed.session_key(settings), _KEY_LABEL + token_hash, hashlib.sha256).digest()


def dump_session(key: bytes, now: float | None = None) -> str:
    """A signed `{"exp", "iat": <unix times>, "sid": <random id>}` (`bridge.signed`)."""
    issued = time.time() if now is None else now
    expires = int(issued + SESSION_SECONDS)
    return signed.dump({"exp": expires, "iat": issued, "sid": secrets.token_urlsafe(16)}, key)


def _session(
    cookie: str | None, key: bytes, now: float | None = None
) -> tuple[str, int, float | None] | None:
    """(id, expiry, issued) of a well-signed session cookie that has not expired."""
    data = signed.load(cookie, key)
    if not isinstance(data, dict):
        return None
    expires, session_id, issued = data.get("exp"), data.get("sid"), data.get("iat")
    if not isinstance(expires, int) or not isinstance(session_id, str) or not session_id:
        return None
    if (time.time() if now is None else now) >= expires:
        return None
    if isinstance(issued, bool) or not isinstance(issued, int | float):
        issued = None
    return session_id, expires, issued


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
        request.app.state.database, session[0], session[2]
    )


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _login_page(request: Request, error: str = "", status_code: int = 200) -> Response:
    wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return render(
        request,
        "login.html",
        {"title": "Sign in", "error": error, "next": _next(wanted), "signed_in": False},
        status_code,
    )


def _challenge(request: Request, error: str, status_code: int = 401) -> Response:
    """For a Basic or API-style client: 401 with the Basic challenge (a browser that
    sent Basic also gets the form, so a person can sign in with it)."""
    if _wants_html(request):
        response = _login_page(request, error, status_code)
    else:
        response = PlainTextResponse(error + "\n", status_code=status_code, headers=HEADERS)
    if status_code == 401:
        response.headers["www-authenticate"] = REALM
    return response


async def _refuse_unless_signed_in(request: Request) -> Response | None:
    """None when the request may see the console; else the page to answer with."""
    settings: Settings = request.app.state.settings
    token = settings.bridge_api_token.reveal()
    if not token:
        return disabled(request)
    if await has_session(request):
        return None
    password = _basic_password(request.headers.get("authorization"))
    if password is None:
        if _wants_html(request):
            return _login_page(request)
        return _challenge(request, "Sign in: HTTP Basic auth with BRIDGE_API_TOKEN as password")
    return _refuse_wrong_token(request, password, token, basic=True)


def _refuse_wrong_token(
    request: Request, given: str, token: str, *, basic: bool = False
) -> Response | None:
    """None for the right token; else 401, or 429 while the address is throttled."""
    throttle = request.app.state.login_throttle
    address = request.client.host if request.client else "unknown"
    wait = throttle.retry_after(address)
    if wait is not None:
        text = f"Too many wrong tokens: try again in {wait} s"
        refused = _challenge(request, text, 429) if basic else _login_page(request, text, 429)
        refused.headers["retry-after"] = str(wait)
        return refused
    if token_equals(given, token):
        throttle.succeeded(address)
        return None
    throttle.failed(address)
    return _challenge(request, "Wrong token") if basic else _login_page(request, "Wrong token", 401)


def signed_in(endpoint: Endpoint) -> Endpoint:
    """Run the endpoint only for a signed-in request; else send the refusal page."""

    @functools.wraps(endpoint)
    async def checked(request: Request) -> Response:
        refused = await _refuse_unless_signed_in(request)
        if refused is not None:
            return refused
        return await endpoint(request)

    return checked


def disabled(request: Request) -> Response:
    return message(
        request,
        "Console disabled",
        "BRIDGE_API_TOKEN is not set: the console is disabled until it is.",
        503,
    )


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


def _next(wanted: str) -> str:
    """Where to go after signing in: a console page of ours, else the dashboard."""
    ours = wanted.startswith("/ui/") and not wanted.startswith(("/ui/login", "/ui/logout"))
    if ours and "\\" not in wanted and not any(ord(c) < 32 for c in wanted):
        return wanted
    return HOME


async def _form(request: Request) -> dict[str, str]:
    try:
        body = await bodies.read(request, MAX_FORM_BYTES)
    except BadBody:
        return {}  # then "Wrong token" (or a refused CSRF check), as for any other form
    values = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: items[0] for name, items in values.items()}


def _cross_site(request: Request) -> Response:
    return message(request, "Refused", "Cross-site request refused.", 403)


async def _checked_form(request: Request) -> dict[str, str] | Response:
    """The POSTed form, or the refusal when it is cross-site or its CSRF token is wrong."""
    if not _same_site(request):
        return _cross_site(request)
    form = await _form(request)
    refused = refusal(request, form)
    return form if refused is None else refused


def refusal(request: Request, form: dict[str, str]) -> Response | None:
    """None for a same-site POST whose form carries the CSRF token; else the refusal
    (for the console's pages that read their own forms: uploads, larger forms)."""
    if not _same_site(request):
        return _cross_site(request)
    if not csrf_ok(request, form.get(CSRF_FIELD, "")):
        return message(
            request, "Refused", "The form was out of date: reload the page and try again.", 403
        )
    return None


def _end_cookie(request: Request, response: Response) -> Response:
    response.delete_cookie(
        COOKIE, path=COOKIE_PATH, secure=_https(request), httponly=True, samesite="strict"
    )
    return response


# Endpoints.


async def login(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    token = settings.bridge_api_token.reveal()
    if not token:
        return disabled(request)
    form = await _checked_form(request)
    if isinstance(form, Response):
        return form
    refused = _refuse_wrong_token(request, form.get("token", ""), token)
    if refused is not None:
        return refused
    response = RedirectResponse(_next(form.get("next", "")), status_code=303, headers=HEADERS)
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
    form = await _checked_form(request)
    if isinstance(form, Response):
        return form
    settings: Settings = request.app.state.settings
    if settings.bridge_api_token:
        session = _session(request.cookies.get(COOKIE), _key(settings))
        if session is not None:
            await ui_sessions.revoke(request.app.state.database, session[0], session[1])
    return _end_cookie(request, RedirectResponse(HOME, status_code=303, headers=HEADERS))


@signed_in
async def logout_everywhere(request: Request) -> Response:
    form = await _checked_form(request)
    if isinstance(form, Response):
        return form
    await ui_sessions.revoke_all(request.app.state.database)
    return _end_cookie(request, RedirectResponse(HOME, status_code=303, headers=HEADERS))


async def login_form(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    if not settings.bridge_api_token:
        return disabled(request)
    if await has_session(request):
        return RedirectResponse(HOME, status_code=303, headers=HEADERS)
    return render(
        request,
        "login.html",
        {
            "title": "Sign in",
            "error": "",
            "next": _next(request.query_params.get("next", "")),
            "signed_in": False,
        },
    )


async def home(request: Request) -> Response:
    """`/` and `/ui`: the dashboard."""
    return RedirectResponse(HOME, status_code=307, headers={"cache-control": "no-store"})


routes = [
    Route("/", home, methods=["GET", "HEAD"]),
    Route("/ui", home, methods=["GET", "HEAD"]),
    Route("/ui/login", login_form, methods=["GET"]),
    Route("/ui/login", login, methods=["POST"]),
    Route("/ui/logout", logout, methods=["POST"]),
    Route("/ui/logout-everywhere", logout_everywhere, methods=["POST"]),
]
