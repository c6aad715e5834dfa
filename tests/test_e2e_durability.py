"""Nothing acknowledged is lost: across a restart, and with two server processes
writing to the same PostgreSQL database at once."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bridge.app import create_app
from bridge.elevenlabs.webhook_signature import HEADER
from bridge.elevenlabs.webhook_signature import sign as sign_webhook
from bridge.fakes import FakeElevenLabs
from bridge.secret import Secret
from tests.helpers import (
    API_TOKEN,
    AUTH_TOKEN,
    ELEVENLABS_KEY,
    SETTINGS_VARIABLES,
    free_port,
    fresh_sqlite,
    make_settings,
    running_server,
    start_server_process,
    twilio_form,
    twilio_signature,
)

WEBHOOK_SECRET = "wsec_durability"
BEARER = {"authorization": f"Bearer {API_TOKEN}"}


def transcription(conversation_id: str, summary: str) -> bytes:
    return json.dumps(
        {
            "type": "post_call_transcription",
            "event_timestamp": int(time.time()),
            "data": {
                "conversation_id": conversation_id,
                "transcript": [{"role": "agent", "message": "Hello!"}],
                "analysis": {"transcript_summary": summary, "call_successful": "success"},
                "metadata": {"call_duration_secs": 42},
            },
        }
    ).encode()


def test_a_restart_between_a_call_and_its_webhooks_loses_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'restart.sqlite3'}"
    fresh_sqlite(url)
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    fake = FakeElevenLabs(api_key=ELEVENLABS_KEY)
    call_sid = "CA" + uuid.uuid4().hex
    with running_server(fake.app) as fake_url:
        settings = make_settings(
            database_url=url,
            public_base_url=public,
            elevenlabs_api_base=fake_url,
            elevenlabs_webhook_secret=Secret(WEBHOOK_SECRET),
            bridge_api_token=Secret(API_TOKEN),
        )
        form = twilio_form(CallSid=call_sid)
        with running_server(create_app(settings), port=port) as base:
            answered = httpx.post(
                f"{base}/twilio/inbound",
                data=form,
                headers={"X-Twilio-Signature": twilio_signature(f"{public}/twilio/inbound", form)},
            )
        assert answered.status_code == 200
        conversation_id = answered.text.split('name="conversation_id" value="')[1].split('"')[0]

        # A new process on the same database gets the rest of the call's story.
        with running_server(create_app(settings), port=port) as base:
            status_form = twilio_form(
                CallSid=call_sid, CallStatus="completed", CallDuration="42", SequenceNumber="3"
            )
            status = httpx.post(
                f"{base}/twilio/status",
                data=status_form,
                headers={
                    "X-Twilio-Signature": twilio_signature(f"{public}/twilio/status", status_form)
                },
            )
            body = transcription(conversation_id, "Asked about opening hours.")
            webhook = httpx.post(
                f"{base}/elevenlabs/webhook",
                content=body,
                headers={HEADER: sign_webhook(body, WEBHOOK_SECRET, int(time.time()))},
            )
            record = httpx.get(f"{base}/calls/{call_sid}", headers=BEARER)
    assert status.status_code == 200 and webhook.status_code == 200
    assert record.status_code == 200, record.text
    call = record.json()
    assert call["status"] == "completed" and call["duration"] == 42
    assert call["summary"] == "Asked about opening hours."
    assert call["conversation_id"] == conversation_id
    kinds = [event["kind"] for event in call["events"]]
    assert kinds == ["inbound", "status", "elevenlabs:post_call_transcription"]


@pytest.fixture
def two_bridges(postgres_url: str, tmp_path: Path) -> Iterator[list[str]]:
    """Two server processes (uvicorn) on the same PostgreSQL database."""
    env = {key: value for key, value in os.environ.items() if key not in SETTINGS_VARIABLES}
    env.update(
        DATABASE_URL=postgres_url,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        PUBLIC_BASE_URL="https://bridge.example.com",
        ELEVENLABS_WEBHOOK_SECRET=WEBHOOK_SECRET,
        BRIDGE_API_TOKEN=API_TOKEN,
        LOG_LEVEL="WARNING",
    )
    ports = [free_port(), free_port()]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    processes = []
    try:
        for port, base in zip(ports, bases, strict=True):
            command = [sys.executable, "-m", "uvicorn", "bridge.app:app", "--host", "127.0.0.1",
                       "--port", str(port), "--log-level", "warning"]  # fmt: skip
            log = tmp_path / f"bridge-{port}.log"
            processes.append(start_server_process(command, env, base, log))
        yield bases
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)


def test_two_processes_write_to_one_postgres_without_loss_or_duplicates(
    two_bridges: list[str],
) -> None:
    sids = ["CA" + uuid.uuid4().hex for _ in range(20)]
    statuses = [("initiated", 0), ("ringing", 1), ("in-progress", 2), ("completed", 3)]

    async def send_all() -> list[int]:
        # 160 posts at once: on a busy machine some wait for a connection longer than
        # httpx's default 5 s; this test is about what is stored, not how fast.
        async with httpx.AsyncClient(timeout=httpx.Timeout(60.0)) as client:
            posts = []
            for sid in sids:
                for status, sequence in statuses:
                    form = twilio_form(CallSid=sid, CallStatus=status, SequenceNumber=str(sequence))
                    signature = twilio_signature("https://bridge.example.com/twilio/status", form)
                    # Each callback goes to both processes: one stores it, one finds a replay.
                    for base in two_bridges:
                        posts.append(
                            client.post(
                                f"{base}/twilio/status",
                                data=form,
                                headers={"X-Twilio-Signature": signature},
                            )
                        )
            return [response.status_code for response in await asyncio.gather(*posts)]

    assert set(asyncio.run(send_all())) == {200}
    with httpx.Client(headers=BEARER) as client:
        for sid in sids:
            call = client.get(f"{two_bridges[1]}/calls/{sid}").json()
            assert call["status"] == "completed"
            assert [event["kind"] for event in call["events"]] == ["status"] * 4
