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


# --- ElevenLabs agents ------------------------------------------------------------------

AGENT = "/v1/convai/agents/{}"


def test_get_agent_returns_the_documented_shape(
    elevenlabs_fake: FakeElevenLabs, elevenlabs: TestClient
) -> None:
    elevenlabs_fake.add_agent("agent_1", input_format="pcm_16000", output_format="ulaw_8000")
    response = elevenlabs.get(AGENT.format("agent_1"), headers={"xi-api-key": KEY})
    assert response.status_code == 200
    agent = response.json()
    assert {"agent_id", "name", "conversation_config", "metadata", "platform_settings"} <= set(
        agent
    )
    config = agent["conversation_config"]
    assert set(config["asr"]) == {"quality", "provider", "user_input_audio_format", "keywords"}
    assert config["asr"]["user_input_audio_format"] == "pcm_16000"
    assert config["tts"]["agent_output_audio_format"] == "ulaw_8000"
    assert {"model_id", "voice_id"} <= set(config["tts"])
    assert {"first_message", "language", "prompt"} <= set(config["agent"])
    assert isinstance(agent["metadata"]["created_at_unix_secs"], int)


def test_add_agent_makes_an_id(elevenlabs_fake: FakeElevenLabs) -> None:
    agent = elevenlabs_fake.add_agent()
    assert re.fullmatch(r"agent_[0-9a-f]{26}", agent["agent_id"])
    assert elevenlabs_fake.agents[agent["agent_id"]] is agent


@pytest.mark.parametrize("method", ["GET", "PATCH"])
def test_unknown_agent_is_404(elevenlabs: TestClient, method: str) -> None:
    response = elevenlabs.request(
        method, AGENT.format("agent_nobody"), json={}, headers={"xi-api-key": KEY}
    )
    assert response.status_code == 404
    detail = response.json()["detail"]
    assert set(detail) == {"status", "message"}
    assert "agent_nobody" in detail["message"]


@pytest.mark.parametrize("method", ["GET", "PATCH"])
@pytest.mark.parametrize("key", ["", "wrong-key"])
def test_agent_endpoints_check_the_key(
    elevenlabs_fake: FakeElevenLabs, elevenlabs: TestClient, method: str, key: str
) -> None:
    elevenlabs_fake.add_agent("agent_1")
    response = elevenlabs.request(
        method, AGENT.format("agent_1"), json={"name": "x"}, headers={"xi-api-key": key}
    )
    assert response.status_code == 401
    assert response.json()["detail"]["status"] == "invalid_api_key"
    assert elevenlabs_fake.agent_patches == []
    assert elevenlabs_fake.agents["agent_1"]["name"] != "x"


def test_patch_agent_merges_and_answers_the_new_agent(
    elevenlabs_fake: FakeElevenLabs, elevenlabs: TestClient
) -> None:
    before = copy.deepcopy(
        elevenlabs_fake.add_agent("agent_1", input_format="pcm_16000", output_format="pcm_16000")
    )
    body = {
        "name": "Renamed",
        "conversation_config": {
            "asr": {"user_input_audio_format": "ulaw_8000"},
            "tts": {"agent_output_audio_format": "ulaw_8000"},
            "agent": None,  # null: left as it is
        },
    }
    response = elevenlabs.patch(AGENT.format("agent_1"), json=body, headers={"xi-api-key": KEY})
    assert response.status_code == 200
    after = response.json()
    assert after == elevenlabs_fake.agents["agent_1"]
    assert after["name"] == "Renamed"
    assert after["conversation_config"]["asr"] == {
        **before["conversation_config"]["asr"],
        "user_input_audio_format": "ulaw_8000",
    }
    assert (
        after["conversation_config"]["tts"]["voice_id"]
        == (before["conversation_config"]["tts"]["voice_id"])
    )
    assert after["conversation_config"]["agent"] == before["conversation_config"]["agent"]
    assert elevenlabs_fake.agent_patches == [{"agent_id": "agent_1", "body": body}]
    read = elevenlabs.get(AGENT.format("agent_1"), headers={"xi-api-key": KEY}).json()
    assert read["conversation_config"]["tts"]["agent_output_audio_format"] == "ulaw_8000"


