"""The fakes reject what the real APIs reject, in the real APIs' shapes."""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from typing import Any

import httpx2
import pytest
from starlette.testclient import TestClient

from bridge.fakes import FakeElevenLabs, FakeTwilio

ACCOUNT = "AC" + "b" * 32
TOKEN = "fake-twilio-token"
KEY = "fake-elevenlabs-key"
CALLS = f"/2010-04-01/Accounts/{ACCOUNT}/Calls.json"
TWILIO_OUTBOUND = "/v1/convai/twilio/outbound-call"
SIP_OUTBOUND = "/v1/convai/sip-trunk/outbound-call"
OUTBOUND_PATHS = [TWILIO_OUTBOUND, SIP_OUTBOUND]


def basic(user: str = ACCOUNT, password: str = TOKEN) -> dict[str, str]:
    encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


# --- Twilio --------------------------------------------------------------------------


@pytest.fixture
def twilio_fake() -> FakeTwilio:
    return FakeTwilio(account_sid=ACCOUNT, auth_token=TOKEN)


@pytest.fixture
def twilio(twilio_fake: FakeTwilio) -> Iterator[TestClient]:
    with TestClient(twilio_fake.app, base_url="https://api.twilio.com") as client:
        yield client


GOOD_FORM = {"To": "+15551234567", "From": "+15557654321", "Url": "https://bridge.example/out"}


def create(twilio: TestClient, form: Any = None, **headers: str) -> httpx2.Response:
    return twilio.post(CALLS, data=GOOD_FORM if form is None else form, headers=headers or basic())


def update(twilio: TestClient, sid: str, form: dict[str, str]) -> httpx2.Response:
    path = f"/2010-04-01/Accounts/{ACCOUNT}/Calls/{sid}.json"
    return twilio.post(path, data=form, headers=basic())


def test_twilio_create_returns_a_call_resource(twilio_fake: FakeTwilio, twilio: TestClient) -> None:
    response = create(twilio)
    assert response.status_code == 201
    call = response.json()
    assert re.fullmatch(r"CA[0-9a-f]{32}", call["sid"])
    assert call["account_sid"] == ACCOUNT
    assert (call["to"], call["from"]) == (GOOD_FORM["To"], GOOD_FORM["From"])
    assert (call["status"], call["direction"]) == ("queued", "outbound-api")
    assert call["api_version"] == "2010-04-01"
    assert call["uri"] == f"/2010-04-01/Accounts/{ACCOUNT}/Calls/{call['sid']}.json"
    assert parsedate_to_datetime(call["date_created"]).tzinfo is not None
    assert twilio_fake.calls[call["sid"]].resource == call


def test_twilio_create_keeps_repeated_keys(twilio_fake: FakeTwilio, twilio: TestClient) -> None:
    form = {**GOOD_FORM, "StatusCallbackEvent": ["initiated", "completed"]}
    sid = create(twilio, form).json()["sid"]
    stored = twilio_fake.calls[sid]
    assert stored.params["StatusCallbackEvent"] == ["initiated", "completed"]
    assert stored.param("Url") == GOOD_FORM["Url"]
    assert stored.param("Record") is None
    assert twilio_fake.requests[-1].form == stored.params


