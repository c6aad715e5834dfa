"""End to end over real HTTP: a voicemail left at the bridge (the real server under
uvicorn) ends up in the file audio store, fetched from the fake Twilio with Basic
auth, and deleted there when TWILIO_DELETE_RECORDINGS is on; a failing fetch recovers
through the background sweep without doubling anything."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
from defusedxml.ElementTree import fromstring
from sqlalchemy import create_engine, select

from bridge.app import create_app
from bridge.fakes import FakeTwilio
from bridge.fakes.twilio_recordings import post_recording_status
from bridge.recordings.fetcher import Backoff
from bridge.routing import load_routes
from bridge.secret import Secret
from bridge.settings import Settings
from bridge.storage.tables import call_events, recordings
from tests.helpers import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    free_port,
    fresh_sqlite,
    running_server,
    twilio_form,
    twilio_signature,
)

ROUTES = """
[[rules]]
name = "after-hours"
action = "voicemail"
message = "Please leave a message."
"""


@dataclass
class Bridge:
    url: str
    twilio: FakeTwilio
    audio: Path
    database_url: str
    delete: bool

    def rows(self, query: Any) -> list[Any]:
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as connection:
                return list(connection.execute(query))
        finally:
            engine.dispose()

    def voicemail(self, call_sid: str) -> str:
        """The inbound call answered with a voicemail; the recording status URL."""
        form = twilio_form(CallSid=call_sid)
        url = f"{self.url}/twilio/inbound"
        response = httpx.post(
            url, data=form, headers={"X-Twilio-Signature": twilio_signature(url, form)}
        )
        record = fromstring(response.text).find("Record")
        assert record is not None
        assert record.get("recordingStatusCallbackEvent") == "completed absent"
        # Twilio resolves the relative URL against the webhook's.
        return urljoin(url, record.get("recordingStatusCallback"))

    def callback(self, status_url: str, form: dict[str, str]) -> httpx.Response:
        async def post() -> httpx.Response:
            async with httpx.AsyncClient() as client:
                return await post_recording_status(client, status_url, form, auth_token=AUTH_TOKEN)

        return asyncio.run(post())

    def wait_for(self, sid: str, status: str, *, deleted: bool = False) -> Any:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = self.rows(select(recordings).where(recordings.c.recording_sid == sid))
            done = found and found[0].status == status
            if done and (not deleted or found[0].deleted_from_twilio_at is not None):
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"{sid} not {status}: {found}")


@pytest.fixture
def bridge(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Bridge]:
    delete = getattr(request, "param", False)
    twilio = FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
    routes = tmp_path / "routes.toml"
    routes.write_text(ROUTES)
    database_url = fresh_sqlite(f"sqlite:///{tmp_path / 'bridge.sqlite3'}")
    port = free_port()
    with running_server(twilio.app) as twilio_url:
        settings = Settings(
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token=Secret(AUTH_TOKEN),
            twilio_api_base=twilio_url,
            public_base_url=f"http://127.0.0.1:{port}",
            database_url=database_url,
            call_audio_dir=tmp_path / "audio",
            twilio_delete_recordings=delete,
        )
        app = create_app(settings, table=load_routes(routes))
        app.state.recording_fetcher.backoff = Backoff(first=0.2, longest=1.0)
        with running_server(app, port=port) as url:
            yield Bridge(url, twilio, tmp_path / "audio", database_url, delete)


@pytest.mark.parametrize("bridge", [False, True], indirect=True, ids=["kept", "deleted"])
def test_a_voicemail_reaches_the_audio_store(bridge: Bridge) -> None:
    call_sid = "CA" + "7" * 32
    status_url = bridge.voicemail(call_sid)
    assert status_url == f"{bridge.url}/twilio/recording-status?kind=voicemail"
    recording = bridge.twilio.recordings.add(call_sid, audio=b"ID3" + bytes(range(256)) * 40)
    form = bridge.twilio.recordings.status_form(
        recording, account_sid=ACCOUNT_SID, api_base="https://evil.example"
    )
    response = bridge.callback(status_url, form)
    assert response.status_code == 200

    deleting = bridge.delete
    row = bridge.wait_for(recording.sid, "stored", deleted=deleting)
    assert row.audio_bytes == len(recording.audio)
    assert row.audio_sha256 == hashlib.sha256(recording.audio).hexdigest()
    stored = bridge.audio / "recordings" / f"{recording.sid}.mp3"
    assert stored.read_bytes() == recording.audio
    # Only ever TWILIO_API_BASE, with the account's credentials (the fake checks them).
    paths = [(request.method, request.path) for request in bridge.twilio.requests]
    base = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{recording.sid}"
    assert paths == [("GET", f"{base}.mp3")] + ([("DELETE", f"{base}.json")] if deleting else [])
    assert recording.deleted is deleting
    events = bridge.rows(select(call_events).where(call_events.c.kind == "voicemail"))
    assert [event.data.get("status") for event in events if "status" in event.data] == [
        "completed",
        "stored",
    ]


def test_a_failing_fetch_recovers_in_the_background(bridge: Bridge) -> None:
    call_sid = "CA" + "8" * 32
    status_url = bridge.voicemail(call_sid)
    recording = bridge.twilio.recordings.add(call_sid)
    # Twilio's audio not there yet, then a server error, then the audio.
    bridge.twilio.recordings.script = ["status:404", "status:500"]
    form = bridge.twilio.recordings.status_form(recording, account_sid=ACCOUNT_SID)
    started = time.monotonic()
    assert bridge.callback(status_url, form).status_code == 200
    answered = time.monotonic() - started
    row = bridge.wait_for(recording.sid, "stored")
    assert row.attempts == 3 and recording.downloads == 1
    assert answered < 5.0  # answered before the fetch was retried (0.2 s, 0.4 s later)
    # The same callback again (Twilio retrying on a dropped connection): nothing doubled.
    assert bridge.callback(status_url, form).status_code == 200
    events = bridge.rows(
        select(call_events).where(call_events.c.dedupe_key.like(f"recording:{recording.sid}:%"))
    )
    assert sorted(event.data["status"] for event in events) == ["completed", "stored"]


def test_a_badly_signed_callback_is_refused(bridge: Bridge) -> None:
    recording = bridge.twilio.recordings.add("CA" + "9" * 32)
    form = bridge.twilio.recordings.status_form(recording, account_sid=ACCOUNT_SID)
    url = f"{bridge.url}/twilio/recording-status?kind=voicemail"
    response = httpx.post(
        url, data=form, headers={"X-Twilio-Signature": twilio_signature(url, form, "wrong")}
    )
    assert response.status_code == 403
    assert bridge.rows(select(recordings)) == [] and bridge.twilio.requests == []
