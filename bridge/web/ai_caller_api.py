"""`POST /api/context` and `POST /api/call`: the AI caller API (README: "The AI caller API").

Both need `Authorization: Bearer <BRIDGE_API_TOKEN>` and take a JSON object of at
most 64 KiB (any content type; 413 past the cap, 400 when it is not a JSON object).
Errors are `{"error": "<sentence>"}`.

- `/api/context` `{"description", "scenario"?}` replaces the session context and
  answers 200 `{"ok": true, "description", "scenario"}`, where `scenario` is the one
  `/api/call` will fall back to (the default when none was given). The session is a
  signed cookie (HttpOnly, SameSite=Lax, Path=/, Secure over https, no expiry);
  a cookie that fails the signature check is ignored.
- `/api/call` `{"to_number", "business_description"?, "scenario"?}` places the call;
  see `bridge.outbound.ai_caller` for the rules and the order of checks.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bridge import signed
from bridge.elevenlabs.api import ElevenLabsAPI
from bridge.outbound import ai_caller
from bridge.outbound.ai_caller import Refused
from bridge.settings import Settings
from bridge.web import bodies
from bridge.web.auth import api_token
from bridge.web.bodies import BadBody


@api_token
async def set_context(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    try:
        context = ai_caller.context_from_body(await bodies.json_object(request))
        cookie = ai_caller.dump_context(context, signed.session_key(settings))
    except (BadBody, Refused) as refused:
        return error(refused.status, refused.message)
    response = JSONResponse(
        {
            "ok": True,
            "description": context.description,
            "scenario": context.scenario or ai_caller.DEFAULT_SCENARIO,
        }
    )
    response.set_cookie(
        ai_caller.SESSION_COOKIE,
        cookie,
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="lax",
    )
    return response


@api_token
async def call(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    client: ElevenLabsAPI | None = request.app.state.elevenlabs_api
    try:
        body = await bodies.json_object(request)
        session = ai_caller.load_context(
            request.cookies.get(ai_caller.SESSION_COOKIE), signed.session_key(settings)
        )
        plan = ai_caller.plan_call(body, session)
        api = ai_caller.require_env(settings, client)
        result = await ai_caller.place_call(api, settings, plan, request.app.state.metrics)
    except (BadBody, Refused) as refused:
        return error(refused.status, refused.message)
    return JSONResponse(result)


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


routes: list[Route] = [
    Route("/api/context", set_context, methods=["POST"]),
    Route("/api/call", call, methods=["POST"]),
]
