"""The AI caller API (README: "The AI caller API"): POST /api/context and POST /api/call."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from bridge import signed
from bridge.app import create_app
from bridge.outbound import ai_caller
from bridge.secret import Secret
from bridge.settings import Settings
from bridge.web import ai_caller_api
from tests.helpers import faulty_upstream, free_port

TOKEN = "test-bridge-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
API_KEY = "test-elevenlabs-key"
API_BASE = "https://api.elevenlabs.test"
NUMBER = "+15551234567"
PIZZA = "We are Pizza Palace, a pizza restaurant that takes orders and handles delivery inquiries."
DEFAULT_SCENARIO = (
    "check availability, complete a typical customer task, "
    "and avoid speaking to a human if possible"
)

NO_DESCRIPTION = "Provide a business description first."
BAD_NUMBER = "Phone number must be in E.164 format, for example +15551234567."
ALL_MISSING = (
    "Missing required environment variables: "
    "ELEVENLABS_API_KEY, ELEVENLABS_AGENT_ID, ELEVENLABS_AGENT_PHONE_NUMBER_ID"
)
ELEVENLABS_REPLY = {
    "success": True,
    "message": "Call initiated successfully",
    "conversation_id": "conv_abc123",
    "callSid": "CA1234567890abcdef",
}
Reply = Callable[[httpx.Request], httpx.Response]


def prompt(description: str, scenario: str) -> str:
    """The documented caller prompt, written out rather than built from the module's constants."""
    return (
        "You are simulating a real customer contacting the business below. The other side is "
        "the company, an operator, or an IVR. Stay in character as the caller/customer, try to "
        "complete the task, and avoid escalating to a human unless the flow requires it.\n"
        f"Business description: {description}\n"
        f"Caller goal: {scenario}\n"
        "Speak naturally, ask one thing at a time, and keep each response concise."
    )


def json_reply(body: object, status: int = 200) -> Reply:
    return lambda request: httpx.Response(status, json=body)


@dataclass
class Upstream:
    """ElevenLabs behind a MockTransport; records every request."""

    reply: Reply = field(default_factory=lambda: json_reply(ELEVENLABS_REPLY))
    requests: list[httpx.Request] = field(default_factory=list)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.reply(request)

    def payload(self) -> Any:
        assert len(self.requests) == 1
        return json.loads(self.requests[0].content)


def make_settings(**changes: Any) -> Settings:
    values: dict[str, Any] = {
        "elevenlabs_api_key": Secret(API_KEY),
        "elevenlabs_agent_id": "agent_caller",
        "elevenlabs_agent_phone_number_id": "phnum_caller",
        "elevenlabs_api_base": API_BASE,
        "bridge_api_token": Secret(TOKEN),
    }
    values.update(changes)
    return Settings(**values)


@contextmanager
def bridge(
    upstream: Upstream, settings: Settings | None = None, base_url: str = "http://testserver"
) -> Iterator[TestClient]:
    app = create_app(settings or make_settings(), transport=httpx.MockTransport(upstream.handler))
    app.router.routes.extend(ai_caller_api.routes)
    with TestClient(app, base_url=base_url) as client:
        yield client


@pytest.fixture
def upstream() -> Upstream:
    return Upstream()


@pytest.fixture
def client(upstream: Upstream) -> Iterator[TestClient]:
    with bridge(upstream) as client:
        yield client


def call(client: TestClient, **body: object) -> Any:
    return client.post("/api/call", json=body, headers=AUTH)


def set_context(client: TestClient, **body: object) -> Any:
    return client.post("/api/context", json=body, headers=AUTH)


