"""POST /elevenlabs/webhook with payloads off the common path: timestamps written
as floats or missing, over-long conversation ids, events named only by call SID,
transcripts without analysis, audio that is not a string or cannot be written, and
bodies streamed past the size cap."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from bridge.app import create_app
from bridge.elevenlabs.webhook_signature import HEADER, sign
from bridge.secret import Secret
from bridge.settings import Settings
from bridge.storage.tables import call_events
from tests.helpers import CallLogBridge, fresh_sqlite

SECRET = "wsec_odd_payloads"
URL = "/elevenlabs/webhook"


class Bridge(CallLogBridge):
    def events(self, kind: str) -> list[Any]:
        return super().events(call_events.c.kind == f"elevenlabs:{kind}")

    def add_call(self, direction: str = "outbound", **values: Any) -> str:
        return super().add_call(direction, **values)

    @property
    def audio(self) -> Path:
        assert self.audio_dir is not None
        return self.audio_dir


def now() -> int:
    return int(time.time())


@pytest.fixture
def bridge(tmp_path: Path) -> Iterator[Bridge]:
    url = f"sqlite:///{tmp_path / 'hooks.sqlite3'}"
    fresh_sqlite(url)
    audio_dir = tmp_path / "audio"
    settings = Settings(
        database_url=url, elevenlabs_webhook_secret=Secret(SECRET), call_audio_dir=audio_dir
    )
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Bridge(client, app.state.database, SECRET, audio_dir)


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def test_a_float_timestamp_names_the_same_event_as_the_integer(bridge: Bridge) -> None:
    kind = unique("kind")
    data = {"conversation_id": unique("conv")}
    first = bridge.post({"type": kind, "event_timestamp": 1739537297, "data": data})
    again = bridge.post({"type": kind, "event_timestamp": 1739537297.0, "data": data})
    assert first.json() == {"received": True, "duplicate": False}
    assert again.json() == {"received": True, "duplicate": True}
    assert len(bridge.events(kind)) == 1


def test_without_a_timestamp_the_exact_body_names_the_event(bridge: Bridge) -> None:
    kind = unique("kind")
    conversation_id = unique("conv")
    first: dict[str, Any] = {"type": kind, "data": {"conversation_id": conversation_id, "n": 1}}
    other: dict[str, Any] = {"type": kind, "data": {"conversation_id": conversation_id, "n": 2}}
    assert bridge.post(first).json()["duplicate"] is False
    assert bridge.post(first).json()["duplicate"] is True
    assert bridge.post(other).json()["duplicate"] is False
    assert len(bridge.events(kind)) == 2


def test_an_overlong_conversation_id_is_cut_to_its_column(bridge: Bridge) -> None:
    kind = unique("kind")
    conversation_id = "conv_" + "x" * 300
    payload = {
        "type": kind,
        "event_timestamp": 1739537297,
        "data": {"conversation_id": conversation_id},
    }
    assert bridge.post(payload).json() == {"received": True, "duplicate": False}
    assert bridge.post(payload).json() == {"received": True, "duplicate": True}
    (event,) = bridge.events(kind)
    assert event.conversation_id == conversation_id[:128]
    assert len(event.dedupe_key) <= 255


def test_an_event_without_conversation_id_is_matched_by_call_sid(bridge: Bridge) -> None:
    call_sid = "CA" + uuid.uuid4().hex
    call_id = bridge.add_call(call_sid=call_sid)
    payload = {
        "type": "post_call_transcription",
        "event_timestamp": 1739537297,
        "data": {
            "transcript": [{"role": "agent", "message": "Hello"}],
            "metadata": {"phone_call": {"call_sid": call_sid}},
        },
    }
    assert bridge.post(payload).status_code == 200
    call = bridge.call(call_id)
    assert call.transcript == [{"role": "agent", "message": "Hello"}]
    assert call.conversation_id is None
    # No analysis in the webhook: nothing to summarise.
    assert (call.analysis, call.summary, call.call_successful) == (None, None, None)


def test_a_failure_keeps_the_error_a_final_call_already_has(bridge: Bridge) -> None:
    call_sid = "CA" + uuid.uuid4().hex
    call_id = bridge.add_call(call_sid=call_sid, status="busy", error="busy")
    payload = {
        "type": "call_initiation_failure",
        "event_timestamp": 1739537310,
        "data": {
            "conversation_id": unique("conv"),
            "failure_reason": "no-answer",
            "metadata": {"body": {"CallSid": call_sid}},
        },
    }
    assert bridge.post(payload).status_code == 200
    call = bridge.call(call_id)
    assert (call.status, call.error) == ("busy", "busy")


@pytest.mark.parametrize("audio", [None, 12345, ["SUQz"]])
def test_audio_that_is_not_a_string_is_recorded_as_such(bridge: Bridge, audio: object) -> None:
    conversation_id = unique("conv")
    call_id = bridge.add_call(conversation_id=conversation_id)
    payload = {
        "type": "post_call_audio",
        "event_timestamp": now(),
        "data": {"conversation_id": conversation_id, "full_audio": audio},
    }
    assert bridge.post(payload).status_code == 200
    assert bridge.call(call_id).audio_path is None
    (event,) = [e for e in bridge.events("post_call_audio") if e.call_id == call_id]
    assert event.data["data"]["full_audio"] == {"error": "full_audio is not a base64 string"}
    assert not bridge.audio.exists()


def test_audio_that_cannot_be_written_is_acknowledged_with_the_failure(bridge: Bridge) -> None:
    conversation_id = unique("conv")
    call_id = bridge.add_call(conversation_id=conversation_id)
    # A directory where the MP3 would go: the write fails after the temporary file.
    (bridge.audio / "post-call" / f"{conversation_id}.mp3").mkdir(parents=True)
    payload = {
        "type": "post_call_audio",
        "event_timestamp": now(),
        "data": {"conversation_id": conversation_id, "full_audio": "SUQzBAA="},
    }
    response = bridge.post(payload)
    # ElevenLabs never sends it again: the event is kept, with what was lost and why,
    # for reconciliation or a person to act on (and the failure is counted and logged).
    assert response.status_code == 200
    (event,) = bridge.events("post_call_audio")
    audio = event.data["data"]["full_audio"]
    assert audio["error"].startswith(f"the audio store failed: file://{bridge.audio}: could not")
    assert (audio["bytes"], len(audio["sha256"])) == (5, 64)
    assert bridge.call(call_id).audio_path is None
    registry = bridge.client.app.state.metrics.registry
    counted = registry.get_sample_value(
        "callbridge_audio_store_failures_total", {"kind": "post_call"}
    )
    assert counted == 1
    assert [path.name for path in (bridge.audio / "post-call").iterdir()] == [
        f"{conversation_id}.mp3"
    ]


def test_a_streamed_body_past_the_cap_is_413(bridge: Bridge) -> None:
    megabyte = b" " * (1024 * 1024)

    def body() -> Iterator[bytes]:  # no Content-Length: the cap is found while reading
        for _ in range(21):
            yield megabyte

    response = bridge.client.post(URL, content=body(), headers={HEADER: sign(b"", SECRET, now())})
    assert response.status_code == 413
    assert response.json() == {"error": "Request body is too large (at most 20971520 bytes)."}
