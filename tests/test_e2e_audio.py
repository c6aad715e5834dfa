"""End to end over real HTTP on loopback: ElevenLabs' post-call audio goes through a
running bridge into an S3-compatible bucket (moto), and is listened to from the call
log: the API's link redirects to a presigned URL that the client fetches from the
bucket without the bridge's token."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import insert

from bridge.app import create_app
from bridge.elevenlabs.webhook_signature import HEADER, sign
from bridge.secret import Secret
from bridge.storage.database import Database
from bridge.storage.tables import calls
from tests.helpers import S3_BUCKET, S3Server, fresh_sqlite, in_thread, running_server

TOKEN = "e2e-audio-token-0c5d7e1f9a2b4c6d8e0f"
WEBHOOK_SECRET = "wsec_e2e_audio"


def test_post_call_audio_in_a_bucket_is_listened_to_from_the_call_log(
    tmp_path: Path, s3_server: S3Server
) -> None:
    database_url = fresh_sqlite(f"sqlite:///{tmp_path / 'bridge.sqlite3'}")
    settings = s3_server.settings(
        "e2e",
        database_url=database_url,
        bridge_api_token=Secret(TOKEN),
        elevenlabs_webhook_secret=Secret(WEBHOOK_SECRET),
    )
    sid, conversation = "CA" + uuid.uuid4().hex, f"conv_{uuid.uuid4().hex}"

    async def add_call() -> None:
        database = Database(database_url)
        engine = await database.engine()
        async with engine.begin() as connection:
            await connection.execute(
                insert(calls).values(
                    id=uuid.uuid4().hex,
                    call_sid=sid,
                    conversation_id=conversation,
                    direction="inbound",
                    created_at=datetime.now(UTC),
                )
            )
        await database.dispose()

    in_thread(lambda: asyncio.run(add_call()))
    mp3 = b"ID3\x04\x00" + bytes(range(256)) * 400
    payload = {
        "type": "post_call_audio",
        "event_timestamp": int(time.time()),
        "data": {"conversation_id": conversation, "full_audio": base64.b64encode(mp3).decode()},
    }
    raw = json.dumps(payload).encode()

    with running_server(create_app(settings)) as base:
        webhook = httpx.post(
            f"{base}/elevenlabs/webhook",
            content=raw,
            headers={HEADER: sign(raw, WEBHOOK_SECRET, int(time.time()))},
        )
        assert webhook.json() == {"received": True, "duplicate": False}
        bearer = {"authorization": f"Bearer {TOKEN}"}
        record = httpx.get(f"{base}/calls/{sid}", headers=bearer).json()
        (link,) = record["audio"]
        assert link["url"] == f"/calls/{sid}/audio/{conversation}.mp3"
        with httpx.Client(headers=bearer, follow_redirects=True) as client:
            listened = client.get(f"{base}{link['url']}")

    assert listened.status_code == 200 and listened.content == mp3
    (redirect,) = listened.history
    assert redirect.status_code == 307
    # The bucket served it, and the bridge's token did not go there.
    assert listened.url.host == "127.0.0.1" and str(listened.url).startswith(s3_server.endpoint)
    assert "authorization" not in listened.request.headers
    assert s3_server.objects("e2e/")[f"e2e/post-call/{conversation}.mp3"] == mp3
    assert S3_BUCKET in str(listened.url)