# --- the documented errors, word for word ---------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "body", "status", "message"),
    [
        ({}, {"to_number": NUMBER}, 400, NO_DESCRIPTION),
        ({}, {"to_number": NUMBER, "business_description": "   \n"}, 400, NO_DESCRIPTION),
        ({}, {"to_number": NUMBER, "business_description": None}, 400, NO_DESCRIPTION),
        ({}, {}, 400, NO_DESCRIPTION),  # the description is checked before the number
        ({}, {"business_description": PIZZA}, 400, BAD_NUMBER),
        ({}, {"business_description": PIZZA, "to_number": None}, 400, BAD_NUMBER),
        ({}, {"business_description": PIZZA, "to_number": 15551234567}, 400, BAD_NUMBER),
        ({}, {"business_description": PIZZA, "to_number": "5551234567"}, 400, BAD_NUMBER),
        ({}, {"business_description": PIZZA, "to_number": "+0551234567"}, 400, BAD_NUMBER),
        ({}, {"business_description": PIZZA, "to_number": "+1555"}, 400, BAD_NUMBER),
        ({}, {"business_description": PIZZA, "to_number": "+155512345678901234"}, 400, BAD_NUMBER),
        ({}, {"business_description": PIZZA, "to_number": "+1234567"}, 400, BAD_NUMBER),
        ({}, {"business_description": PIZZA, "to_number": "+1234567890123456"}, 400, BAD_NUMBER),
        ({}, {"business_description": PIZZA, "to_number": "+1 555 123 4567"}, 400, BAD_NUMBER),
        ({}, {"business_description": PIZZA, "to_number": "+1555123456\n7"}, 400, BAD_NUMBER),
        ({}, {"business_description": PIZZA, "to_number": ""}, 400, BAD_NUMBER),
        (
            {
                "elevenlabs_api_key": Secret(""),
                "elevenlabs_agent_id": "",
                "elevenlabs_agent_phone_number_id": "",
            },
            {"business_description": PIZZA, "to_number": NUMBER},
            500,
            ALL_MISSING,
        ),
        (
            {"elevenlabs_api_key": Secret("")},
            {"business_description": PIZZA, "to_number": NUMBER},
            500,
            "Missing required environment variables: ELEVENLABS_API_KEY",
        ),
        (
            {"elevenlabs_agent_id": ""},
            {"business_description": PIZZA, "to_number": NUMBER},
            500,
            "Missing required environment variables: ELEVENLABS_AGENT_ID",
        ),
        (
            {"elevenlabs_agent_phone_number_id": ""},
            {"business_description": PIZZA, "to_number": NUMBER},
            500,
            "Missing required environment variables: ELEVENLABS_AGENT_PHONE_NUMBER_ID",
        ),
        (
            {"elevenlabs_api_key": Secret(""), "elevenlabs_agent_phone_number_id": ""},
            {"business_description": PIZZA, "to_number": NUMBER},
            500,
            "Missing required environment variables: "
            "ELEVENLABS_API_KEY, ELEVENLABS_AGENT_PHONE_NUMBER_ID",
        ),
        # The client's own mistakes come before the server's.
        (
            {"elevenlabs_api_key": Secret("")},
            {"business_description": PIZZA, "to_number": "555"},
            400,
            BAD_NUMBER,
        ),
        (
            {},
            {"to_number": NUMBER, "business_description": 42},
            400,
            "business_description must be a string.",
        ),
        (
            {},
            {"to_number": NUMBER, "business_description": PIZZA, "scenario": ["order"]},
            400,
            "scenario must be a string.",
        ),
    ],
)
def test_call_errors(
    upstream: Upstream, settings: dict[str, Any], body: dict[str, Any], status: int, message: str
) -> None:
    with bridge(upstream, make_settings(**settings)) as client:
        response = client.post("/api/call", json=body, headers=AUTH)
    assert (response.status_code, response.json()) == (status, {"error": message})
    assert upstream.requests == []


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (
            json_reply(
                {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}, 403
            ),
            "ElevenLabs API error (403): Invalid API key",
        ),
        (
            json_reply({"detail": "Agent not found"}, 404),
            "ElevenLabs API error (404): Agent not found",
        ),
        (
            json_reply({"detail": [{"loc": ["body", "to_number"], "msg": "bad"}]}, 422),
            "ElevenLabs API error (422): to_number: bad",
        ),
        (json_reply({"detail": "busy"}, 429), "ElevenLabs API error (429): busy"),
        (
            lambda request: httpx.Response(500, text="<html>oops</html>"),
            "ElevenLabs API error (500): <html>oops</html>",
        ),
        (
            lambda request: httpx.Response(200, text="not json"),
            "ElevenLabs API error (200): the response is not JSON",
        ),
        (
            json_reply({"success": False, "message": "Twilio rejected the number"}),
            "ElevenLabs API error (200): Twilio rejected the number",
        ),
        (
            json_reply({"success": False}),
            "ElevenLabs API error (200): the call was not started",
        ),
    ],
)
def test_elevenlabs_errors_are_502(upstream: Upstream, reply: Reply, message: str) -> None:
    upstream.reply = reply
    with bridge(upstream) as client:
        response = call(client, to_number=NUMBER, business_description=PIZZA)
    assert (response.status_code, response.json()) == (502, {"error": message})


