"""`POST /twilio/recording-status` in the app (TestClient): signed, stored before the
answer, the audio fetched from TWILIO_API_BASE only, whatever the callback says."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from bridge.app import create_app
from bridge.fakes.twilio_recordings import FakeRecording
from bridge.storage.tables import call_events, recordings
from tests.helpers import (
    ACCOUNT_SID,
    BEARER,
    Upstreams,
    outbound_settings,
    post_signed,
    twilio_signature,
)

PATH = "/twilio/recording-status"


@pytest.fixture
def client(tmp_path: Path, upstreams: Upstreams) -> Iterator[TestClient]:
    settings = outbound_settings(tmp_path, call_audio_dir=tmp_path / "audio")
    with TestClient(create_app(settings, transport=upstreams.transport)) as test_client:
        yield test_client


def rows(client: TestClient, query: Any) -> list[Any]:
    async def go() -> list[Any]:
        engine = await client.app.state.database.engine()  # type: ignore[attr-defined]
        async with engine.connect() as connection:
            return list(await connection.execute(query))

    return list(client.portal.call(go))  # type: ignore[union-attr]


def status_form(upstreams: Upstreams, recording: FakeRecording, **changes: str) -> dict[str, str]:
    form = upstreams.twilio.recordings.status_form(recording, account_sid=ACCOUNT_SID)
    form.update(changes)
    return form


def test_a_voicemail_is_stored_and_its_audio_fetched(
    client: TestClient, upstreams: Upstreams, tmp_path: Path
) -> None:
    recording = upstreams.twilio.recordings.add("CA" + "1" * 32)
    # A forged RecordingUrl (signed or not, the bridge never follows it).
    form = status_form(upstreams, recording, RecordingUrl="https://evil.example/steal")
    response = post_signed(client, f"{PATH}?kind=voicemail", form)
    assert response.status_code == 200

    (row,) = rows(client, select(recordings))
    assert (row.recording_sid, row.kind, row.status, row.call_sid) == (
        recording.sid,
        "voicemail",
        "stored",
        recording.call_sid,
    )
    assert row.audio_sha256 == hashlib.sha256(recording.audio).hexdigest()
    assert (tmp_path / "audio" / "recordings" / f"{recording.sid}.mp3").read_bytes() == (
        recording.audio
    )
    assert [request.path for request in upstreams.twilio.requests] == [
        f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{recording.sid}.mp3"
    ]
    events = rows(client, select(call_events).where(call_events.c.kind == "voicemail"))
    assert [event.dedupe_key for event in events] == [
        f"recording:{recording.sid}:completed",
        f"recording:{recording.sid}:stored",
    ]
    metrics = client.get("/metrics", headers=BEARER).text
    assert 'callbridge_recordings_total{kind="voicemail",result="fetched"} 1.0' in metrics


@pytest.mark.parametrize(("query", "kind"), [("?kind=recording", "recording"), ("", "recording")])
def test_the_kind_comes_from_the_url(
    client: TestClient, upstreams: Upstreams, query: str, kind: str
) -> None:
    recording = upstreams.twilio.recordings.add("CA" + "2" * 32, source="OutboundAPI")
    assert post_signed(client, PATH + query, status_form(upstreams, recording)).status_code == 200
    (row,) = rows(client, select(recordings))
    assert (row.kind, row.source) == (kind, "OutboundAPI")


def test_the_kind_is_covered_by_the_signature(client: TestClient, upstreams: Upstreams) -> None:
    recording = upstreams.twilio.recordings.add("CA" + "3" * 32)
    form = status_form(upstreams, recording)
    signed_for = twilio_signature(f"https://bridge.example.com{PATH}?kind=recording", form)
    response = client.post(
        f"{PATH}?kind=voicemail", data=form, headers={"X-Twilio-Signature": signed_for}
    )
    assert response.status_code == 403
    assert rows(client, select(recordings)) == [] and upstreams.twilio.requests == []


def test_an_unsigned_callback_is_refused(client: TestClient, upstreams: Upstreams) -> None:
    recording = upstreams.twilio.recordings.add("CA" + "4" * 32)
    response = client.post(f"{PATH}?kind=voicemail", data=status_form(upstreams, recording))
    assert response.status_code == 403
    assert rows(client, select(recordings)) == [] and upstreams.twilio.requests == []


@pytest.mark.parametrize(
    "changes",
    [
        {"RecordingStatus": "in-progress"},
        {"RecordingSid": "RE../../etc/passwd"},
        {"RecordingSid": "RE" + "A" * 32},
        {"RecordingSid": ""},
    ],
)
def test_nothing_to_act_on_is_answered_and_left(
    client: TestClient, upstreams: Upstreams, changes: dict[str, str]
) -> None:
    recording = upstreams.twilio.recordings.add("CA" + "5" * 32)
    response = post_signed(
        client, f"{PATH}?kind=voicemail", status_form(upstreams, recording, **changes)
    )
    assert response.status_code == 200
    assert rows(client, select(recordings)) == [] and upstreams.twilio.requests == []


def test_an_absent_recording_is_kept_without_a_fetch(
    client: TestClient, upstreams: Upstreams
) -> None:
    recording = upstreams.twilio.recordings.add("CA" + "6" * 32)
    form = status_form(upstreams, recording, RecordingStatus="absent")
    assert post_signed(client, f"{PATH}?kind=voicemail", form).status_code == 200
    (row,) = rows(client, select(recordings))
    assert row.status == "absent" and upstreams.twilio.requests == []