def test_patch_that_does_not_stick(elevenlabs_fake: FakeElevenLabs, elevenlabs: TestClient) -> None:
    elevenlabs_fake.apply_agent_patches = False
    elevenlabs_fake.add_agent("agent_1", input_format="pcm_16000")
    body = {"conversation_config": {"asr": {"user_input_audio_format": "ulaw_8000"}}}
    response = elevenlabs.patch(AGENT.format("agent_1"), json=body, headers={"xi-api-key": KEY})
    assert response.status_code == 200
    assert response.json()["conversation_config"]["asr"]["user_input_audio_format"] == "pcm_16000"
    assert len(elevenlabs_fake.agent_patches) == 1


ASR = ("conversation_config", "asr")
TTS = ("conversation_config", "tts")


@pytest.mark.parametrize(
    ("loc", "value", "kind"),
    [
        pytest.param((*ASR, "user_input_audio_format"), "mp3_44100", "enum", id="input-format"),
        pytest.param((*ASR, "user_input_audio_format"), "ULAW_8000", "enum", id="input-case"),
        pytest.param((*TTS, "agent_output_audio_format"), "ulaw_16000", "enum", id="output"),
        pytest.param((*TTS, "agent_output_audio_format"), 8000, "enum", id="output-number"),
        pytest.param((*ASR, "surprise"), 1, "extra_forbidden", id="asr-extra"),
        pytest.param((*TTS, "audio_format"), "ulaw_8000", "extra_forbidden", id="tts-extra"),
        pytest.param(("conversation_config", "telephony"), {}, "extra_forbidden", id="cc-extra"),
        pytest.param(("agent_id",), "agent_2", "extra_forbidden", id="top-level-extra"),
        pytest.param(("name",), 5, "string_type", id="name"),
        pytest.param(("conversation_config",), "ulaw", "dict_type", id="config-string"),
        pytest.param((*ASR, "keywords"), "hello", "list_type", id="keywords"),
        pytest.param((*TTS, "stability"), "high", "float_type", id="stability"),
    ],
)
def test_patch_agent_rejects(
    elevenlabs_fake: FakeElevenLabs,
    elevenlabs: TestClient,
    loc: tuple[str, ...],
    value: Any,
    kind: str,
) -> None:
    agent = copy.deepcopy(elevenlabs_fake.add_agent("agent_1"))
    body: dict[str, Any] = {}
    target = body
    for name in loc[:-1]:
        target = target.setdefault(name, {})
    target[loc[-1]] = value
    response = elevenlabs.patch(AGENT.format("agent_1"), json=body, headers={"xi-api-key": KEY})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert (error["loc"], error["type"]) == (["body", *loc], kind)
    assert elevenlabs_fake.agents["agent_1"] == agent
    assert elevenlabs_fake.agent_patches == []


def test_register_call_does_not_check_agent_formats(
    elevenlabs_fake: FakeElevenLabs, elevenlabs: TestClient
) -> None:
    # Like the real API: the wrong format shows up later, as silence on the call.
    elevenlabs_fake.add_agent("agent_pcm", input_format="pcm_16000", output_format="pcm_16000")
    body = {"agent_id": "agent_pcm", "from_number": "+15551234567", "to_number": "+15557654321"}
    response = post(elevenlabs, "/v1/convai/twilio/register-call", body)
    assert response.status_code == 200
    assert "<Connect>" in response.text


# --- Twilio account and phone numbers ---------------------------------------------------

ACCOUNT_PATH = f"/2010-04-01/Accounts/{ACCOUNT}.json"
NUMBERS = f"/2010-04-01/Accounts/{ACCOUNT}/IncomingPhoneNumbers.json"
NUMBER = f"/2010-04-01/Accounts/{ACCOUNT}/IncomingPhoneNumbers/{{}}.json"