def refuse(exc: Exception) -> Reply:
    def reply(request: httpx.Request) -> httpx.Response:
        raise exc

    return reply


@pytest.mark.parametrize(
    ("exc", "message"),
    [
        (
            httpx.ConnectError("connection refused"),
            "Could not reach ElevenLabs: connection refused",
        ),
        (httpx.ReadTimeout("slow"), "Could not reach ElevenLabs: timed out waiting for a response"),
        (httpx.RemoteProtocolError(""), "Could not reach ElevenLabs: RemoteProtocolError"),
        (httpx.DecodingError("bad gzip"), "Could not reach ElevenLabs: bad gzip"),
    ],
)
def test_unreachable_elevenlabs_is_502(upstream: Upstream, exc: Exception, message: str) -> None:
    upstream.reply = refuse(exc)
    with bridge(upstream) as client:
        response = call(client, to_number=NUMBER, business_description=PIZZA)
    assert response.status_code == 502
    assert response.json() == {"error": message}
    assert message.startswith("Could not reach ElevenLabs: ")


# --- what ElevenLabs gets ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "used"),
    [
        (
            "order a large pepperoni pizza for delivery to 123 Main St",
            "order a large pepperoni pizza for delivery to 123 Main St",
        ),
        ("order a pizza", "order a pizza"),
        ("  order a pizza.  ", "order a pizza"),
        ("Book a table\n\tfor  two...", "Book a table for two"),
        ("ask whether you're open today?!", "ask whether you're open today"),
        ("cancel my order . ;", "cancel my order"),
        ("ask about the \u201cfamily deal\u201d.", "ask about the \u201cfamily deal\u201d"),
        (None, DEFAULT_SCENARIO),
        ("", DEFAULT_SCENARIO),
        (" ... ", DEFAULT_SCENARIO),
    ],
)
def test_outbound_call_payload(
    client: TestClient, upstream: Upstream, scenario: str | None, used: str
) -> None:
    response = call(
        client, to_number=NUMBER, business_description=f"  {PIZZA}\n", scenario=scenario
    )
    assert response.status_code == 200, response.text
    assert response.json()["scenario"] == used
    (request,) = upstream.requests
    assert request.method == "POST"
    assert str(request.url) == f"{API_BASE}/v1/convai/twilio/outbound-call"
    assert request.headers["xi-api-key"] == API_KEY
    assert upstream.payload() == {
        "agent_id": "agent_caller",
        "agent_phone_number_id": "phnum_caller",
        "to_number": NUMBER,
        "conversation_initiation_client_data": {
            "conversation_config_override": {
                "agent": {
                    "prompt": {"prompt": prompt(PIZZA, used)},
                    "first_message": f"Hi, I'm calling because I'd like to {used}.",
                }
            }
        },
    }


def test_first_message_and_prompt_of_the_seed_example() -> None:
    assert (
        ai_caller.first_message("order a pizza")
        == "Hi, I'm calling because I'd like to order a pizza."
    )
    assert ai_caller.caller_prompt("We are a tech support helpdesk.", "report a login issue") == (
        "You are simulating a real customer contacting the business below. The other side is "
        "the company, an operator, or an IVR. Stay in character as the caller/customer, try to "
        "complete the task, and avoid escalating to a human unless the flow requires it.\n"
        "Business description: We are a tech support helpdesk.\n"
        "Caller goal: report a login issue\n"
        "Speak naturally, ask one thing at a time, and keep each response concise."
    )


@pytest.mark.parametrize(
    "number", ["+15551234567", "+442071234567", "+81312345678", "+12345678", "+123456789012345"]
)
def test_valid_numbers_are_called(client: TestClient, upstream: Upstream, number: str) -> None:
    response = call(client, to_number=f" {number} ", business_description=PIZZA)
    assert response.status_code == 200
    assert response.json()["to_number"] == number
    assert upstream.payload()["to_number"] == number


# --- the success response ---------------------------------------------------------------------


