"""`GET /calls/{sid}/audio/{file}`: a call's audio, streamed from a file store or
redirected to a presigned URL of an S3-compatible one (moto on loopback); and the
audio links of `GET /calls/{sid}`."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert
from starlette.testclient import TestClient

from bridge.app import create_app
from bridge.audio import names
from bridge.audio.files import FileAudioStore
from bridge.audio.store import AudioStore, AudioStoreError, StoredAudio
from bridge.elevenlabs.webhook_signature import HEADER, sign
from bridge.secret import Secret
from bridge.settings import Settings
from bridge.storage.tables import calls, recordings
from tests.helpers import (
    PUBLIC,
    S3_SECRET_ACCESS_KEY,
    S3Server,
    fresh_sqlite,
    make_settings,
    ui_login,
)

TOKEN = "call-audio-test-token-4f1b9c2e7a5d3e60"
BEARER = {"authorization": f"Bearer {TOKEN}"}
WEBHOOK_SECRET = "wsec_call_audio"
VOICEMAIL = b"ID3 a voicemail " + bytes(range(256)) * 300


@dataclass
class Bridge:
    client: TestClient
    store: AudioStore
    settings: Settings

    def run(self, query: Any) -> None:
        async def go() -> None:
            engine = await self.client.app.state.database.engine()  # type: ignore[attr-defined]
            async with engine.begin() as connection:
                await connection.execute(query)

        self.client.portal.call(go)  # type: ignore[union-attr]

    def add_call(self, **values: Any) -> str:
        sid = "CA" + uuid.uuid4().hex
        self.run(
            insert(calls).values(
                id=uuid.uuid4().hex,
                call_sid=sid,
                direction="inbound",
                created_at=datetime.now(UTC),
                **values,
            )
        )
        return sid

    def add_voicemail(self, call_sid: str, audio: bytes = VOICEMAIL) -> str:
        recording_sid = "RE" + uuid.uuid4().hex
        name = names.recording(recording_sid)
        stored: StoredAudio = self.client.portal.call(self.store.put, name, audio)  # type: ignore[union-attr]
        self.run(
            insert(recordings).values(
                recording_sid=recording_sid,
                call_sid=call_sid,
                kind="voicemail",
                status="stored",
                duration=42,
                audio_name=stored.name,
                audio_bytes=stored.bytes,
                audio_sha256=stored.sha256,
                created_at=datetime.now(UTC),
            )
        )
        return f"{recording_sid}.mp3"


def settings_for(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    changes: dict[str, Any] = {
        "database_url": fresh_sqlite(f"sqlite:///{tmp_path / 'audio.sqlite3'}"),
        "bridge_api_token": Secret(TOKEN),
        "elevenlabs_webhook_secret": Secret(WEBHOOK_SECRET),
    }
    if kind == "file":
        return make_settings(audio_store=f"file://{tmp_path / 'audio'}", **changes)
    server: S3Server = request.getfixturevalue("s3_server")
    return server.settings(**changes)


@pytest.fixture(params=["file", "s3"])
def bridge(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Bridge]:
    settings = settings_for(request.param, request, tmp_path)
    app = create_app(settings)
    with TestClient(app, follow_redirects=False) as client:
        yield Bridge(client, app.state.audio_store, settings)


def fetched(bridge: Bridge, url: str, **kwargs: Any) -> Any:
    """GET `url` on the bridge; a redirect to the store is followed (without the
    bridge's credentials), as a browser would."""
    response = bridge.client.get(url, **kwargs)
    if response.status_code == 307:
        assert "cache-control" in response.headers
        return httpx.get(response.headers["location"])
    return response


def test_a_voicemail_is_streamed_or_redirected_to_a_presigned_url(bridge: Bridge) -> None:
    sid = bridge.add_call()
    file = bridge.add_voicemail(sid)
    response = bridge.client.get(f"/calls/{sid}/audio/{file}", headers=BEARER)
    assert response.headers["cache-control"] == "no-store"
    if isinstance(bridge.store, FileAudioStore):
        assert response.status_code == 200
        assert response.headers["content-type"] == "audio/mpeg"
        assert response.headers["content-length"] == str(len(VOICEMAIL))
        assert response.content == VOICEMAIL
    else:
        assert response.status_code == 307
        location = response.headers["location"]
        assert location.startswith(bridge.settings.aws_endpoint_url)
        assert "X-Amz-Expires=300" in location
        assert S3_SECRET_ACCESS_KEY not in location
        presigned = httpx.get(location)
        assert presigned.status_code == 200 and presigned.content == VOICEMAIL


def test_the_call_shows_links_to_its_audio(bridge: Bridge) -> None:
    sid = bridge.add_call()
    file = bridge.add_voicemail(sid)
    record = bridge.client.get(f"/calls/{sid}", headers=BEARER).json()
    assert record["audio"] == [
        {
            "kind": "voicemail",
            "file": file,
            "url": f"/calls/{sid}/audio/{file}",
            "bytes": len(VOICEMAIL),
            "sha256": hashlib.sha256(VOICEMAIL).hexdigest(),
            "duration": 42,
        }
    ]
    assert fetched(bridge, record["audio"][0]["url"], headers=BEARER).content == VOICEMAIL


def test_post_call_audio_from_the_webhook_can_be_listened_to(bridge: Bridge) -> None:
    conversation = f"conv_{uuid.uuid4().hex}"
    sid = bridge.add_call(conversation_id=conversation)
    mp3 = b"ID3 the whole conversation"
    payload = {
        "type": "post_call_audio",
        "event_timestamp": int(time.time()),
        "data": {"conversation_id": conversation, "full_audio": base64.b64encode(mp3).decode()},
    }
    raw = json.dumps(payload).encode()
    headers = {HEADER: sign(raw, WEBHOOK_SECRET, int(time.time()))}
    assert (
        bridge.client.post("/elevenlabs/webhook", content=raw, headers=headers).status_code == 200
    )
    (link,) = bridge.client.get(f"/calls/{sid}", headers=BEARER).json()["audio"]
    assert (link["kind"], link["file"]) == ("post_call", f"{conversation}.mp3")
    assert fetched(bridge, link["url"], headers=BEARER).content == mp3


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/calls/CA_nope/audio/RE1.mp3", "No call 'CA_nope' in the call log."),
        ("/calls/{sid}/audio/RE1.mp3", "Call '{sid}' has no audio 'RE1.mp3'."),
        # Names are never built from the URL: a path to anything else is just unknown.
        (
            "/calls/{sid}/audio/..%5C..%5Cpasswd",
            "Call '{sid}' has no audio '..\\\\..\\\\passwd'.",
        ),
    ],
)
def test_unknown_calls_and_files_are_404(bridge: Bridge, path: str, error: str) -> None:
    sid = bridge.add_call()
    bridge.add_voicemail(sid)
    response = bridge.client.get(path.format(sid=sid), headers=BEARER)
    assert response.status_code == 404
    assert response.json() == {"error": error.format(sid=sid)}