def test_twilio_account(twilio_fake: FakeTwilio, twilio: TestClient) -> None:
    response = twilio.get(ACCOUNT_PATH, headers=basic())
    assert response.status_code == 200
    account = response.json()
    assert (account["sid"], account["status"], account["type"]) == (ACCOUNT, "active", "Full")
    assert account["uri"] == ACCOUNT_PATH
    assert account["auth_token"] == TOKEN  # as the real API does: clients must hide it
    twilio_fake.account_status = "suspended"
    assert twilio.get(ACCOUNT_PATH, headers=basic()).json()["status"] == "suspended"
    assert [(r.method, r.path) for r in twilio_fake.requests] == [("GET", ACCOUNT_PATH)] * 2


@pytest.mark.parametrize(
    "path", [ACCOUNT_PATH, NUMBERS, NUMBER.format("PN" + "0" * 32)], ids=["account", "list", "one"]
)
def test_twilio_number_endpoints_authenticate(
    twilio_fake: FakeTwilio, twilio: TestClient, path: str
) -> None:
    assert twilio.get(path, headers=basic(password="wrong")).json() == AUTHENTICATE
    assert twilio.get(path).status_code == 401
    assert twilio_fake.requests == []


def test_twilio_other_account_is_not_found(twilio: TestClient) -> None:
    response = twilio.get(f"/2010-04-01/Accounts/AC{'c' * 32}.json", headers=basic())
    assert (response.status_code, response.json()["code"]) == (404, 20404)


def test_twilio_list_numbers(twilio_fake: FakeTwilio, twilio: TestClient) -> None:
    ours = twilio_fake.add_number("+14155550100", voice_url="https://bridge.example/in")
    twilio_fake.add_number("+14155550199")
    response = twilio.get(NUMBERS, params={"PhoneNumber": "+14155550100"}, headers=basic())
    assert response.status_code == 200
    page = response.json()
    # The SDK finds the records as the one key that is not a paging field.
    assert set(page) == {
        "end",
        "first_page_uri",
        "incoming_phone_numbers",
        "next_page_uri",
        "page",
        "page_size",
        "previous_page_uri",
        "start",
        "uri",
    }
    assert page["incoming_phone_numbers"] == [ours]
    assert (page["page"], page["page_size"], page["next_page_uri"]) == (0, 50, None)
    assert page["uri"].startswith(NUMBERS + "?PhoneNumber=%2B14155550100")
    assert twilio_fake.requests[-1].query == {"PhoneNumber": ["+14155550100"]}
    everything = twilio.get(NUMBERS, params={"PageSize": "1"}, headers=basic()).json()
    assert len(everything["incoming_phone_numbers"]) == 1
    assert everything["next_page_uri"].endswith("PageSize=1&Page=1")
    wildcard = twilio.get(NUMBERS, params={"PhoneNumber": "555019*"}, headers=basic()).json()
    assert [n["phone_number"] for n in wildcard["incoming_phone_numbers"]] == ["+14155550199"]
    none = twilio.get(NUMBERS, params={"PhoneNumber": "+442071234567"}, headers=basic()).json()
    assert none["incoming_phone_numbers"] == []
    assert twilio.get(NUMBERS, params={"PageSize": "0"}, headers=basic()).status_code == 400


def test_twilio_number_resource(twilio_fake: FakeTwilio, twilio: TestClient) -> None:
    number = twilio_fake.add_number("+14155550100", trunk_sid="TK" + "1" * 32)
    response = twilio.get(NUMBER.format(number["sid"]), headers=basic())
    assert response.status_code == 200
    resource = response.json()
    assert re.fullmatch(r"PN[0-9a-f]{32}", resource["sid"])
    assert resource["phone_number"] == "+14155550100"
    assert resource["trunk_sid"] == "TK" + "1" * 32
    assert resource["voice_application_sid"] is None
    assert resource["capabilities"]["voice"] is True
    assert resource["uri"] == NUMBER.format(number["sid"])
    unknown = twilio.get(NUMBER.format("PN" + "9" * 32), headers=basic())
    assert (unknown.status_code, unknown.json()["code"]) == (404, 20404)