def test_success_response_of_the_seed_example(client: TestClient, upstream: Upstream) -> None:
    raw = {
        "status": "initiated",
        "call_sid": "CA1234567890abcdef1234567890abcdef",
        "conversation_id": "conv_abc123xyz789",
    }
    upstream.reply = json_reply(raw)
    response = call(
        client,
        to_number="+15551234567",
        business_description=PIZZA,
        scenario="order a large pepperoni pizza for delivery to 123 Main St",
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "ok": True,
        "status": "initiated",
        "message": "Call initiated.",
        "to_number": "+15551234567",
        "scenario": "order a large pepperoni pizza for delivery to 123 Main St",
        "call_sid": "CA1234567890abcdef1234567890abcdef",
        "conversation_id": "conv_abc123xyz789",
        "raw": raw,
    }


@pytest.mark.parametrize(
    ("raw", "status", "call_sid", "conversation_id"),
    [
        (ELEVENLABS_REPLY, "initiated", "CA1234567890abcdef", "conv_abc123"),
        (
            {"success": True, "message": "ok", "conversation_id": None, "callSid": None},
            "initiated",
            None,
            None,
        ),
        ({}, "initiated", None, None),
        (
            {"status": "queued", "call_sid": "CAsnake", "callSid": "CAcamel"},
            "queued",
            "CAcamel",
            None,
        ),
        (
            {"status": "", "call_sid": "CAsnake", "conversation_id": ""},
            "initiated",
            "CAsnake",
            None,
        ),
        ({"status": 3, "callSid": 12, "conversation_id": ["x"]}, "initiated", None, None),
    ],
)
def test_success_response_fields(
    client: TestClient,
    upstream: Upstream,
    raw: dict[str, Any],
    status: str,
    call_sid: str | None,
    conversation_id: str | None,
) -> None:
    upstream.reply = json_reply(raw)
    response = call(client, to_number=NUMBER, business_description=PIZZA, scenario="order a pizza")
    assert response.status_code == 200
    assert response.json() == {
        "ok": True,
        "status": status,
        "message": "Call initiated.",
        "to_number": NUMBER,
        "scenario": "order a pizza",
        "call_sid": call_sid,
        "conversation_id": conversation_id,
        "raw": raw,
    }


# --- the session ------------------------------------------------------------------------------


def test_context_then_call_uses_the_session(client: TestClient, upstream: Upstream) -> None:
    response = set_context(
        client, description="We are a tech support helpdesk.", scenario="report a login issue."
    )
    assert response.status_code == 200
    assert response.json() == {
        "ok": True,
        "description": "We are a tech support helpdesk.",
        "scenario": "report a login issue",
    }
    response = call(client, to_number=NUMBER)
    assert response.status_code == 200
    assert response.json()["scenario"] == "report a login issue"
    agent = upstream.payload()["conversation_initiation_client_data"][
        "conversation_config_override"
    ]["agent"]
    assert agent == {
        "prompt": {"prompt": prompt("We are a tech support helpdesk.", "report a login issue")},
        "first_message": "Hi, I'm calling because I'd like to report a login issue.",
    }


@pytest.mark.parametrize(
    ("body", "description", "scenario"),
    [
        ({}, "Session business.", "session goal"),
        ({"business_description": "Body business."}, "Body business.", "session goal"),
        ({"scenario": "body goal"}, "Session business.", "body goal"),
        (
            {"business_description": "Body business.", "scenario": "body goal"},
            "Body business.",
            "body goal",
        ),
        ({"business_description": "  ", "scenario": " . "}, "Session business.", "session goal"),
        ({"business_description": None, "scenario": None}, "Session business.", "session goal"),
    ],
)
def test_body_values_override_the_session(
    client: TestClient, upstream: Upstream, body: dict[str, Any], description: str, scenario: str
) -> None:
    set_context(client, description="Session business.", scenario="session goal")
    response = call(client, to_number=NUMBER, **body)
    assert response.status_code == 200
    assert response.json()["scenario"] == scenario
    agent = upstream.payload()["conversation_initiation_client_data"][
        "conversation_config_override"
    ]["agent"]
    assert agent["prompt"]["prompt"] == prompt(description, scenario)