@pytest.mark.parametrize(
    ("changes", "code", "message"),
    [
        pytest.param({"To": None}, 21201, "No 'To' number", id="no-to"),
        pytest.param({"To": ""}, 21201, "No 'To' number", id="empty-to"),
        pytest.param({"To": "5551234567"}, 21211, "'To' number 5551234567", id="to-not-e164"),
        pytest.param({"To": "+0123456"}, 21211, "is not a valid phone number", id="to-zero"),
        pytest.param({"From": None}, 21213, "No 'From' number", id="no-from"),
        pytest.param({"From": "bridge"}, 21212, "'From' number bridge", id="from-not-e164"),
        pytest.param({"Url": None}, 21205, "Url parameter is required", id="no-url"),
        pytest.param({"Url": "ftp://x/y"}, 21205, "Url is not a valid URL", id="url-scheme"),
        pytest.param({"Url": "not a url"}, 21205, "Url is not a valid URL", id="url-garbage"),
        pytest.param({"StatusCallback": "/relative"}, 21205, "StatusCallback", id="callback"),
        pytest.param({"Twiml": "x" * 4001}, 32018, "4000 characters", id="twiml-too-long"),
        pytest.param({"Method": "PUT"}, 21200, "Method must be GET or POST", id="method"),
        pytest.param({"StatusCallbackMethod": "DELETE"}, 21200, "GET or POST", id="cb-method"),
        pytest.param({"Timeout": "soon"}, 21200, "Timeout", id="timeout-text"),
        pytest.param({"Timeout": "0"}, 21200, "Timeout", id="timeout-zero"),
        pytest.param({"Timeout": "601"}, 21200, "Timeout", id="timeout-too-long"),
        pytest.param({"Record": "maybe"}, 21200, "Record", id="record"),
    ],
)
def test_twilio_create_validation(
    twilio_fake: FakeTwilio,
    twilio: TestClient,
    changes: dict[str, str | None],
    code: int,
    message: str,
) -> None:
    form = {**GOOD_FORM, **changes}
    response = create(twilio, {name: value for name, value in form.items() if value is not None})
    assert response.status_code == 400
    assert response.json() == {
        "code": code,
        "message": response.json()["message"],
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": 400,
    }
    assert message in response.json()["message"]
    assert twilio_fake.calls == {}


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"Url": None, "Twiml": "<Response/>"}, id="twiml-instead-of-url"),
        pytest.param({"Twiml": "x" * 4000}, id="twiml-at-the-limit"),
        pytest.param({"Timeout": "600", "Record": "false", "Method": "get"}, id="options"),
        pytest.param({"MachineDetection": "Enable"}, id="amd"),
    ],
)
def test_twilio_create_accepts(twilio: TestClient, changes: dict[str, str | None]) -> None:
    form = {**GOOD_FORM, **changes}
    response = create(twilio, {name: value for name, value in form.items() if value is not None})
    assert response.status_code == 201, response.text


AUTHENTICATE = {
    "code": 20003,
    "message": "Authenticate",
    "more_info": "https://www.twilio.com/docs/errors/20003",
    "status": 401,
}


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="none"),
        pytest.param(basic(password="wrong"), id="wrong-token"),
        pytest.param(basic(user="AC" + "c" * 32), id="other-account"),
        pytest.param(basic(password=""), id="empty-token"),
        pytest.param({"Authorization": f"Bearer {TOKEN}"}, id="bearer"),
        pytest.param({"Authorization": "Basic %%%"}, id="not-base64"),
        pytest.param(
            {"Authorization": "Basic " + base64.b64encode(b"\xff:\xfe").decode()}, id="bytes"
        ),
    ],
)
def test_twilio_authentication(
    twilio_fake: FakeTwilio, twilio: TestClient, headers: dict[str, str]
) -> None:
    response = twilio.post(CALLS, data=GOOD_FORM, headers=headers)
    assert response.status_code == 401
    assert response.json() == AUTHENTICATE
    assert response.headers["www-authenticate"].startswith("Basic")
    assert twilio_fake.requests == []


def test_twilio_other_account_path_is_not_found(twilio: TestClient) -> None:
    path = f"/2010-04-01/Accounts/AC{'c' * 32}/Calls.json"
    response = twilio.post(path, data=GOOD_FORM, headers=basic())
    assert response.status_code == 404
    assert response.json()["code"] == 20404


def test_twilio_update(twilio_fake: FakeTwilio, twilio: TestClient) -> None:
    sid = create(twilio).json()["sid"]
    assert update(twilio, sid, {"Twiml": "<Response><Hangup/></Response>"}).status_code == 200
    assert update(twilio, sid, {"Url": "https://bridge.example/human"}).status_code == 200
    assert update(twilio, sid, {"Twiml": "x" * 4001}).json()["code"] == 32018
    assert update(twilio, sid, {"Status": "ringing"}).json()["code"] == 21200
    ended = update(twilio, sid, {"Status": "completed"})
    assert ended.json()["status"] == "completed"
    redirect_after_end = update(twilio, sid, {"Twiml": "<Response/>"})
    assert (redirect_after_end.status_code, redirect_after_end.json()["code"]) == (400, 21220)
    assert twilio_fake.calls[sid].updates == [
        {"Twiml": ["<Response><Hangup/></Response>"]},
        {"Url": ["https://bridge.example/human"]},
        {"Status": ["completed"]},
    ]


def test_twilio_update_of_an_unknown_call(twilio: TestClient) -> None:
    sid = "CA" + "9" * 32
    response = update(twilio, sid, {"Twiml": "<Response/>"})
    assert response.status_code == 404
    body = response.json()
    assert (body["code"], body["status"]) == (20404, 404)
    assert body["message"] == (
        f"The requested resource /2010-04-01/Accounts/{ACCOUNT}/Calls/{sid}.json was not found"
    )