def test_audio_gone_from_the_store_is_404(bridge: Bridge) -> None:
    sid = bridge.add_call()
    file = bridge.add_voicemail(sid)
    bridge.client.portal.call(bridge.store.delete, [f"recordings/{file}"])  # type: ignore[union-attr]
    response = bridge.client.get(f"/calls/{sid}/audio/{file}", headers=BEARER)
    assert response.status_code == 404
    assert "no longer in the audio store" in response.json()["error"]


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer wrong"}])
def test_without_the_token_or_a_session_it_is_401(bridge: Bridge, headers: dict[str, str]) -> None:
    sid = bridge.add_call()
    file = bridge.add_voicemail(sid)
    for path in (f"/calls/{sid}/audio/{file}", f"/ui/calls/{sid}/audio/{file}"):
        response = bridge.client.get(path, headers=headers)
        assert response.status_code == 401
        assert response.headers["cache-control"] == "no-store"


def test_the_consoles_session_opens_the_audio(bridge: Bridge) -> None:
    sid = bridge.add_call()
    file = bridge.add_voicemail(sid)
    login = ui_login(bridge.client, TOKEN, headers={"origin": PUBLIC})
    assert login.status_code == 303
    # The cookie is scoped to /ui: the console's players use the /ui path.
    assert fetched(bridge, f"/ui/calls/{sid}/audio/{file}").content == VOICEMAIL
    # A client that sends the cookie anyway is let in on the API path too.
    cookie = bridge.client.cookies.get("callbridge_ui")
    assert cookie is not None
    bridge.client.cookies.clear()
    response = fetched(
        bridge, f"/calls/{sid}/audio/{file}", headers={"cookie": f"callbridge_ui={cookie}"}
    )
    assert response.content == VOICEMAIL
    assert bridge.client.get(f"/ui/calls/{sid}/audio/{file}").status_code == 401


