"""Bearer-token protection for the outbound API (BRIDGE_API_TOKEN)."""

from __future__ import annotations

import hmac

from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse

from bridge.secret import Secret
from bridge.settings import Settings


def token_matches(authorization: str | None, token: str) -> bool:
    """Compare `Authorization: Bearer <token>` in constant time."""
    if not authorization or not token:
        return False
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def refuse_unless_authorized(request: HTTPConnection, settings: Settings) -> JSONResponse | None:
    """None when the request may go on; else the response to send (503 or 401)."""
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