@pytest.mark.parametrize(
    ("step", "status", "check"),
    [
        pytest.param("status:500", 500, lambda r: r.json()["code"] == 20500, id="500"),
        pytest.param("status:401", 401, lambda r: r.json() == AUTHENTICATE, id="401"),
        pytest.param("html", 200, lambda r: "Bad Gateway" in r.text, id="html"),
        pytest.param("empty", 201, lambda r: r.content == b"", id="empty"),
        pytest.param("json", 201, lambda r: "sid" not in r.json(), id="json"),
    ],
)
def test_twilio_script(
    twilio_fake: FakeTwilio, twilio: TestClient, step: str, status: int, check: Any
) -> None:
    twilio_fake.script.append(step)
    assert create(twilio, {"To": "bad"}).status_code == 400  # invalid requests use no step
    response = create(twilio)
    assert response.status_code == status
    assert check(response)
    assert twilio_fake.calls == {}
    assert create(twilio).status_code == 201


# --- ElevenLabs outbound calls --------------------------------------------------------


@pytest.fixture
def elevenlabs_fake() -> FakeElevenLabs:
    return FakeElevenLabs(api_key=KEY)


@pytest.fixture
def elevenlabs(elevenlabs_fake: FakeElevenLabs) -> Iterator[TestClient]:
    with TestClient(elevenlabs_fake.app, base_url="https://api.elevenlabs.io") as client:
        yield client


MINIMAL = {"agent_id": "agent_1", "agent_phone_number_id": "phnum_1", "to_number": "+15551234567"}
FULL_CLIENT_DATA: dict[str, Any] = {
    "conversation_config_override": {
        "agent": {
            "first_message": "Hello!",
            "language": "en",
            "prompt": {"prompt": "Be brief.", "llm": "gpt-4o-mini", "native_mcp_server_ids": ["m"]},
        },
        "tts": {
            "voice_id": "JBFqnCBsd6RMkjVDRZzb",
            "stability": 0.5,
            "speed": 1,
            "similarity_boost": 0.8,
        },
        "turn": {"soft_timeout_config": {"message": "One moment."}},
        "conversation": {"text_only": False},
    },
    "custom_llm_extra_body": {"temperature": 0.2, "anything": ["goes"]},
    "user_id": "user-42",
    "source_info": {"source": "python_sdk", "version": "1.0"},
    "dynamic_variables": {"name": "Ada", "balance": 12.5, "visits": 3, "vip": True, "note": None},
}
NULLS_CLIENT_DATA: dict[str, Any] = {
    "conversation_config_override": {
        "agent": None,
        "tts": None,
        "turn": None,
        "conversation": None,
    },
    "user_id": None,
    "source_info": {"source": None, "version": None},
    "dynamic_variables": {},
}


def post(client: TestClient, path: str, body: Any, key: str = KEY) -> httpx2.Response:
    return client.post(path, json=body, headers={"xi-api-key": key})