def test_twilio_update_number(twilio_fake: FakeTwilio, twilio: TestClient) -> None:
    number = twilio_fake.add_number(
        "+14155550100", voice_url="https://old.example/voice", voice_method="GET"
    )
    app_sid = "AP" + "2" * 32
    form = {
        "VoiceUrl": "https://bridge.example/twilio/inbound",
        "VoiceMethod": "post",
        "StatusCallback": "https://bridge.example/twilio/status",
        "VoiceApplicationSid": app_sid,
        "SomethingNew": "ignored",
    }
    response = twilio.post(NUMBER.format(number["sid"]), data=form, headers=basic())
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["voice_url"] == "https://bridge.example/twilio/inbound"
    assert updated["voice_method"] == "POST"
    assert updated["status_callback"] == "https://bridge.example/twilio/status"
    assert updated["voice_application_sid"] == app_sid
    assert "SomethingNew" not in updated and "something_new" not in updated
    assert twilio_fake.numbers[number["sid"]] == updated
    # Setting a trunk removes the application (documented), and "" removes a value.
    trunk = twilio.post(
        NUMBER.format(number["sid"]), data={"TrunkSid": "TK" + "3" * 32}, headers=basic()
    ).json()
    assert (trunk["trunk_sid"], trunk["voice_application_sid"]) == ("TK" + "3" * 32, None)
    cleared = twilio.post(
        NUMBER.format(number["sid"]), data={"TrunkSid": "", "VoiceUrl": ""}, headers=basic()
    ).json()
    assert (cleared["trunk_sid"], cleared["voice_url"]) == (None, "")
    assert twilio_fake.requests[-1].form == {"TrunkSid": [""], "VoiceUrl": [""]}


@pytest.mark.parametrize(
    ("form", "code"),
    [
        pytest.param({"VoiceUrl": "not a url"}, 21402, id="voice-url"),
        pytest.param({"VoiceUrl": "ftp://x/y"}, 21402, id="voice-url-scheme"),
        pytest.param({"StatusCallback": "/twilio/status"}, 21402, id="status-callback"),
        pytest.param({"VoiceFallbackUrl": "bridge"}, 21402, id="fallback-url"),
        pytest.param({"VoiceMethod": "PUT"}, 21403, id="voice-method"),
        pytest.param({"StatusCallbackMethod": "DELETE"}, 21403, id="callback-method"),
        pytest.param({"VoiceFallbackMethod": ""}, 21403, id="empty-method"),
        pytest.param({"VoiceApplicationSid": "AP123"}, 22108, id="application-sid"),
        pytest.param({"TrunkSid": "trunk-1"}, 20001, id="trunk-sid"),
        pytest.param({"VoiceCallerIdLookup": "maybe"}, 20001, id="caller-id-lookup"),
    ],
)
def test_twilio_update_number_rejects(
    twilio_fake: FakeTwilio, twilio: TestClient, form: dict[str, str], code: int
) -> None:
    number = copy.deepcopy(twilio_fake.add_number("+14155550100"))
    response = twilio.post(NUMBER.format(number["sid"]), data=form, headers=basic())
    assert response.status_code == 400
    body = response.json()
    assert (body["code"], body["status"]) == (code, 400)
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    assert twilio_fake.numbers[number["sid"]] == number


def test_twilio_number_update_that_does_not_stick(
    twilio_fake: FakeTwilio, twilio: TestClient
) -> None:
    twilio_fake.apply_number_updates = False
    number = copy.deepcopy(twilio_fake.add_number("+14155550100", voice_method="GET"))
    path = NUMBER.format(number["sid"])
    response = twilio.post(path, data={"VoiceMethod": "POST"}, headers=basic())
    assert (response.status_code, response.json()) == (200, number)
    assert twilio_fake.requests[-1].form == {"VoiceMethod": ["POST"]}
    # Invalid requests are still refused.
    bad = twilio.post(path, data={"VoiceMethod": "PUT"}, headers=basic())
    assert bad.json()["code"] == 21403