def test_context_without_scenario_falls_back_to_the_default(
    client: TestClient, upstream: Upstream
) -> None:
    set_context(client, description="Old business.", scenario="old goal")
    response = set_context(client, description="  New business.  ")
    assert response.json() == {
        "ok": True,
        "description": "New business.",
        "scenario": DEFAULT_SCENARIO,
    }
    assert call(client, to_number=NUMBER).json()["scenario"] == DEFAULT_SCENARIO
    assert upstream.payload()["conversation_initiation_client_data"][
        "conversation_config_override"
    ]["agent"]["prompt"]["prompt"] == prompt("New business.", DEFAULT_SCENARIO)


def test_session_cookie_attributes(upstream: Upstream) -> None:
    with bridge(upstream) as client:
        plain = set_context(client, description="A shop.").headers["set-cookie"]
    with bridge(upstream, base_url="https://testserver") as client:
        secure = set_context(client, description="A shop.").headers["set-cookie"]
    for header in (plain, secure):
        attributes = [part.strip().lower() for part in header.split(";")]
        assert attributes[0].startswith(f"{ai_caller.SESSION_COOKIE}=")
        assert {"httponly", "samesite=lax", "path=/"} <= set(attributes)
        assert not any(part.startswith(("max-age", "expires")) for part in attributes)
    assert "secure" not in [part.strip().lower() for part in plain.split(";")]
    assert "secure" in [part.strip().lower() for part in secure.split(";")]


def test_session_works_over_https(upstream: Upstream) -> None:
    with bridge(upstream, base_url="https://testserver") as client:
        set_context(client, description="A shop.", scenario="buy a lamp")
        response = call(client, to_number=NUMBER)
    assert (response.status_code, response.json()["scenario"]) == (200, "buy a lamp")


def forge(payload: bytes, signature: bytes = b"") -> str:
    encoded = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    if not signature:
        return encoded
    return encoded + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


FORGED_PAYLOAD = b'{"description":"Forged business.","scenario":"forged goal"}'


def tamper(cookie: str) -> list[str]:
    body, _, signature = cookie.partition(".")
    flipped = "A" if signature[0] != "A" else "B"
    return [
        forge(FORGED_PAYLOAD),  # unsigned
        forge(FORGED_PAYLOAD) + "." + signature,  # someone else's signature
        forge(FORGED_PAYLOAD, b"\0" * 32),
        body + "." + flipped + signature[1:],
        body + "." + signature[:-2],
        body,
        "." + signature,
        body + "." + signature + "x",
        body + ".\u00e9" + signature[1:],
        "",
        "garbage",
    ]


def call_with_cookie(client: TestClient, cookie: str, **body: object) -> Any:
    """A call that sends exactly this session cookie (the client's jar is left out)."""
    client.cookies.clear()
    headers = {
        b"authorization": f"Bearer {TOKEN}".encode(),
        b"cookie": f"{ai_caller.SESSION_COOKIE}={cookie}".encode("latin-1"),
    }
    return client.post("/api/call", json=body, headers=headers)


def test_tampered_cookies_are_ignored(upstream: Upstream) -> None:
    with bridge(upstream) as client:
        set_context(client, description="Real business.", scenario="real goal")
        cookie = client.cookies[ai_caller.SESSION_COOKIE]
        for forged in tamper(cookie):
            response = call_with_cookie(client, forged, to_number=NUMBER)
            assert (response.status_code, response.json()) == (400, {"error": NO_DESCRIPTION})
            response = call_with_cookie(
                client, forged, to_number=NUMBER, business_description="Body business."
            )
            assert response.json()["scenario"] == DEFAULT_SCENARIO, forged
        response = call_with_cookie(client, cookie, to_number=NUMBER)
        assert response.json()["scenario"] == "real goal"


def test_cookie_from_another_key_is_ignored(upstream: Upstream) -> None:
    with bridge(upstream) as client:
        set_context(client, description="Real business.")
        cookie = client.cookies[ai_caller.SESSION_COOKIE]
    other = make_settings(bridge_api_token=Secret("another-token"))
    with bridge(upstream, other) as client:
        response = client.post(
            "/api/call",
            json={"to_number": NUMBER},
            headers={
                "authorization": "Bearer another-token",
                "cookie": f"{ai_caller.SESSION_COOKIE}={cookie}",
            },
        )
    assert (response.status_code, response.json()) == (400, {"error": NO_DESCRIPTION})


