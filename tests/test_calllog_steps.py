"""Every step of a call is an event on it: transfers, dial results, voicemails,
fallbacks and machine detection; the call keeps the action its rule chose."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import insert
from starlette.testclient import TestClient

from bridge.storage.tables import calls
from tests.helpers import BEARER, OUR_NUMBER, Upstreams, post_signed, twilio_form

SID = "CA" + "5" * 32
CALLER = "+14155550123"


@pytest.fixture
def client(outbound_client: TestClient) -> TestClient:
    return outbound_client


def shown(client: TestClient, sid: str) -> dict[str, Any]:
    response = client.get(f"/calls/{sid}", headers=BEARER)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def events(client: TestClient, sid: str, kind: str) -> list[dict[str, Any]]:
    return [event["data"] for event in shown(client, sid)["events"] if event["kind"] == kind]


def placed(client: TestClient) -> str:
    response = client.post("/calls", json={"to": CALLER}, headers=BEARER)
    assert response.status_code == 201, response.text
    sid: str = response.json()["call_sid"]
    return sid


def add_forwarded_call(client: TestClient, sid: str) -> None:
    async def add() -> None:
        engine = await client.app.state.database.engine()  # type: ignore[attr-defined]
        async with engine.begin() as connection:
            await connection.execute(
                insert(calls).values(
                    id="forwarded",
                    call_sid=sid,
                    direction="inbound",
                    rule="sales",
                    action="forward",
                    outcome="handled",
                    status_rank=0,
                    created_at=datetime.now(UTC),
                )
            )

    client.portal.call(add)  # type: ignore[union-attr]


@pytest.mark.parametrize(("path", "requested_by"), [("path", "api"), ("server_tool", "agent_tool")])
def test_a_transfer_is_an_event_with_who_asked_to_whom_and_twilios_answer(
    client: TestClient, path: str, requested_by: str
) -> None:
    sid = placed(client)
    body = {"to": "+14155550199", "message": "Connecting you to Sam."}
    if path == "path":
        response = client.post(f"/calls/{sid}/transfer", json=body, headers=BEARER)
    else:
        response = client.post("/calls/transfer", json={**body, "call_sid": sid}, headers=BEARER)
    assert response.status_code == 200, response.text
    assert events(client, sid, "transfer") == [
        {
            "requested_by": requested_by,
            "to": "+14155550199",
            "message": "Connecting you to Sam.",
            "twilio_status": 200,
            "transferred": True,
        }
    ]


def test_a_refused_transfer_is_an_event_with_twilios_error(client: TestClient) -> None:
    sid = "CA" + "0" * 32  # unknown to Twilio: 404
    response = client.post(f"/calls/{sid}/transfer", json={"to": "+14155550199"}, headers=BEARER)
    assert response.status_code == 404
    (event,) = events(client, sid, "transfer")
    assert event["requested_by"] == "api"
    assert event["twilio_status"] == 404
    assert event["transferred"] is False
    assert "error" in event


def test_a_transfer_to_a_refused_destination_is_an_event(client: TestClient) -> None:
    sid = placed(client)
    response = client.post(f"/calls/{sid}/transfer", json={"to": "+19005550100"}, headers=BEARER)
    assert response.status_code == 403
    (event,) = events(client, sid, "transfer")
    assert event["to"] == "+19005550100"
    assert "premium-rate" in event["error"]


def dial_complete(client: TestClient, status: str, duration: str = "") -> Any:
    form = twilio_form(CallSid=SID, From=CALLER, To=OUR_NUMBER, DialCallStatus=status)
    if duration:
        form["DialCallDuration"] = duration
    return post_signed(client, "/twilio/dial-complete?step=rule%3Asales", form)


def test_a_forward_nobody_answered_keeps_its_action_and_has_a_dial_result(
    client: TestClient,
) -> None:
    add_forwarded_call(client, SID)
    assert dial_complete(client, "no-answer").status_code == 200
    call = shown(client, SID)
    assert call["action"] == "forward"
    assert events(client, SID, "dial_result") == [{"step": "rule:sales", "status": "no-answer"}]


def test_an_answered_forward_records_its_duration(client: TestClient) -> None:
    add_forwarded_call(client, SID)
    assert dial_complete(client, "completed", "42").status_code == 200
    assert shown(client, SID)["action"] == "forward"
    assert events(client, SID, "dial_result") == [
        {"step": "rule:sales", "status": "completed", "duration": 42}
    ]


def test_a_replayed_dial_complete_adds_nothing(client: TestClient) -> None:
    add_forwarded_call(client, SID)
    dial_complete(client, "no-answer")
    before = shown(client, SID)["events"]
    dial_complete(client, "no-answer")
    assert shown(client, SID)["events"] == before
    assert len(events(client, SID, "dial_result")) == 1


def test_a_voicemail_is_an_event_and_a_replay_adds_nothing(client: TestClient) -> None:
    form = twilio_form(
        CallSid=SID, From=CALLER, To=OUR_NUMBER, RecordingSid="RE123", RecordingDuration="12"
    )
    for _ in range(2):
        response = post_signed(client, "/twilio/voicemail-complete?step=rule%3Aafter", form)
        assert response.status_code == 200
    assert events(client, SID, "voicemail") == [
        {"step": "rule:after", "recording_sid": "RE123", "duration": 12}
    ]


def test_machine_detection_is_an_event_and_a_replay_adds_nothing(
    client: TestClient, upstreams: Upstreams
) -> None:
    sid = placed(client)
    url = upstreams.twilio.calls[sid].param("Url") or ""
    path = url.removeprefix("https://bridge.example.com")
    assert path.startswith("/twilio/"), url
    form = twilio_form(
        CallSid=sid,
        From=OUR_NUMBER,
        To=CALLER,
        Direction="outbound-api",
        AnsweredBy="machine_end_beep",
    )
    for _ in range(2):
        assert post_signed(client, path, form).status_code == 200
    assert events(client, sid, "amd") == [{"answered_by": "machine_end_beep"}]
    assert len(events(client, sid, "outbound_answer")) == 1


def test_a_fallback_after_a_dial_is_an_event(client: TestClient) -> None:
    add_forwarded_call(client, SID)  # its rule is no longer in the routing file
    dial_complete(client, "no-answer")
    assert events(client, SID, "fallback") == [{"action": "forward", "reason": "unknown_step"}]
    kinds = [event["kind"] for event in shown(client, SID)["events"]]
    assert kinds == ["dial_result", "dial_complete", "fallback"]
    assert shown(client, SID)["action"] == "forward"


def test_an_inbound_fallback_is_an_event_after_the_answer(
    client: TestClient, upstreams: Upstreams
) -> None:
    upstreams.elevenlabs.script = ["status:400"]
    form = twilio_form(CallSid=SID, From=CALLER, To=OUR_NUMBER)
    assert post_signed(client, "/twilio/inbound", form).status_code == 200
    writer = client.app.state.call_log_writer  # type: ignore[attr-defined]
    client.portal.call(writer.flush)  # type: ignore[union-attr]
    kinds = [event["kind"] for event in shown(client, SID)["events"]]
    assert kinds == ["inbound", "fallback"]
    assert events(client, SID, "fallback") == [
        {"action": "agent", "reason": events(client, SID, "inbound")[0]["reason"]}
    ]
