"""Who may call an endpoint: the one constant-time token check and the one guard.

`@guarded(refusal)` wraps an endpoint: `refusal(request)` returns the response to
send instead (503 when no token is set, 401 without the right one) or None to go
on. `@api_token` is the guard of the outbound API and the call log (BRIDGE_API_TOKEN).
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response

from bridge.secret import Secret
from bridge.settings import Settings

Endpoint = Callable[[Request], Awaitable[Response]]
Refusal = Callable[[Request], Response | None]


def token_equals(given: str, token: str) -> bool:
    """`given` is `token`, compared in constant time; never true for an unset token."""
    return bool(token) and hmac.compare_digest(given.encode(), token.encode())


def token_matches(authorization: str | None, token: str) -> bool:
    """`Authorization: Bearer <token>`, compared in constant time."""
    if not authorization:
        return False
    scheme, _, given = authorization.partition(" ")
    return scheme.lower() == "bearer" and token_equals(given.strip(), token)


def guarded(refusal: Refusal) -> Callable[[Endpoint], Endpoint]:
    """Run the endpoint only when `refusal(request)` is None; else send what it returned."""

    def wrap(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def checked(request: Request) -> Response:
            response = refusal(request)
            if response is None:
                response = await endpoint(request)
            # Call records and results are for the token holder only: never cached.
            response.headers.setdefault("cache-control", "no-store")
            return response

        return checked

    return wrap


def refuse_unless_authorized(request: HTTPConnection) -> JSONResponse | None:
    """None when the request carries BRIDGE_API_TOKEN; else the response (503 or 401)."""
    settings: Settings = request.app.state.settings
    return refuse_unless_bearer(
        request,
        settings.bridge_api_token,
        unset="BRIDGE_API_TOKEN is not set: the outbound API is disabled until it is.",
        realm="callbridge",
    )


def refuse_unless_bearer(
    request: HTTPConnection, token: Secret, *, unset: str, realm: str
) -> JSONResponse | None:
    """None when the request carries `token`; else 503 (`unset`: no token) or 401."""
    if not token:
        return JSONResponse({"error": unset}, status_code=503)
    if not token_matches(request.headers.get("authorization"), token.reveal()):
        return JSONResponse(
            {"error": "Missing or invalid bearer token."},
            status_code=401,
            headers={"www-authenticate": f'Bearer realm="{realm}"'},
        )
    return None


api_token = guarded(refuse_unless_authorized)