@pytest.mark.parametrize(
    ("first", "second", "accepted"),
    [
        ({}, {}, True),
        ({}, {"bridge_api_token": Secret("rotated")}, False),  # key derived from the token
        (
            {"session_secret": Secret("s3")},
            {"session_secret": Secret("s3"), "bridge_api_token": Secret("rotated")},
            True,
        ),
        ({"session_secret": Secret("s3")}, {"session_secret": Secret("s4")}, False),
        ({"session_secret": Secret(TOKEN)}, {}, False),  # a derived key, not the raw token
    ],
)
def test_session_keys(first: dict[str, Any], second: dict[str, Any], accepted: bool) -> None:
    cookie = ai_caller.dump_context(
        ai_caller.Context("A shop.", "buy a lamp"), signed.session_key(make_settings(**first))
    )
    loaded = ai_caller.load_context(cookie, signed.session_key(make_settings(**second)))
    expected = ai_caller.Context("A shop.", "buy a lamp") if accepted else ai_caller.Context()
    assert loaded == expected


def test_session_round_trips_any_text() -> None:
    key = signed.session_key(make_settings())
    context = ai_caller.Context(
        "Caf\u00e9 \u201cZ\u00fcrich\u201d; line\nbreak = ok", "\u6ce8\u6587\u3059\u308b"
    )
    cookie = ai_caller.dump_context(context, key)
    assert set(cookie) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    assert ai_caller.load_context(cookie, key) == context


@pytest.mark.parametrize(
    "payload",
    [b"[1, 2]", b'{"description": 5, "scenario": ["x"]}', b"\xff\xfe", b"not json", b'"text"'],
)
def test_signed_but_odd_payloads_give_an_empty_session(payload: bytes) -> None:
    key = signed.session_key(make_settings())
    body = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    cookie = body + "." + signed.signature(key, body)
    assert ai_caller.load_context(cookie, key) == ai_caller.Context()


def test_session_key_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="neither SESSION_SECRET nor BRIDGE_API_TOKEN"):
        signed.session_key(make_settings(bridge_api_token=Secret("")))


# --- /api/context's own errors ----------------------------------------------------------------

TOO_LONG = (
    "The description and scenario are too long to keep in the session (about 2,900 characters "
    "together at most). Send business_description and scenario with each /api/call instead."
)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "Provide a business description."),
        ({"description": "  "}, "Provide a business description."),
        ({"description": None, "scenario": "x"}, "Provide a business description."),
        ({"business_description": PIZZA}, "Provide a business description."),
        ({"description": 1}, "description must be a string."),
        ({"description": PIZZA, "scenario": 2}, "scenario must be a string."),
        ({"description": "x" * 2950}, TOO_LONG),
        ({"description": "\u00e9" * 1500}, TOO_LONG),
    ],
)
def test_context_errors(client: TestClient, body: dict[str, Any], message: str) -> None:
    response = set_context(client, **body)
    assert (response.status_code, response.json()) == (400, {"error": message})
    assert "set-cookie" not in response.headers


def test_longest_context_that_fits(client: TestClient, upstream: Upstream) -> None:
    description = "x" * 2900
    response = set_context(client, description=description)
    assert response.status_code == 200
    assert len(response.headers["set-cookie"].split(";")[0]) <= ai_caller.MAX_COOKIE_BYTES
    assert call(client, to_number=NUMBER).status_code == 200
    assert (
        f"Business description: {description}\n"
        in upstream.payload()["conversation_initiation_client_data"][
            "conversation_config_override"
        ]["agent"]["prompt"]["prompt"]
    )


# --- bodies, methods and the bearer token ---------------------------------------------------------

BIG = 64 * 1024


@pytest.mark.parametrize("path", ["/api/context", "/api/call"])
@pytest.mark.parametrize(
    ("content", "status", "message"),
    [
        (b"", 400, "Request body must be a JSON object."),
        (b"  \n", 400, "Request body must be a JSON object."),
        (b"[]", 400, "Request body must be a JSON object."),
        (b'"to_number"', 400, "Request body must be a JSON object."),
        (b"null", 400, "Request body must be a JSON object."),
        (b"{", 400, "Request body must be valid JSON."),
        (b"to_number=%2B15551234567", 400, "Request body must be valid JSON."),
        (b'{"description": "\xff"}', 400, "Request body must be valid JSON."),
        (b"[" * 50_000 + b"]" * 10_000, 400, "Request body must be valid JSON."),
        (b" " * (BIG + 1), 413, "Request body is too large (at most 65536 bytes)."),
    ],
)
def test_bad_bodies(
    client: TestClient, upstream: Upstream, path: str, content: bytes, status: int, message: str
) -> None:
    response = client.post(path, content=content, headers=AUTH)
    assert (response.status_code, response.json()) == (status, {"error": message})
    assert upstream.requests == []


