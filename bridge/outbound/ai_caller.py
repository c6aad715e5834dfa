"""The AI caller: an ElevenLabs agent that phones a business as a customer.

Plain logic, no Starlette: which number, business description and scenario a call
uses, the prompt and first message the agent gets, the response body, and the
session context that `/api/context` fills (a cookie signed by `bridge.signed`). The endpoints are in
`bridge.web.ai_caller_api`.

Checks run in this order, so a client fixes its own request before anyone has to
fix the server: bearer token (503/401, see `bridge.web.auth`), body (413/400),
`business_description` (400), `scenario` type (400), `to_number` (400), server
environment (500), ElevenLabs (502).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from bridge import phone, signed
from bridge.elevenlabs.api import ElevenLabsAPI, ElevenLabsError
from bridge.metrics import Metrics
from bridge.settings import Settings

logger = logging.getLogger(__name__)

E164 = phone.E164
DEFAULT_SCENARIO = (
    "check availability, complete a typical customer task, "
    "and avoid speaking to a human if possible"
)
PROMPT_INTRO = (
    "You are simulating a real customer contacting the business below. "
    "The other side is the company, an operator, or an IVR. "
    "Stay in character as the caller/customer, try to complete the task, "
    "and avoid escalating to a human unless the flow requires it."
)
PROMPT_STYLE = "Speak naturally, ask one thing at a time, and keep each response concise."
CALL_INITIATED = "Call initiated."

NO_DESCRIPTION = "Provide a business description first."
NO_CONTEXT_DESCRIPTION = "Provide a business description."
BAD_NUMBER = "Phone number must be in E.164 format, for example +15551234567."
MISSING_ENV = "Missing required environment variables: "
CONTEXT_TOO_LONG = (
    "The description and scenario are too long to keep in the session "
    "(about 2,900 characters together at most). "
    "Send business_description and scenario with each /api/call instead."
)

SESSION_COOKIE = "callbridge_session"
# Browsers drop cookies whose name and value pass 4096 bytes; stay clear of that.
MAX_COOKIE_BYTES = 4000
# Stripped from the end of a scenario: it is followed by "." in the first message.
_TRAILING = ".!?,;:\u2026 "


class Refused(Exception):
    """The request cannot go on; `status` and `message` are what the client gets."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Context:
    """What `/api/context` stored: a trimmed description and a normalized scenario.

    Empty strings mean "not set".
    """

    description: str = ""
    scenario: str = ""


@dataclass(frozen=True)
class CallPlan:
    to_number: str
    description: str
    scenario: str


def normalize_scenario(text: str) -> str:
    """The scenario as the call uses it.

    Every run of whitespace (newlines included) becomes one space, the ends are
    trimmed, and trailing `.`, `!`, `?`, `,`, `;`, `:` and `…` are dropped (with
    any spaces between them), so that the first message ends in exactly one
    period. Letter case and everything else are kept. The result may be empty.
    """
    return " ".join(text.split()).rstrip(_TRAILING)


def caller_prompt(description: str, scenario: str) -> str:
    """The agent's system prompt: fixed text, with each filled-in field on its own line."""
    return (
        f"{PROMPT_INTRO}\n"
        f"Business description: {description}\n"
        f"Caller goal: {scenario}\n"
        f"{PROMPT_STYLE}"
    )


def first_message(scenario: str) -> str:
    return f"Hi, I'm calling because I'd like to {scenario}."


def client_data(plan: CallPlan) -> dict[str, Any]:
    """`conversation_initiation_client_data` for the outbound call."""
    return {
        "conversation_config_override": {
            "agent": {
                "prompt": {"prompt": caller_prompt(plan.description, plan.scenario)},
                "first_message": first_message(plan.scenario),
            }
        }
    }


def context_from_body(body: Mapping[str, object]) -> Context:
    """`/api/context`: `description` is required; a blank `scenario` leaves it unset."""
    description = _text(body, "description").strip()
    if not description:
        raise Refused(400, NO_CONTEXT_DESCRIPTION)
    return Context(description, normalize_scenario(_text(body, "scenario")))