@pytest.mark.parametrize("path", OUTBOUND_PATHS)
@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({}, id="minimal"),
        pytest.param({"conversation_initiation_client_data": None}, id="null-client-data"),
        pytest.param({"conversation_initiation_client_data": {}}, id="empty-client-data"),
        pytest.param({"conversation_initiation_client_data": FULL_CLIENT_DATA}, id="full"),
        pytest.param({"conversation_initiation_client_data": NULLS_CLIENT_DATA}, id="nulls"),
    ],
)
def test_outbound_accepts(
    elevenlabs_fake: FakeElevenLabs, elevenlabs: TestClient, path: str, extra: dict[str, Any]
) -> None:
    body = {**MINIMAL, **extra}
    response = post(elevenlabs, path, body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["success"] is True
    assert result["conversation_id"].startswith("conv_")
    if path == TWILIO_OUTBOUND:
        assert set(result) == {"success", "message", "conversation_id", "callSid"}
        assert result["message"] == "Success"
        assert re.fullmatch(r"CA[0-9a-f]{32}", result["callSid"])
    else:
        assert set(result) == {"success", "message", "conversation_id", "sip_call_id"}
        assert result["message"] == "Outbound call initiated successfully."
        assert result["sip_call_id"].startswith("sipcall_")
    assert elevenlabs_fake.outbound_requests == [{"path": path, "body": body}]


def test_sip_accepts_telephony_call_config(elevenlabs: TestClient) -> None:
    body = {**MINIMAL, "telephony_call_config": {"ringing_timeout_secs": 30}}
    assert post(elevenlabs, SIP_OUTBOUND, body).status_code == 200


CD = "conversation_initiation_client_data"
OVERRIDE = (CD, "conversation_config_override")


def with_value(loc: tuple[str, ...], value: Any) -> dict[str, Any]:
    """MINIMAL with `value` set at `loc`, creating objects on the way (`...`: remove it)."""
    body: dict[str, Any] = copy.deepcopy(MINIMAL)
    target = body
    for name in loc[:-1]:
        target = target.setdefault(name, {})
    if value is ...:
        del target[loc[-1]]
    else:
        target[loc[-1]] = value
    return body


@pytest.mark.parametrize("path", OUTBOUND_PATHS)
@pytest.mark.parametrize(
    ("loc", "value", "kind"),
    [
        pytest.param(("agent_id",), ..., "missing", id="no-agent-id"),
        pytest.param(("agent_phone_number_id",), ..., "missing", id="no-phone-number-id"),
        pytest.param(("to_number",), ..., "missing", id="no-to-number"),
        pytest.param(("agent_id",), 7, "string_type", id="agent-id-number"),
        pytest.param(("agent_phone_number_id",), None, "string_type", id="phone-id-null"),
        pytest.param(("to_number",), ["+1555"], "string_type", id="to-number-list"),
        pytest.param(("surprise",), 1, "extra_forbidden", id="extra-field"),
        pytest.param((CD,), "yes", "dict_type", id="client-data-string"),
        pytest.param((CD, "surprise"), 1, "extra_forbidden", id="client-data-extra"),
        pytest.param((CD, "dynamic_variables"), ["a"], "dict_type", id="dv-list"),
        pytest.param((CD, "dynamic_variables", "items"), [1], "union_type", id="dv-list-value"),
        pytest.param((CD, "dynamic_variables", "who"), {"a": 1}, "union_type", id="dv-object"),
        pytest.param((CD, "user_id"), 42, "string_type", id="user-id"),
        pytest.param((CD, "source_info"), None, "dict_type", id="source-info-null"),
        pytest.param((CD, "source_info", "source"), "fax", "enum", id="source"),
        pytest.param((CD, "source_info", "version"), 1.0, "string_type", id="version"),
        pytest.param((CD, "custom_llm_extra_body"), [1], "dict_type", id="extra-body"),
        pytest.param(OVERRIDE, None, "dict_type", id="override-null"),
        pytest.param((*OVERRIDE, "asr"), {}, "extra_forbidden", id="override-extra"),
        pytest.param((*OVERRIDE, "agent"), "x", "dict_type", id="agent"),
        pytest.param((*OVERRIDE, "agent", "first_message"), 5, "string_type", id="first-msg"),
        pytest.param((*OVERRIDE, "agent", "language"), ["en"], "string_type", id="language"),
        pytest.param((*OVERRIDE, "agent", "voice"), "x", "extra_forbidden", id="agent-extra"),
        pytest.param((*OVERRIDE, "agent", "prompt", "prompt"), 5, "string_type", id="prompt"),
        pytest.param((*OVERRIDE, "agent", "prompt", "llm"), "gpt-99", "enum", id="llm"),
        pytest.param(
            (*OVERRIDE, "agent", "prompt", "native_mcp_server_ids"), "m", "list_type", id="mcp"
        ),
        pytest.param((*OVERRIDE, "tts", "voice_id"), 5, "string_type", id="voice-id"),
        pytest.param((*OVERRIDE, "tts", "stability"), "0.5", "float_type", id="stability"),
        pytest.param((*OVERRIDE, "tts", "speed"), True, "float_type", id="speed-bool"),
        pytest.param((*OVERRIDE, "tts", "similarity_boost"), "hi", "float_type", id="boost"),
        pytest.param(
            (*OVERRIDE, "turn", "soft_timeout_config", "message"), 5, "string_type", id="soft"
        ),
        pytest.param((*OVERRIDE, "turn", "soft_timeout_config"), 5, "dict_type", id="soft-cfg"),
        pytest.param((*OVERRIDE, "conversation", "text_only"), "no", "bool_type", id="text-only"),
        pytest.param((*OVERRIDE, "conversation", "text_only"), 0, "bool_type", id="text-only-0"),
    ],
)
def test_outbound_rejects(
    elevenlabs_fake: FakeElevenLabs,
    elevenlabs: TestClient,
    path: str,
    loc: tuple[str, ...],
    value: Any,
    kind: str,
) -> None:
    response = post(elevenlabs, path, with_value(loc, value))
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", *loc]
    assert error["type"] == kind
    assert isinstance(error["msg"], str) and error["msg"]
    assert elevenlabs_fake.outbound_requests == []


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        pytest.param({"x": 1}, None, id="sip-object"),
        pytest.param("x", "dict_type", id="sip-string"),
    ],
)
def test_telephony_call_config(elevenlabs: TestClient, value: Any, kind: str | None) -> None:
    body = {**MINIMAL, "telephony_call_config": value}
    twilio_response = post(elevenlabs, TWILIO_OUTBOUND, body)
    assert twilio_response.json()["detail"][0]["type"] == "extra_forbidden"  # SIP only
    sip_response = post(elevenlabs, SIP_OUTBOUND, body)
    if kind is None:
        assert sip_response.status_code == 200
    else:
        assert sip_response.json()["detail"][0]["type"] == kind