@pytest.mark.parametrize("path", ["/api/context", "/api/call"])
def test_streamed_body_over_the_cap_is_413(client: TestClient, path: str) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(5):
            yield b" " * (BIG // 4)

    response = client.post(path, content=chunks(), headers=AUTH)
    assert (response.status_code, response.json()) == (
        413,
        {"error": "Request body is too large (at most 65536 bytes)."},
    )


def test_body_at_the_cap_is_read(client: TestClient) -> None:
    body = json.dumps({"description": "A shop.", "scenario": "buy a lamp"}).encode()
    response = client.post("/api/context", content=body + b" " * (BIG - len(body)), headers=AUTH)
    assert response.status_code == 200


def test_any_content_type_is_read_as_json(client: TestClient) -> None:
    response = client.post(
        "/api/context",
        content=b'{"description": "A shop."}',
        headers={**AUTH, "content-type": "text/plain"},
    )
    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/api/context", "/api/call"])
def test_only_post(client: TestClient, path: str) -> None:
    assert client.get(path, headers=AUTH).status_code == 405


@pytest.mark.parametrize("path", ["/api/context", "/api/call"])
@pytest.mark.parametrize(
    ("token", "headers", "status", "message"),
    [
        ("", AUTH, 503, "BRIDGE_API_TOKEN is not set: the outbound API is disabled until it is."),
        ("", {}, 503, "BRIDGE_API_TOKEN is not set: the outbound API is disabled until it is."),
        (TOKEN, {}, 401, "Missing or invalid bearer token."),
        (TOKEN, {"authorization": "Bearer wrong"}, 401, "Missing or invalid bearer token."),
        (TOKEN, {"authorization": TOKEN}, 401, "Missing or invalid bearer token."),
        (TOKEN, {"authorization": f"Basic {TOKEN}"}, 401, "Missing or invalid bearer token."),
    ],
)
def test_bearer_token(
    upstream: Upstream,
    path: str,
    token: str,
    headers: dict[str, str],
    status: int,
    message: str,
) -> None:
    settings = make_settings(bridge_api_token=Secret(token), session_secret=Secret("s3"))
    with bridge(upstream, settings) as client:
        # The token is checked before the body is read: even a bad body gets 401/503.
        for content in (
            b"{",
            json.dumps(
                {"to_number": NUMBER, "business_description": PIZZA, "description": PIZZA}
            ).encode(),
        ):
            response = client.post(path, content=content, headers=headers)
            assert (response.status_code, response.json()) == (status, {"error": message})
            assert "set-cookie" not in response.headers
    if status == 401:
        assert response.headers["www-authenticate"] == 'Bearer realm="callbridge"'
    assert upstream.requests == []


def test_routes_are_exported() -> None:
    assert [(route.path, route.methods) for route in ai_caller_api.routes] == [
        ("/api/context", {"POST"}),
        ("/api/call", {"POST"}),
    ]


# --- an ElevenLabs lost after the request left, on both transports ----------------------------


@pytest.mark.parametrize("transport", ["pooled", "aiohttp"])
@pytest.mark.parametrize(("fault", "result"), [("drop", "unknown"), ("refused", "not_placed")])
def test_a_call_lost_after_the_request_left_is_counted_as_unknown(
    transport: str, fault: str, result: str
) -> None:
    with faulty_upstream("drop") as upstream:
        url = upstream.url if fault == "drop" else f"http://127.0.0.1:{free_port()}"
        settings = make_settings(elevenlabs_api_base=url, upstream_transport=transport)
        app = create_app(settings)
        app.router.routes.extend(ai_caller_api.routes)
        with TestClient(app) as client:
            response = call(client, to_number=NUMBER, business_description=PIZZA)
    assert response.status_code == 502
    assert response.json()["error"].startswith("Could not reach ElevenLabs: ")
    counted = app.state.metrics.registry.get_sample_value(
        "callbridge_outbound_requests_total", {"mode": "ai_caller", "result": result}
    )
    assert counted == 1