def test_no_api_token_no_audio(tmp_path: Path) -> None:
    settings = make_settings(database_url=fresh_sqlite(f"sqlite:///{tmp_path / 'a.sqlite3'}"))
    with TestClient(create_app(settings)) as client:
        assert client.get("/calls/CA1/audio/RE1.mp3").status_code == 503


class UnreachableStore(FileAudioStore):
    async def size(self, name: str) -> int | None:
        raise AudioStoreError("s3://bucket/p: could not look up x: the endpoint is unreachable")


def test_an_unreachable_store_is_503(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = make_settings(
        database_url=fresh_sqlite(f"sqlite:///{tmp_path / 'a.sqlite3'}"),
        bridge_api_token=Secret(TOKEN),
    )
    app = create_app(settings, audio_store=UnreachableStore(tmp_path))
    with TestClient(app) as client:
        bridge = Bridge(client, app.state.audio_store, settings)
        sid = bridge.add_call(audio_path=names.post_call_audio("conv_x", ""))
        response = client.get(f"/calls/{sid}/audio/conv_x.mp3", headers=BEARER)
    assert response.status_code == 503
    assert response.json() == {"error": "The audio store cannot be reached now; try again later."}
    assert "event=audio_unavailable" in caplog.text and "unreachable" in caplog.text


@pytest.mark.parametrize("inside", [True, False], ids=["in-the-store", "elsewhere"])
def test_audio_stored_before_the_audio_store_is_still_served(tmp_path: Path, inside: bool) -> None:
    # Calls recorded before the store kept the absolute path of CALL_AUDIO_DIR/<id>.mp3.
    audio_dir = tmp_path / "call-audio"
    legacy = (audio_dir if inside else tmp_path / "moved") / "conv_old.mp3"
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(b"ID3 old")
    settings = make_settings(
        database_url=fresh_sqlite(f"sqlite:///{tmp_path / 'a.sqlite3'}"),
        bridge_api_token=Secret(TOKEN),
        call_audio_dir=audio_dir.resolve(),
    )
    app = create_app(settings)
    with TestClient(app) as client:
        bridge = Bridge(client, app.state.audio_store, settings)
        sid = bridge.add_call(audio_path=str(legacy.resolve()), audio_bytes=7)
        (link,) = client.get(f"/calls/{sid}", headers=BEARER).json()["audio"]
        response = client.get(link["url"], headers=BEARER)
    if inside:
        assert response.status_code == 200 and response.content == b"ID3 old"
    else:
        assert response.status_code == 404


class VanishingStore(FileAudioStore):
    async def read(self, name: str) -> Any:
        return None  # deleted between the size and the read


def test_audio_deleted_while_asked_for_is_404(tmp_path: Path) -> None:
    settings = make_settings(
        database_url=fresh_sqlite(f"sqlite:///{tmp_path / 'a.sqlite3'}"),
        bridge_api_token=Secret(TOKEN),
    )
    app = create_app(settings, audio_store=VanishingStore(tmp_path))
    with TestClient(app) as client:
        bridge = Bridge(client, app.state.audio_store, settings)
        sid = bridge.add_call()
        file = bridge.add_voicemail(sid)
        response = client.get(f"/calls/{sid}/audio/{file}", headers=BEARER)
    assert response.status_code == 404


def test_a_file_from_before_the_store_is_404_with_an_s3_store(
    tmp_path: Path, s3_server: S3Server
) -> None:
    settings = s3_server.settings(
        database_url=fresh_sqlite(f"sqlite:///{tmp_path / 'a.sqlite3'}"),
        bridge_api_token=Secret(TOKEN),
    )
    with TestClient(create_app(settings)) as client:
        bridge = Bridge(client, client.app.state.audio_store, settings)  # type: ignore[attr-defined]
        sid = bridge.add_call(audio_path="/srv/call-audio/conv_old.mp3")
        response = client.get(f"/calls/{sid}/audio/conv_old.mp3", headers=BEARER)
    assert response.status_code == 404
    assert "no longer in the audio store" in response.json()["error"]