@pytest.mark.parametrize("path", OUTBOUND_PATHS)
def test_outbound_reports_every_problem(elevenlabs: TestClient, path: str) -> None:
    body = {"agent_id": 1, "to_number": "+1555", "extra": True}
    locs = [error["loc"] for error in post(elevenlabs, path, body).json()["detail"]]
    assert sorted(locs) == [
        ["body", "agent_id"],
        ["body", "agent_phone_number_id"],
        ["body", "extra"],
    ]


@pytest.mark.parametrize("path", OUTBOUND_PATHS)
@pytest.mark.parametrize(
    ("content", "loc", "kind"),
    [
        pytest.param(b"{not json", ["body"], "json_invalid", id="not-json"),
        pytest.param(b"[1, 2]", ["body"], "dict_type", id="a-list"),
        pytest.param(b'"text"', ["body"], "dict_type", id="a-string"),
    ],
)
def test_outbound_rejects_bodies_that_are_not_objects(
    elevenlabs: TestClient, path: str, content: bytes, loc: list[str], kind: str
) -> None:
    response = elevenlabs.post(path, content=content, headers={"xi-api-key": KEY})
    assert response.status_code == 422
    assert [(e["loc"], e["type"]) for e in response.json()["detail"]] == [(loc, kind)]


@pytest.mark.parametrize("path", [*OUTBOUND_PATHS, "/v1/convai/twilio/register-call"])
@pytest.mark.parametrize("key", ["", "wrong-key", KEY + "x"])
def test_elevenlabs_api_key(
    elevenlabs_fake: FakeElevenLabs, elevenlabs: TestClient, path: str, key: str
) -> None:
    response = post(elevenlabs, path, MINIMAL, key=key)
    assert response.status_code == 401
    assert response.json() == {
        "detail": {"status": "invalid_api_key", "message": "Invalid API key"}
    }
    assert elevenlabs_fake.outbound_requests == elevenlabs_fake.requests == []


@pytest.mark.parametrize(
    ("path", "id_name"), [(TWILIO_OUTBOUND, "callSid"), (SIP_OUTBOUND, "sip_call_id")]
)
def test_outbound_script(
    elevenlabs_fake: FakeElevenLabs, elevenlabs: TestClient, path: str, id_name: str
) -> None:
    elevenlabs_fake.script.extend(["status:503", "unsuccessful"])
    assert post(elevenlabs, path, {}).status_code == 422  # invalid requests use no step
    assert post(elevenlabs, path, MINIMAL).status_code == 503
    failed = post(elevenlabs, path, MINIMAL).json()
    assert failed == {
        "success": False,
        "message": failed["message"],
        "conversation_id": None,
        id_name: None,
    }
    assert post(elevenlabs, path, MINIMAL).json()["success"] is True
    assert len(elevenlabs_fake.outbound_requests) == 3


def test_register_call_is_unchanged(
    elevenlabs_fake: FakeElevenLabs, elevenlabs: TestClient
) -> None:
    path = "/v1/convai/twilio/register-call"
    body = {"agent_id": "agent_1", "from_number": "+15551234567", "to_number": "+15557654321"}
    response = post(elevenlabs, path, {**body, "direction": "inbound"})
    assert response.status_code == 200
    assert response.text.lstrip().startswith("<?xml") and "<Connect>" in response.text
    assert elevenlabs_fake.requests == [{**body, "direction": "inbound"}]
    assert elevenlabs_fake.outbound_requests == []
    rejected = post(elevenlabs, path, {"agent_id": "a", "to_number": 1, "direction": "up"})
    assert [(e["loc"], e["type"]) for e in rejected.json()["detail"]] == [
        (["body", "from_number"], "missing"),
        (["body", "to_number"], "string_type"),
        (["body", "direction"], "enum"),
    ]
