"""The console's HTML: Jinja2 templates (bridge/web/templates, autoescaped) through
Starlette's `Jinja2Templates`, the filters they use (times in UI_TIMEZONE, durations),
the strict headers every page carries, and the CSRF token of every form.

CSRF: a random token in an HttpOnly, SameSite=Strict cookie, repeated in a hidden
field of every form (double submit); a POST whose field does not match is refused.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from bridge.calllog.timeline import duration

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
CSRF_COOKIE = "callbridge_csrf"
CSRF_FIELD = "csrf"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    # Audio from an s3:// store is a presigned https link (bridge.web.call_audio).
    "media-src 'self' https:; connect-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
HEADERS = {
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "content-security-policy": CSP,
}

templates = Jinja2Templates(directory=str(TEMPLATES))


def _zone(request: Request) -> ZoneInfo:
    return ZoneInfo(request.app.state.settings.ui_timezone)


def local(value: object, zone: ZoneInfo, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """An ISO string or datetime as a human time in `zone` ("" for None)."""
    if value is None or value == "":
        return ""
    moment = value if isinstance(value, datetime) else _parse(str(value))
    if moment is None:
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone).strftime(fmt)


def _parse(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def csrf_token(request: Request) -> str:
    """The request's CSRF token: its cookie's, else a new one (set by `render`)."""
    given = request.cookies.get(CSRF_COOKIE, "")
    if 20 <= len(given) <= 64 and given.replace("-", "").replace("_", "").isalnum():
        return given
    cached: str | None = getattr(request.state, "csrf", None)
    if cached is None:
        cached = secrets.token_urlsafe(24)
        request.state.csrf = cached
    return cached


def csrf_ok(request: Request, submitted: str) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    return bool(cookie) and hmac.compare_digest(cookie.encode(), submitted.encode())


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
    *,
    https: bool = False,
) -> HTMLResponse:
    token = csrf_token(request)
    zone = _zone(request)
    values: dict[str, Any] = {
        "csrf": token,
        "csrf_field": CSRF_FIELD,
        "zone": request.app.state.settings.ui_timezone,
        "local": lambda value, fmt="%Y-%m-%d %H:%M:%S": local(value, zone, fmt),
        "length": duration,
        "path": request.url.path,
        **(context or {}),
    }
    response: HTMLResponse = templates.TemplateResponse(
        request, name, values, status_code=status_code, headers=HEADERS
    )
    if request.cookies.get(CSRF_COOKIE) != token:
        response.set_cookie(
            CSRF_COOKIE,
            token,
            path="/ui",
            secure=https or request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
    return response


def message(
    request: Request, title: str, text: str, status_code: int, *, signed_in: bool = False
) -> HTMLResponse:
    return render(
        request, "message.html", {"title": title, "text": text, "signed_in": signed_in}, status_code
    )
