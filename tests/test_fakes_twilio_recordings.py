"""The stand-in Twilio's recordings: Basic auth, audio, resource, deletion, scripts."""

from __future__ import annotations

import httpx
import pytest

from bridge.fakes import FakeTwilio
from bridge.fakes.twilio_recordings import SILENT_MP3
from tests.helpers import ACCOUNT_SID, AUTH_TOKEN

pytestmark = pytest.mark.anyio

BASE = f"http://twilio.test/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings"


def client(
    fake: FakeTwilio, auth: tuple[str, str] | None = (ACCOUNT_SID, AUTH_TOKEN)
) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app), auth=auth)


async def test_audio_resource_and_deletion() -> None:
    fake = FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
    recording = fake.recordings.add("CA" + "1" * 32, duration=9, channels=2)
    async with client(fake) as http:
        audio = await http.get(f"{BASE}/{recording.sid}.mp3")
        assert audio.status_code == 200 and audio.content == SILENT_MP3
        assert audio.headers["content-type"] == "audio/mpeg"
        resource = (await http.get(f"{BASE}/{recording.sid}.json")).json()
        assert (resource["sid"], resource["call_sid"], resource["duration"]) == (
            recording.sid,
            recording.call_sid,
            "9",
        )
        assert (await http.delete(f"{BASE}/{recording.sid}.json")).status_code == 204
        for method, suffix in (("GET", ".mp3"), ("GET", ".json"), ("DELETE", ".json")):
            gone = await http.request(method, f"{BASE}/{recording.sid}{suffix}")
            assert gone.status_code == 404 and gone.json()["code"] == 20404
    assert recording.deleted and recording.downloads == 1


@pytest.mark.parametrize("auth", [None, (ACCOUNT_SID, "wrong"), ("AC" + "0" * 32, AUTH_TOKEN)])
async def test_credentials_are_required(auth: tuple[str, str] | None) -> None:
    fake = FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
    recording = fake.recordings.add("CA" + "2" * 32)
    async with client(fake, auth) as http:
        for method, suffix in (("GET", ".mp3"), ("GET", ".json"), ("DELETE", ".json")):
            response = await http.request(method, f"{BASE}/{recording.sid}{suffix}")
            assert response.status_code == 401 and response.json()["code"] == 20003
    assert not recording.deleted and recording.downloads == 0


async def test_an_unknown_recording_is_not_found() -> None:
    fake = FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
    recording = fake.recordings.add("CA" + "3" * 32)
    async with client(fake) as http:
        response = await http.get(f"{BASE}/RE{'0' * 32}.mp3")
        assert response.status_code == 404
    assert recording.downloads == 0


async def test_scripted_failures() -> None:
    fake = FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
    recording = fake.recordings.add("CA" + "4" * 32)
    fake.recordings.script = ["status:500", "ok", "status:503"]
    async with client(fake) as http:
        assert (await http.get(f"{BASE}/{recording.sid}.mp3")).status_code == 500
        assert (await http.get(f"{BASE}/{recording.sid}.mp3")).status_code == 200
        assert (await http.delete(f"{BASE}/{recording.sid}.json")).status_code == 503
    assert not recording.deleted


def test_the_status_form_is_twilios() -> None:
    fake = FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
    recording = fake.recordings.add("CA" + "5" * 32)
    completed = fake.recordings.status_form(recording, account_sid=ACCOUNT_SID)
    assert completed["RecordingStatus"] == "completed" and completed["RecordingDuration"] == "4"
    assert completed["RecordingUrl"].endswith(f"/Recordings/{recording.sid}")
    absent = fake.recordings.status_form(recording, account_sid=ACCOUNT_SID, status="absent")
    assert "RecordingDuration" not in absent
