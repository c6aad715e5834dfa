"""POST /calls and transfers, against fake Twilio and ElevenLabs APIs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from defusedxml.ElementTree import fromstring
from sqlalchemy import create_engine, text
from starlette.testclient import TestClient

from bridge.app import create_app
from bridge.outbound.pending import PendingCalls
from bridge.secret import Secret
from tests.helpers import (
    API_TOKEN,
    AUTH_TOKEN,
    BEARER,
    ELEVENLABS_KEY,
    OUR_NUMBER,
    PUBLIC,
    SECRET_PIN,
    Upstreams,
    faulty_upstream,
    free_port,
    outbound_settings,
    post_signed,
    twilio_form,
)

CALLEE = "+14155550123"


@pytest.fixture
def client(outbound_client: TestClient) -> TestClient:
    return outbound_client


def answer(client: TestClient, url: str, **form: str) -> httpx.Response:
    """Twilio fetching the answer URL once the callee picks up."""
    fields = twilio_form(Direction="outbound-api", From=OUR_NUMBER, To=CALLEE, **form)
    parts = urlsplit(url)
    assert url.startswith(PUBLIC)
    return post_signed(client, f"{parts.path}?{parts.query}", fields)


def verbs(response: httpx.Response) -> list[str]:
    assert response.status_code == 200
    return [child.tag for child in fromstring(response.text)]


@pytest.mark.parametrize(
    ("token", "headers", "status", "error"),
    [
        ("", BEARER, 503, "BRIDGE_API_TOKEN is not set"),
        (API_TOKEN, {}, 401, "Missing or invalid bearer token."),
        (API_TOKEN, {"authorization": "Bearer wrong"}, 401, "Missing or invalid bearer token."),
        (API_TOKEN, {"authorization": f"Basic {API_TOKEN}"}, 401, "Missing or invalid"),
    ],
)
def test_the_api_needs_the_bearer_token(
    tmp_path: Path,
    upstreams: Upstreams,
    token: str,
    headers: dict[str, str],
    status: int,
    error: str,
) -> None:
    settings = outbound_settings(tmp_path, bridge_api_token=Secret(token))
    with TestClient(create_app(settings, transport=upstreams.transport)) as client:
        response = client.post("/calls", json={"to": CALLEE}, headers=headers)
    assert response.status_code == status
    assert response.json()["error"].startswith(error)
    assert upstreams.twilio.calls == {}


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, ["to"]),
        ({"to": "4155550123"}, ["to"]),
        ({"to": "+1\u0664\u0661\u06655550123"}, ["to"]),
        ({"to": CALLEE, "mode": "fax"}, ["mode"]),
        ({"to": CALLEE, "colour": "blue"}, ["colour"]),
        ({"to": CALLEE, "ring_timeout": 2}, ["ring_timeout"]),
        ({"to": CALLEE, "dynamic_variables": {"a": [1]}}, ["dynamic_variables.a"]),
        (
            {"to": CALLEE, "conversation_initiation_client_data": {"dynamic_variable": {}}},
            ["conversation_initiation_client_data.dynamic_variable"],
        ),
        (
            {
                "to": CALLEE,
                "conversation_initiation_client_data": {
                    "conversation_config_override": {"tts": {"stability": "high"}}
                },
            },
            ["conversation_initiation_client_data.conversation_config_override.tts.stability"],
        ),
        ({"to": CALLEE, "machine_detection": True, "on_machine": "message"}, ["(body)"]),
        *(
            ({"to": CALLEE, "on_machine": "message", "machine_message": text}, ["machine_message"])
            for text in ["   ", "\n\t ", "Call us\x00 back", "Call us\x1b[2J back", "beep\x7f"]
        ),
    ],
)
def test_bad_requests_list_every_field(
    client: TestClient, upstreams: Upstreams, body: dict[str, Any], fields: list[str]
) -> None:
    response = client.post("/calls", json=body, headers=BEARER)
    assert response.status_code == 422
    assert [item["field"] for item in response.json()["problems"]] == fields
    assert upstreams.twilio.calls == {}


def test_a_body_that_is_not_json_is_a_400(client: TestClient) -> None:
    response = client.post(
        "/calls", content=b"to=+1", headers={**BEARER, "content-type": "text/plain"}
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("to", "reason"),
    [
        ("+19005550100", "premium-rate"),
        ("+18765550100", "is in JM"),
        ("+447812345678", "is in GB"),
    ],
)
def test_toll_fraud_guard_refuses(
    client: TestClient, upstreams: Upstreams, to: str, reason: str
) -> None:
    response = client.post("/calls", json={"to": to}, headers=BEARER)
    assert response.status_code == 403
    assert reason in response.json()["error"]
    assert upstreams.twilio.calls == {} and upstreams.elevenlabs.outbound_requests == []


def test_twilio_mode_creates_the_call_and_registers_it_when_answered(
    client: TestClient, upstreams: Upstreams, tmp_path: Path
) -> None:
    response = client.post(
        "/calls",
        json={
            "to": CALLEE,
            "agent_id": "agent_reminders",
            "dynamic_variables": {"name": "Ada", "secret__pin": SECRET_PIN},
            "conversation_initiation_client_data": {
                "conversation_config_override": {"agent": {"first_message": "Hi Ada"}}
            },
            "ring_timeout": 25,
            "record": True,
        },
        headers=BEARER,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["mode"] == "twilio" and body["status"] == "queued"
    call = upstreams.twilio.calls[body["call_sid"]]
    assert call.param("To") == CALLEE and call.param("From") == OUR_NUMBER
    assert call.param("Timeout") == "25" and call.param("Record") == "true"
    # The recording comes back to the bridge, which fetches and stores its audio.
    assert (
        call.param("RecordingStatusCallback") == f"{PUBLIC}/twilio/recording-status?kind=recording"
    )
    assert call.params["RecordingStatusCallbackEvent"] == ["completed", "absent"]
    assert call.param("StatusCallback") == f"{PUBLIC}/twilio/status"
    assert call.params["StatusCallbackEvent"] == [
        "initiated",
        "ringing",
        "answered",
        "completed",
    ]
    answer_url = call.param("Url")
    assert answer_url and answer_url.startswith(f"{PUBLIC}/twilio/outbound-answer?call=")
    assert SECRET_PIN not in answer_url

    # While the call rings, the secret sits in the database only in sealed form.
    engine = create_engine(f"sqlite:///{tmp_path / 'bridge.sqlite3'}")
    with engine.connect() as connection:
        stored = json.dumps(
            [list(row) for row in connection.execute(text("SELECT * FROM pending_outbound_calls"))],
            default=str,
        )
    engine.dispose()
    assert "Ada" in stored and SECRET_PIN not in stored

    reply = answer(client, answer_url, CallSid=body["call_sid"], AnsweredBy="human")
    assert verbs(reply) == ["Connect"]
    assert upstreams.elevenlabs.requests == [
        {
            "agent_id": "agent_reminders",
            "from_number": OUR_NUMBER,
            "to_number": CALLEE,
            "direction": "outbound",
            "conversation_initiation_client_data": {
                "conversation_config_override": {"agent": {"first_message": "Hi Ada"}},
                "dynamic_variables": {"name": "Ada", "secret__pin": SECRET_PIN},
            },
        }
    ]
    # Answered once: a second fetch of the same URL does not register again.
    assert verbs(answer(client, answer_url, CallSid=body["call_sid"])) == ["Hangup"]
    assert len(upstreams.elevenlabs.requests) == 1


@pytest.mark.parametrize(
    ("request_fields", "answered_by", "expected_verbs", "detection"),
    [
        ({"on_machine": "hangup"}, "machine_start", ["Hangup"], "Enable"),
        ({"on_machine": "hangup"}, "human", ["Connect"], "Enable"),
        ({"on_machine": "hangup"}, "unknown", ["Connect"], "Enable"),
        ({"on_machine": "hangup"}, "fax", ["Hangup"], "Enable"),
        (
            {"on_machine": "message", "machine_message": "Call us back."},
            "machine_end_beep",
            ["Say", "Hangup"],
            "DetectMessageEnd",
        ),
        ({"on_machine": "agent"}, "machine_end_silence", ["Connect"], "Enable"),
    ],
)
def test_answering_machine_detection(
    client: TestClient,
    upstreams: Upstreams,
    request_fields: dict[str, str],
    answered_by: str,
    expected_verbs: list[str],
    detection: str,
) -> None:
    response = client.post(
        "/calls",
        json={"to": CALLEE, "machine_detection": True, **request_fields},
        headers=BEARER,
    )
    assert response.status_code == 201
    call = upstreams.twilio.calls[response.json()["call_sid"]]
    assert call.param("MachineDetection") == detection
    reply = answer(client, call.param("Url") or "", AnsweredBy=answered_by)
    assert verbs(reply) == expected_verbs
    if expected_verbs == ["Say", "Hangup"]:
        assert "Call us back." in reply.text


def test_without_machine_detection_twilio_is_not_asked_for_it(
    client: TestClient, upstreams: Upstreams
) -> None:
    response = client.post("/calls", json={"to": CALLEE}, headers=BEARER)
    call = upstreams.twilio.calls[response.json()["call_sid"]]
    assert call.param("MachineDetection") is None


def test_an_unsigned_answer_webhook_is_refused(client: TestClient) -> None:
    response = client.post(
        "/twilio/outbound-answer?call=abc", data=twilio_form(), headers={"X-Twilio-Signature": "x"}
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("mode", "path", "id_field"),
    [
        ("elevenlabs", "/v1/convai/twilio/outbound-call", "call_sid"),
        ("sip", "/v1/convai/sip-trunk/outbound-call", "sip_call_id"),
    ],
)
def test_native_modes(
    client: TestClient, upstreams: Upstreams, mode: str, path: str, id_field: str
) -> None:
    response = client.post(
        "/calls",
        json={"to": CALLEE, "mode": mode, "dynamic_variables": {"name": "Ada"}},
        headers=BEARER,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["mode"] == mode and body[id_field] and body["conversation_id"].startswith("conv_")
    (sent,) = upstreams.elevenlabs.outbound_requests
    assert sent["path"] == path
    assert sent["body"] == {
        "agent_id": "agent_default",
        "agent_phone_number_id": "phnum_test",
        "to_number": CALLEE,
        "conversation_initiation_client_data": {"dynamic_variables": {"name": "Ada"}},
    }


@pytest.mark.parametrize(
    ("mode", "script", "status", "error", "placed"),
    [
        ("twilio", ["status:400"], 400, "Twilio API error (400", False),
        ("twilio", ["status:500"], 500, "Twilio API error (500", "unknown"),
        ("elevenlabs", ["status:422"], 422, "ElevenLabs API error (422)", False),
        ("elevenlabs", ["status:500"], 500, "ElevenLabs API error (500)", "unknown"),
        ("sip", ["status:503"], 503, "ElevenLabs API error (503)", "unknown"),
    ],
)
def test_upstream_errors_are_502_with_the_upstream_status(
    client: TestClient,
    upstreams: Upstreams,
    mode: str,
    script: list[str],
    status: int,
    error: str,
    placed: object,
) -> None:
    fake = upstreams.twilio if mode == "twilio" else upstreams.elevenlabs
    fake.script.extend(script)
    response = client.post("/calls", json={"to": CALLEE, "mode": mode}, headers=BEARER)
    assert response.status_code == 502
    body = response.json()
    assert body["error"].startswith(error) and body["upstream_status"] == status
    # A refusal (4xx) placed nothing; after a 5xx the call may exist.
    assert body["placed"] == placed
    assert AUTH_TOKEN not in response.text and ELEVENLABS_KEY not in response.text


def test_a_mode_without_its_settings_is_a_503(tmp_path: Path, upstreams: Upstreams) -> None:
    settings = outbound_settings(tmp_path, elevenlabs_agent_phone_number_id="")
    with TestClient(create_app(settings, transport=upstreams.transport)) as client:
        response = client.post("/calls", json={"to": CALLEE, "mode": "sip"}, headers=BEARER)
    assert response.status_code == 503
    assert "ELEVENLABS_AGENT_PHONE_NUMBER_ID" in response.json()["error"]


def test_idempotency_key_replays_without_dialling_again(
    client: TestClient, upstreams: Upstreams
) -> None:
    headers = {**BEARER, "Idempotency-Key": "reminder-42"}
    first = client.post("/calls", json={"to": CALLEE}, headers=headers)
    second = client.post("/calls", json={"to": CALLEE}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert len(upstreams.twilio.calls) == 1
    mismatch = client.post("/calls", json={"to": "+14155550124"}, headers=headers)
    assert mismatch.status_code == 422
    assert len(upstreams.twilio.calls) == 1


def test_a_failed_call_releases_its_key_so_a_retry_can_dial(
    client: TestClient, upstreams: Upstreams
) -> None:
    headers = {**BEARER, "Idempotency-Key": "retry-me"}
    upstreams.twilio.script.append("status:400")
    assert client.post("/calls", json={"to": CALLEE}, headers=headers).status_code == 502
    retry = client.post("/calls", json={"to": CALLEE}, headers=headers)
    assert retry.status_code == 201
    assert len(upstreams.twilio.calls) == 1


def test_an_uncertain_failure_keeps_its_key_so_nobody_is_rung_twice(
    client: TestClient, upstreams: Upstreams
) -> None:
    headers = {**BEARER, "Idempotency-Key": "maybe-placed"}
    upstreams.twilio.script.append("status:503")
    first = client.post("/calls", json={"to": CALLEE}, headers=headers)
    assert first.status_code == 502 and first.json()["placed"] == "unknown"
    retry = client.post("/calls", json={"to": CALLEE}, headers=headers)
    assert retry.status_code == 502 and retry.json() == first.json()
    assert retry.headers["idempotent-replayed"] == "true"


@pytest.mark.parametrize("transport", ["pooled", "aiohttp"])
@pytest.mark.parametrize("mode", ["twilio", "elevenlabs", "sip"])
@pytest.mark.parametrize("fault", ["drop", "drip"])
def test_an_upstream_lost_after_the_request_left_gets_one_call_for_three_retries(
    tmp_path: Path, transport: str, mode: str, fault: str
) -> None:
    with faulty_upstream(fault) as upstream:
        settings = outbound_settings(
            tmp_path,
            twilio_api_base=upstream.url,
            elevenlabs_api_base=upstream.url,
            upstream_transport=transport,
        )
        app = create_app(settings)
        # The bridge's 15 s upstream timeout, shortened so the dripping answer runs out.
        dialer = app.state.dialer
        for client in (dialer.twilio._http, dialer.elevenlabs._http):
            client.timeout = httpx.Timeout(0.5)
        headers = {**BEARER, "Idempotency-Key": f"{mode}-{fault}"}
        with TestClient(app) as client:
            answers = [
                client.post("/calls", json={"to": CALLEE, "mode": mode}, headers=headers)
                for _ in range(3)
            ]
    assert len(upstream.received) == 1
    # The 0.5 s timeout ended a dripping answer (the client hung up), as it ends any other.
    assert all(sent < 30 for sent in upstream.dripped)
    assert [answer.status_code for answer in answers] == [502, 502, 502]
    assert [answer.json()["placed"] for answer in answers] == ["unknown"] * 3
    assert [answer.headers.get("idempotent-replayed") for answer in answers[1:]] == ["true"] * 2


@pytest.mark.anyio
async def test_concurrent_duplicates_dial_once(tmp_path: Path, upstreams: Upstreams) -> None:
    upstreams.twilio.latency = 0.3
    app = create_app(outbound_settings(tmp_path), transport=upstreams.transport)
    headers = {**BEARER, "Idempotency-Key": "same-time"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bridge"
    ) as client:
        responses = await asyncio.gather(
            *(client.post("/calls", json={"to": CALLEE}, headers=headers) for _ in range(4))
        )
    await app.state.database.dispose()  # no lifespan runs over ASGITransport
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201, 409, 409, 409]
    assert len(upstreams.twilio.calls) == 1


def placed_call_sid(client: TestClient) -> str:
    response = client.post("/calls", json={"to": CALLEE}, headers=BEARER)
    assert response.status_code == 201
    sid: str = response.json()["call_sid"]
    return sid


@pytest.mark.parametrize("shape", ["path", "server_tool"])
def test_transfer_redirects_the_live_call_to_a_person(
    client: TestClient, upstreams: Upstreams, shape: str
) -> None:
    sid = placed_call_sid(client)
    body = {"to": "+14155550199", "message": "Connecting you to Sam."}
    if shape == "path":
        response = client.post(f"/calls/{sid}/transfer", json=body, headers=BEARER)
    else:
        response = client.post("/calls/transfer", json={**body, "call_sid": sid}, headers=BEARER)
    assert response.status_code == 200, response.text
    assert response.json()["transferred"] is True
    assert response.json()["message"] == "Transferring the caller to +14155550199."
    (update,) = upstreams.twilio.calls[sid].updates
    root = fromstring(update["Twiml"][0])
    assert [child.tag for child in root] == ["Say", "Dial"]
    dial = root.find("Dial")
    assert dial is not None and dial.get("callerId") == OUR_NUMBER
    assert dial.get("action") == f"{PUBLIC}/twilio/dial-complete?step=transfer"
    assert [number.text for number in dial] == ["+14155550199"]
    assert root[0].text == "Connecting you to Sam."


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        ("/calls/transfer", {"to": "+14155550199"}, 422, "call_sid: required"),
        ("/calls/CA123/transfer", {"to": "+14155550199"}, 404, "is not a Twilio call SID"),
        (f"/calls/CA{'0' * 32}/transfer", {"to": "+14155550199"}, 404, "Twilio API error (404)"),
        (f"/calls/CA{'0' * 32}/transfer", {"to": "+19005550100"}, 403, "premium-rate"),
        (f"/calls/CA{'0' * 32}/transfer", {"to": "+14155550199", "x": 1}, 422, "x: unknown"),
    ],
)
def test_transfer_errors(
    client: TestClient, path: str, body: dict[str, Any], status: int, error: str
) -> None:
    response = client.post(path, json=body, headers=BEARER)
    assert response.status_code == status
    assert error in response.json()["error"]


def test_transfer_needs_the_token(client: TestClient, upstreams: Upstreams) -> None:
    sid = placed_call_sid(client)
    response = client.post(f"/calls/{sid}/transfer", json={"to": "+14155550199"})
    assert response.status_code == 401
    assert upstreams.twilio.calls[sid].updates == []


def test_a_bridge_failure_mid_dial_keeps_the_key_so_nobody_is_rung_twice(
    client: TestClient, upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch
) -> None:
    dialer = client.app.state.dialer  # type: ignore[attr-defined]
    real_place = dialer.place

    async def place_then_crash(request: object) -> object:
        await real_place(request)  # the upstream created the call...
        raise RuntimeError("...and then the bridge fell over")

    monkeypatch.setattr(dialer, "place", place_then_crash)
    headers = {**BEARER, "Idempotency-Key": "crash"}
    first = client.post("/calls", json={"to": CALLEE}, headers=headers)
    assert first.status_code == 500 and first.json()["placed"] == "unknown"
    monkeypatch.setattr(dialer, "place", real_place)
    retry = client.post("/calls", json={"to": CALLEE}, headers=headers)
    assert retry.status_code == 500
    assert retry.json()["placed"] == "unknown"
    assert len(upstreams.twilio.calls) == 1


@pytest.mark.parametrize(
    ("failing", "status", "placed", "calls"),
    [
        # Before dialling: nothing was dialled, and a retry may dial.
        ("add", 503, False, 0),
        # Once Twilio created the call: it may exist, and a retry must not dial again.
        ("set_call_sid", 500, "unknown", 1),
    ],
)
def test_bookkeeping_that_fails_is_a_json_answer_saying_whether_the_call_exists(
    client: TestClient,
    upstreams: Upstreams,
    monkeypatch: pytest.MonkeyPatch,
    failing: str,
    status: int,
    placed: object,
    calls: int,
) -> None:
    async def database_down(*args: object, **kwargs: object) -> None:
        raise OSError("the database went away")

    monkeypatch.setattr(PendingCalls, failing, database_down)
    headers = {**BEARER, "Idempotency-Key": f"bookkeeping-{failing}"}
    response = client.post("/calls", json={"to": CALLEE}, headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json()["placed"] == placed and response.json()["error"]
    assert len(upstreams.twilio.calls) == calls
    monkeypatch.undo()
    retry = client.post("/calls", json={"to": CALLEE}, headers=headers)
    assert retry.status_code == (201 if placed is False else status)
    assert len(upstreams.twilio.calls) == 1


@pytest.mark.parametrize("transport", ["pooled", "aiohttp"])
@pytest.mark.parametrize(("fault", "transferred"), [("drop", "unknown"), ("refused", False)])
def test_a_transfer_lost_after_the_request_left_may_have_happened(
    tmp_path: Path, transport: str, fault: str, transferred: object
) -> None:
    with faulty_upstream("drop") as upstream:
        url = upstream.url
        if fault == "refused":
            url = f"http://127.0.0.1:{free_port()}"
        settings = outbound_settings(tmp_path, twilio_api_base=url, upstream_transport=transport)
        with TestClient(create_app(settings)) as client:
            response = client.post(
                f"/calls/CA{'0' * 32}/transfer", json={"to": "+14155550199"}, headers=BEARER
            )
    assert response.status_code == 502
    assert response.json()["transferred"] == transferred
    assert len(upstream.received) == (1 if fault == "drop" else 0)


@pytest.mark.parametrize(
    ("dial_status", "expected"),
    [("completed", ["Hangup"]), ("no-answer", ["Say", "Hangup"]), ("busy", ["Say", "Hangup"])],
)
def test_after_a_transfer_only_an_unanswered_caller_hears_the_goodbye(
    client: TestClient, dial_status: str, expected: list[str]
) -> None:
    form = twilio_form(DialCallStatus=dial_status)
    response = post_signed(client, "/twilio/dial-complete?step=transfer", form)
    assert verbs(response) == expected


def test_without_a_public_url_the_transfer_twiml_ends_with_the_goodbye(
    tmp_path: Path, upstreams: Upstreams
) -> None:
    call_sid = "CA" + "7" * 32
    settings = outbound_settings(tmp_path, public_base_url="")
    with TestClient(create_app(settings, transport=upstreams.transport)) as client:
        moved = client.post(
            f"/calls/{call_sid}/transfer", json={"to": "+14155550199"}, headers=BEARER
        )
    # The fake Twilio does not know the call (404), but it recorded the TwiML sent.
    assert moved.status_code == 404
    (sent,) = [r for r in upstreams.twilio.requests if r.path.endswith(f"{call_sid}.json")]
    root = fromstring(sent.form["Twiml"][0])
    assert [child.tag for child in root] == ["Dial", "Say", "Hangup"]


@pytest.mark.parametrize(
    "message",
    ["&" * 1000, "hold on\u000b please"],
    ids=["too-long-once-escaped", "control-character"],
)
def test_transfer_messages_twiml_cannot_carry_are_422(client: TestClient, message: str) -> None:
    response = client.post(
        f"/calls/CA{'0' * 32}/transfer",
        json={"to": "+14155550199", "message": message},
        headers=BEARER,
    )
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "message"


@pytest.mark.parametrize("path", ["/calls", f"/calls/CA{'0' * 32}/transfer"])
@pytest.mark.parametrize("to", ["4155550123", "+1 415 555 0123", "+14155550123x"])
def test_a_bad_number_is_explained_not_shown_as_a_pattern(
    client: TestClient, path: str, to: str
) -> None:
    response = client.post(path, json={"to": to}, headers=BEARER)
    assert response.status_code == 422
    (problem,) = response.json()["problems"]
    assert problem["field"] == "to"
    assert "an E.164 number like +14155550123" in problem["problem"]
    assert "pattern" not in response.json()["error"]


@pytest.mark.parametrize("to", ["sip:alice@pbx.example.com", "SIP:desk@10.0.0.5;transport=tls"])
def test_a_transfer_may_go_to_a_sip_address(
    client: TestClient, upstreams: Upstreams, to: str
) -> None:
    sid = placed_call_sid(client)
    response = client.post(f"/calls/{sid}/transfer", json={"to": to}, headers=BEARER)
    assert response.status_code == 200, response.text
    assert response.json()["to"] == to
    (update,) = upstreams.twilio.calls[sid].updates
    dial = fromstring(update["Twiml"][0]).find("Dial")
    assert dial is not None
    assert [(child.tag, child.text) for child in dial] == [("Sip", to)]


def test_a_sip_transfer_needs_a_user_and_host(client: TestClient) -> None:
    response = client.post(
        f"/calls/CA{'0' * 32}/transfer", json={"to": "sip:pbx.example.com"}, headers=BEARER
    )
    assert response.status_code == 422
    assert response.json()["problems"] == [
        {"field": "to", "problem": "should be a SIP URI like sip:alice@example.com"}
    ]
