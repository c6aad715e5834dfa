"""ElevenLabs post-call webhooks on SQLite and PostgreSQL: signatures, each type,
replays, unmatched conversations, audio files and secret__ variables."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from bridge.app import create_app
from bridge.calllog.records import CallRecords
from bridge.elevenlabs.webhook_signature import HEADER, sign
from bridge.secret import Secret
from bridge.storage.tables import call_events
from bridge.web import elevenlabs_webhook
from tests.helpers import API_TOKEN, BEARER, CallLogBridge, fresh_sqlite, make_settings

SECRET = "wsec_test_current"
OLD_SECRET = "wsec_test_previous"
URL = "/elevenlabs/webhook"


class Bridge(CallLogBridge):
    def events(self, conversation_id: str) -> list[Any]:
        return super().events(call_events.c.dedupe_key.like(f"elevenlabs:%:{conversation_id}%"))


@pytest.fixture(params=["sqlite", "postgresql"])
def bridge(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Bridge]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'hooks.sqlite3'}"
        fresh_sqlite(url)
    else:
        url = request.getfixturevalue("postgres_url")
    settings = make_settings(
        database_url=url,
        elevenlabs_webhook_secret=Secret(f"{SECRET},{OLD_SECRET}"),
        bridge_api_token=Secret(API_TOKEN),
        call_audio_dir=tmp_path / "audio",
    )
    app = create_app(settings)
    with TestClient(app) as client:
        yield Bridge(client, app.state.database, SECRET)


def new_ids() -> tuple[str, str]:
    return f"conv_{uuid.uuid4().hex}", "CA" + uuid.uuid4().hex


def transcription(conversation_id: str, call_sid: str, stamp: int = 1739537297) -> dict[str, Any]:
    return {
        "type": "post_call_transcription",
        "event_timestamp": stamp,
        "data": {
            "agent_id": "agent_default",
            "conversation_id": conversation_id,
            "status": "done",
            "transcript": [
                {"role": "agent", "message": "Hello, how can I help?", "time_in_call_secs": 0},
                {"role": "user", "message": "Opening hours?", "time_in_call_secs": 3},
            ],
            "metadata": {
                "start_time_unix_secs": 1739537255,
                "call_duration_secs": 42,
                "cost": 310,
                "termination_reason": "end_call tool was called.",
                "phone_call": {
                    "direction": "inbound",
                    "phone_number_id": "phnum_1",
                    "agent_number": "+14155550100",
                    "external_number": "+14155550123",
                    "type": "twilio",
                    "stream_sid": "MZ" + "0" * 32,
                    "call_sid": call_sid,
                },
            },
            "analysis": {
                "call_successful": "success",
                "transcript_summary": "The caller asked for the opening hours.",
                "data_collection_results": {"topic": {"value": "hours"}},
                "evaluation_criteria_results": {},
            },
            "conversation_initiation_client_data": {
                "dynamic_variables": {
                    "customer_name": "Ada",
                    "secret__crm_token": "do-not-store-me",
                    "system__call_sid": call_sid,
                }
            },
        },
    }


def audio(conversation_id: str, mp3: bytes) -> dict[str, Any]:
    return {
        "type": "post_call_audio",
        "event_timestamp": 1739537300,
        "data": {
            "agent_id": "agent_default",
            "conversation_id": conversation_id,
            "full_audio": base64.b64encode(mp3).decode(),
        },
    }


def failure(conversation_id: str, call_sid: str, **reason: str) -> dict[str, Any]:
    return {
        "type": "call_initiation_failure",
        "event_timestamp": 1739537310,
        "data": {
            "agent_id": "agent_default",
            "conversation_id": conversation_id,
            **reason,
            "metadata": {"type": "twilio", "body": {"CallSid": call_sid, "CallStatus": "busy"}},
        },
    }


NOW = int(time.time())
SIGNATURES = [
    pytest.param({}, 200, None, id="valid"),
    pytest.param({"secret": OLD_SECRET}, 200, None, id="rotated-old-secret"),
    pytest.param({"secret": "someone-else"}, 401, "does not match", id="wrong-secret"),
    pytest.param({"body": b'{"type":"tampered"}'}, 401, "does not match", id="tampered"),
    pytest.param({"stamp": NOW - 3600}, 401, "too old", id="stale"),
    pytest.param({"stamp": NOW + 3600}, 401, "in the future", id="future"),
    pytest.param({"header": None}, 401, "Missing", id="missing-header"),
    pytest.param({"header": "t=1,v0=zz"}, 401, "Malformed", id="malformed-header"),
]


@pytest.mark.parametrize(("change", "status", "reason"), SIGNATURES)
def test_signatures(
    bridge: Bridge, change: dict[str, Any], status: int, reason: str | None
) -> None:
    conversation_id, sid = new_ids()
    response = bridge.post(transcription(conversation_id, sid), **change)
    assert response.status_code == status
    assert len(bridge.events(conversation_id)) == (1 if status == 200 else 0)
    if reason:
        assert reason in response.json()["error"]
        assert SECRET not in response.text and OLD_SECRET not in response.text


def test_no_secret_configured_is_503(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.sqlite3'}"
    fresh_sqlite(url)
    app = create_app(make_settings(database_url=url))
    with TestClient(app) as client:
        response = client.post(URL, content=b"{}", headers={HEADER: sign(b"{}", "x", NOW)})
    assert (response.status_code, response.json()) == (
        503,
        {"error": "ELEVENLABS_WEBHOOK_SECRET is not set"},
    )


def test_signed_garbage_is_400(bridge: Bridge) -> None:
    body = b"not json"
    response = bridge.client.post(URL, content=body, headers={HEADER: sign(body, SECRET, NOW)})
    assert response.status_code == 400


def test_oversized_body_is_413(bridge: Bridge, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(elevenlabs_webhook, "MAX_BODY_BYTES", 100)
    conversation_id, sid = new_ids()
    assert bridge.post(transcription(conversation_id, sid)).status_code == 413
    assert bridge.events(conversation_id) == []


@pytest.mark.parametrize("match", ["conversation_id", "call_sid"])
def test_transcription_lands_on_the_call(bridge: Bridge, match: str) -> None:
    conversation_id, sid = new_ids()
    call_id = bridge.add_call(
        call_sid=sid, conversation_id=conversation_id if match == "conversation_id" else None
    )
    response = bridge.post(transcription(conversation_id, sid))
    assert response.json() == {"received": True, "duplicate": False}
    call = bridge.call(call_id)
    assert call.conversation_id == conversation_id
    assert [turn["role"] for turn in call.transcript] == ["agent", "user"]
    assert call.analysis["data_collection_results"] == {"topic": {"value": "hours"}}
    assert call.summary == "The caller asked for the opening hours."
    assert call.call_successful == "success"
    metadata = call.post_call_metadata
    assert (metadata["call_duration_secs"], metadata["cost"]) == (42, 310)
    assert metadata["termination_reason"] == "end_call tool was called."
    (event,) = bridge.events(conversation_id)
    assert (event.call_id, event.kind) == (call_id, "elevenlabs:post_call_transcription")


def test_secret_dynamic_variables_are_never_stored(bridge: Bridge) -> None:
    conversation_id, sid = new_ids()
    bridge.add_call(call_sid=sid, conversation_id=conversation_id)
    bridge.post(transcription(conversation_id, sid))
    (event,) = bridge.events(conversation_id)
    variables = event.data["data"]["conversation_initiation_client_data"]["dynamic_variables"]
    assert variables == {"customer_name": "Ada", "system__call_sid": sid}
    assert "do-not-store-me" not in json.dumps(event.data)


def test_a_replay_changes_nothing(bridge: Bridge) -> None:
    conversation_id, sid = new_ids()
    call_id = bridge.add_call(call_sid=sid, conversation_id=conversation_id)
    first = bridge.post(transcription(conversation_id, sid))
    before = bridge.call(call_id)
    second = bridge.post(transcription(conversation_id, sid))
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json() == {"received": True, "duplicate": True}
    assert len(bridge.events(conversation_id)) == 1
    assert bridge.call(call_id) == before


def test_an_unknown_conversation_is_kept_without_a_call(bridge: Bridge) -> None:
    conversation_id, sid = new_ids()
    assert bridge.post(transcription(conversation_id, sid)).status_code == 200
    (event,) = bridge.events(conversation_id)
    assert event.call_id is None
    stored = bridge.run(
        text("SELECT conversation_id FROM call_events WHERE id = :id").bindparams(id=event.id)
    )
    assert stored[0].conversation_id == conversation_id


def test_audio_is_written_and_kept_out_of_the_event(bridge: Bridge, tmp_path: Path) -> None:
    conversation_id, sid = new_ids()
    call_id = bridge.add_call(call_sid=sid, conversation_id=conversation_id)
    mp3 = b"ID3\x04\x00" + bytes(range(256)) * 64
    payload = audio(conversation_id, mp3)
    assert bridge.post(payload).status_code == 200
    call = bridge.call(call_id)
    assert call.audio_path == f"post-call/{conversation_id}.mp3"  # the audio store's name
    path = tmp_path / "audio" / call.audio_path  # the default store: CALL_AUDIO_DIR
    assert path.read_bytes() == mp3
    assert (call.audio_bytes, call.audio_sha256) == (len(mp3), hashlib.sha256(mp3).hexdigest())
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp files left
    (event,) = bridge.events(conversation_id)
    assert payload["data"]["full_audio"] not in json.dumps(event.data)
    assert event.data["data"]["full_audio"] == {
        "name": call.audio_path,
        "bytes": len(mp3),
        "sha256": hashlib.sha256(mp3).hexdigest(),
    }


def test_undecodable_audio_is_still_recorded(bridge: Bridge) -> None:
    conversation_id, sid = new_ids()
    call_id = bridge.add_call(call_sid=sid, conversation_id=conversation_id)
    payload = audio(conversation_id, b"")
    payload["data"]["full_audio"] = "***not base64***"
    assert bridge.post(payload).status_code == 200
    assert bridge.call(call_id).audio_path is None
    (event,) = bridge.events(conversation_id)
    assert event.data["data"]["full_audio"]["error"] == "full_audio is not valid base64"


FAILURES = [
    pytest.param(None, {"failure_reason": "busy"}, "failed", "busy", id="failure_reason"),
    pytest.param("ringing", {"reason": "no-answer"}, "failed", "no-answer", id="reason"),
    pytest.param("completed", {"failure_reason": "busy"}, "completed", "busy", id="final-stays"),
]


@pytest.mark.parametrize(("status", "reason", "final", "error"), FAILURES)
def test_initiation_failure_fails_the_call(
    bridge: Bridge, status: str | None, reason: dict[str, str], final: str, error: str
) -> None:
    conversation_id, sid = new_ids()
    call_id = bridge.add_call(call_sid=sid, status=status)  # matched by the Twilio CallSid
    assert bridge.post(failure(conversation_id, sid, **reason)).status_code == 200
    call = bridge.call(call_id)
    assert (call.status, call.error, call.conversation_id) == (final, error, conversation_id)


def test_unknown_types_are_stored_raw(bridge: Bridge) -> None:
    conversation_id, _ = new_ids()
    payload = {
        "type": "post_call_something_new",
        "event_timestamp": 1739537400,
        "data": {"conversation_id": conversation_id, "anything": [1, {"x": None}]},
    }
    response = bridge.post(payload)
    assert response.json() == {"received": True, "duplicate": False}
    (event,) = bridge.events(conversation_id)
    assert (event.kind, event.call_id, event.data) == (
        "elevenlabs:post_call_something_new",
        None,
        payload,
    )


# Refused on the header alone: the body (here past the cap) is never read.
REFUSED_BEFORE_READING = [
    pytest.param(None, "Missing", id="missing-header"),
    pytest.param("t=1,v0=zz", "Malformed", id="malformed-header"),
    pytest.param(f"t={NOW - 3600},v0={'0' * 64}", "too old", id="stale"),
    pytest.param(f"t={NOW + 3600},v0={'0' * 64}", "in the future", id="future"),
]


@pytest.mark.parametrize(("header", "reason"), REFUSED_BEFORE_READING)
def test_a_bad_signature_header_is_refused_before_the_body_is_read(
    bridge: Bridge, header: str | None, reason: str
) -> None:
    sent: list[int] = []

    def body() -> Iterator[bytes]:
        for _ in range(21):
            sent.append(1)
            yield b" " * (1024 * 1024)

    headers = {HEADER: header} if header is not None else {}
    response = bridge.client.post(URL, content=body(), headers=headers)
    assert response.status_code == 401 and reason in response.json()["error"]
    assert sent == []


@pytest.mark.parametrize(("depth", "status"), [(50, 200), (500, 400), (950, 400)])
def test_deeply_nested_lists_are_stored_or_400(bridge: Bridge, depth: int, status: int) -> None:
    conversation_id, sid = new_ids()
    payload = transcription(conversation_id, sid)
    payload["data"]["conversation_initiation_client_data"] = {
        "dynamic_variables": {"secret__pin": "1234", "tree": "TREE"}
    }
    # Written out by hand: json.dumps itself recurses.
    tree = "[" * depth + '"deep"' + "]" * depth
    raw = json.dumps(payload).replace('"TREE"', tree).encode()
    response = bridge.post({}, body=raw, header=sign(raw, SECRET, int(time.time())))
    assert response.status_code == status
    events = bridge.events(conversation_id)
    assert len(events) == (1 if status == 200 else 0)
    assert "1234" not in repr([event.data for event in events])


def test_nul_characters_are_stored_without_them(bridge: Bridge) -> None:
    conversation_id, sid = new_ids()
    call_id = bridge.add_call(call_sid=sid, conversation_id=conversation_id)
    payload = transcription(conversation_id, sid)
    payload["data"]["analysis"]["transcript_summary"] = "opening\u0000 hours"
    payload["data"]["metadata"]["phone_call"]["external_number"] = "+1415\u00005550123"
    payload["data"]["metadata"]["\u0000key"] = "\u0000"
    response = bridge.post(payload)
    assert response.status_code == 200
    assert bridge.call(call_id).summary == "opening hours"
    (event,) = bridge.events(conversation_id)
    assert "\u0000" not in json.dumps(event.data)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_json_non_numbers_are_400(bridge: Bridge, constant: str) -> None:
    conversation_id, sid = new_ids()
    raw = json.dumps(transcription(conversation_id, sid)).replace("310", constant).encode()
    assert constant.encode() in raw
    response = bridge.post({}, body=raw, header=sign(raw, SECRET, int(time.time())))
    assert response.status_code == 400
    assert bridge.events(conversation_id) == []


def test_an_event_neither_stored_nor_kept_is_503(
    bridge: Bridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def database_down(*args: Any, **kwargs: Any) -> Any:
        raise OSError("database is down")

    writer = bridge.client.app.state.call_log_writer
    monkeypatch.setattr(writer, "max_pending", 0)
    monkeypatch.setattr(CallRecords, "record_elevenlabs_event", database_down)
    conversation_id, sid = new_ids()
    response = bridge.post(transcription(conversation_id, sid))
    assert response.status_code == 503
    assert "try again" in response.json()["error"]


def test_a_lone_surrogate_in_a_transcript_is_stored_and_served_back(bridge: Bridge) -> None:
    conversation_id, sid = new_ids()
    call_id = bridge.add_call(call_sid=sid, conversation_id=conversation_id)
    payload = transcription(conversation_id, sid)
    payload["data"]["transcript"][1]["message"] = "Opening \udc80hours?"
    raw = json.dumps(payload).encode()  # ensure_ascii: the escape travels as ElevenLabs sends it
    assert b"\\udc80" in raw
    assert bridge.post(payload).status_code == 200
    assert bridge.call(call_id).transcript[1]["message"] == "Opening \ufffdhours?"
    answer = bridge.client.get(f"/calls/{call_id}", headers=BEARER)
    assert answer.status_code == 200
    assert answer.json()["transcript"][1]["message"] == "Opening \ufffdhours?"