def plan_call(body: Mapping[str, object], session: Context) -> CallPlan:
    """`/api/call`: each field from the body, else the session, else the default.

    Missing, null and blank (or, for the scenario, nothing left after
    normalizing) all count as "not provided". `to_number` loses surrounding
    whitespace and must then match `^\\+[1-9]\\d{7,14}$` in full.
    """
    description = _text(body, "business_description").strip() or session.description.strip()
    if not description:
        raise Refused(400, NO_DESCRIPTION)
    scenario = (
        normalize_scenario(_text(body, "scenario"))
        or normalize_scenario(session.scenario)
        or DEFAULT_SCENARIO
    )
    to_number = body.get("to_number")
    if not isinstance(to_number, str) or not E164.fullmatch(to_number.strip()):
        raise Refused(400, BAD_NUMBER)
    return CallPlan(to_number.strip(), description, scenario)


def require_env(settings: Settings, api: ElevenLabsAPI | None) -> ElevenLabsAPI:
    """The ElevenLabs client, or a 500 naming every missing variable in a fixed order."""
    missing = [
        name
        for name, present in (
            ("ELEVENLABS_API_KEY", bool(settings.elevenlabs_api_key) and api is not None),
            ("ELEVENLABS_AGENT_ID", bool(settings.elevenlabs_agent_id)),
            ("ELEVENLABS_AGENT_PHONE_NUMBER_ID", bool(settings.elevenlabs_agent_phone_number_id)),
        )
        if not present
    ]
    if missing or api is None:
        raise Refused(500, MISSING_ENV + ", ".join(missing))
    return api


async def start_call(api: ElevenLabsAPI, settings: Settings, plan: CallPlan) -> dict[str, Any]:
    """Place the call; the `/api/call` success body. Raises ElevenLabsError.

    A 2xx reply with `"success": false` is a failed call, reported as
    `ElevenLabs API error (<status>): <its message>`.
    """
    try:
        raw = await api.twilio_outbound_call(
            agent_id=settings.elevenlabs_agent_id,
            agent_phone_number_id=settings.elevenlabs_agent_phone_number_id,
            to_number=plan.to_number,
            client_data=client_data(plan),
        )
    except httpx.HTTPError as exc:  # anything the client did not already translate
        raise ElevenLabsError(str(exc) or type(exc).__name__) from None
    if raw.get("success") is False:
        reason = _string(raw.get("message")) or "the call was not started"
        raise ElevenLabsError(reason, status=200)
    body = call_response(plan, raw)
    logger.info(
        "ai caller: call to %s %s (conversation %s)",
        phone.mask(plan.to_number),
        body["status"],
        body["conversation_id"] or "-",
    )
    return body


async def place_call(
    api: ElevenLabsAPI, settings: Settings, plan: CallPlan, metrics: Metrics
) -> dict[str, Any]:
    """`start_call`, counted in the metrics; Refused (502) when ElevenLabs did not start it."""
    requested = metrics.outbound_requests
    try:
        body = await start_call(api, settings, plan)
    except ElevenLabsError as exc:
        # Refused (a 4xx, or success: false) or never sent: definitely not placed.
        definite = exc.not_sent or (exc.status is not None and exc.status < 500)
        requested.labels("ai_caller", "not_placed" if definite else "unknown").inc()
        logger.warning("ai caller: %s", exc)
        raise Refused(502, str(exc)) from None
    requested.labels("ai_caller", "placed").inc()
    return body


def call_response(plan: CallPlan, raw: dict[str, Any]) -> dict[str, Any]:
    """`status` is ElevenLabs' own when it sends one, else "initiated"."""
    return {
        "ok": True,
        "status": _string(raw.get("status")) or "initiated",
        "message": CALL_INITIATED,
        "to_number": plan.to_number,
        "scenario": plan.scenario,
        "call_sid": _string(raw.get("callSid")) or _string(raw.get("call_sid")),
        "conversation_id": _string(raw.get("conversation_id")),
        "raw": raw,
    }


def dump_context(context: Context, key: bytes) -> str:
    """The session cookie's value (`bridge.signed`).

    Raises Refused (400) when the cookie would be too large for browsers to keep.
    """
    value = signed.dump({"description": context.description, "scenario": context.scenario}, key)
    if len(SESSION_COOKIE) + 1 + len(value) > MAX_COOKIE_BYTES:
        raise Refused(400, CONTEXT_TOO_LONG)
    return value


def load_context(cookie: str | None, key: bytes) -> Context:
    """The context in a cookie from `dump_context`; an empty one for anything else."""
    data = signed.load(cookie, key)
    if not isinstance(data, dict):
        return Context()
    return Context(_string(data.get("description")) or "", _string(data.get("scenario")) or "")


def _text(body: Mapping[str, object], name: str) -> str:
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Refused(400, f"{name} must be a string.")
    return value


def _string(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
