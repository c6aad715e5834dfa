"""`callbridge reconcile`: options, what it prints, its exit status (in process,
against the fakes over real HTTP, on a SQLite file of its own)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert
from starlette.testclient import TestClient

from bridge.app import create_app
from bridge.cli.errors import UsageError
from bridge.cli.reconcile import describe, parse_since
from bridge.elevenlabs.webhook_signature import HEADER, sign
from bridge.fakes import FakeElevenLabs, FakeTwilio
from bridge.reconcile import Outcome
from bridge.reconcile.lease import Lease
from bridge.reconcile.service import LEASE_NAME
from bridge.recordings.callback import RecordingCallback
from bridge.recordings.rows import RecordingRows
from bridge.secret import Secret
from bridge.storage.database import Database
from bridge.storage.tables import calls
from tests.helpers import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    ELEVENLABS_KEY,
    clear_settings_environment,
    fresh_sqlite,
    make_settings,
    run_cli,
    running_server,
)

WEBHOOK_SECRET = "wsec_cli_reconcile"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m", 1800), ("2h", 7200), ("7d", 7 * 86400), (" 90s ", 90), ("90d", 90 * 86400)],
)
def test_since(text: str, seconds: int) -> None:
    assert parse_since(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "2", "h", "-1h", "0h", "91d", "1w", "1.5h"])
def test_since_refused(text: str) -> None:
    with pytest.raises(UsageError):
        parse_since(text)


def test_describe_says_what_was_left() -> None:
    outcome = Outcome(faults=1, stopped="time", checked=3)
    outcome.recovered["transcript"] = 2
    text = describe(outcome)
    assert text.startswith("recovered: 2 transcript(s), 0 unknown conversation(s), 0 final")
    assert "1 upstream fault(s)" in text and "stopped by a bound (time)" in text


@pytest.fixture
def bridge_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[FakeElevenLabs, FakeTwilio, str]]:
    clear_settings_environment(monkeypatch)
    elevenlabs = FakeElevenLabs(api_key=ELEVENLABS_KEY)
    twilio = FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
    url = fresh_sqlite(f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    with running_server(elevenlabs.app) as elevenlabs_url, running_server(twilio.app) as twilio_url:
        for name, value in {
            "DATABASE_URL": url,
            "ELEVENLABS_API_KEY": ELEVENLABS_KEY,
            "ELEVENLABS_API_BASE": elevenlabs_url,
            "ELEVENLABS_AGENT_ID": "agent_default",
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_API_BASE": twilio_url,
        }.items():
            monkeypatch.setenv(name, value)
        yield elevenlabs, twilio, url


def add_call(url: str, **values: object) -> None:
    async def go() -> None:
        database = Database(url)
        engine = await database.engine()
        async with engine.begin() as connection:
            await connection.execute(
                insert(calls).values(
                    id=uuid.uuid4().hex,
                    direction="outbound",
                    created_at=datetime.now(UTC) - timedelta(minutes=3),
                    **values,
                )
            )
        await database.dispose()

    asyncio.run(go())


def test_missed_webhooks_are_restored_and_said(
    bridge_env: tuple[FakeElevenLabs, FakeTwilio, str], capsys: pytest.CaptureFixture[str]
) -> None:
    elevenlabs, _, url = bridge_env
    sid = "CA" + uuid.uuid4().hex
    conversation_id = elevenlabs.add_conversation(call_sid=sid)["conversation_id"]
    add_call(url, call_sid=sid, conversation_id=conversation_id, mode="elevenlabs")

    code, out, _ = run_cli(capsys, "reconcile")  # grace 300 s: too early
    assert code == 0 and out.startswith("recovered: 0 transcript(s)")
    code, out, _ = run_cli(capsys, "reconcile", "--grace", "0", "--since", "1h")
    assert code == 0
    assert out.startswith("recovered: 1 transcript(s), 0 unknown conversation(s), 0 final")
    code, out, _ = run_cli(capsys, "calls", "--status", "completed")
    assert code == 0 and "completed" in out and "A short call." in out

    # The webhook, late, to a running bridge: received, a duplicate, nothing changes.
    app = create_app(
        make_settings(database_url=url, elevenlabs_webhook_secret=Secret(WEBHOOK_SECRET))
    )
    payload = {
        "type": "post_call_transcription",
        "event_timestamp": int(time.time()),
        "data": elevenlabs.conversations[conversation_id],
    }
    raw = json.dumps(payload).encode()
    with TestClient(app) as client:
        response = client.post(
            "/elevenlabs/webhook",
            content=raw,
            headers={HEADER: sign(raw, WEBHOOK_SECRET, int(time.time()))},
        )
    assert response.json() == {"received": True, "duplicate": True}


def test_a_recording_left_pending_by_a_crash_is_fetched(
    bridge_env: tuple[FakeElevenLabs, FakeTwilio, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    _, twilio, url = bridge_env
    monkeypatch.setenv("CALL_AUDIO_DIR", str(tmp_path / "audio"))
    sid = "CA" + uuid.uuid4().hex
    add_call(url, call_sid=sid, status="completed", status_rank=4)
    recording = twilio.recordings.add(sid)
    # Acknowledged, then the server died before it fetched the audio.
    callback = RecordingCallback(recording.sid, sid, "voicemail", "completed", 4, 1, "RecordVerb")

    async def acknowledged() -> None:
        database = Database(url)
        assert await RecordingRows(database).add(callback, datetime.now(UTC))
        await database.dispose()

    asyncio.run(acknowledged())
    code, _, err = run_cli(capsys, "reconcile", "--grace", "0")
    assert code == 0, err
    stored = tmp_path / "audio" / "recordings" / f"{recording.sid}.mp3"
    assert stored.read_bytes() == recording.audio


def test_upstream_faults_exit_1_and_say_so(
    bridge_env: tuple[FakeElevenLabs, FakeTwilio, str], capsys: pytest.CaptureFixture[str]
) -> None:
    elevenlabs, _, url = bridge_env
    add_call(url, conversation_id="conv_x")
    elevenlabs.script = ["status:503"]
    code, out, _ = run_cli(capsys, "reconcile", "--grace", "0")
    assert code == 1 and "1 upstream fault(s)" in out


def test_another_process_reconciling_is_exit_1(
    bridge_env: tuple[FakeElevenLabs, FakeTwilio, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, url = bridge_env

    async def hold() -> None:
        database = Database(url)
        assert await Lease(database, LEASE_NAME, ttl=60, holder="server").acquire()
        await database.dispose()

    asyncio.run(hold())
    code, _, err = run_cli(capsys, "reconcile")
    assert code == 1 and "another process is reconciling" in err


@pytest.mark.parametrize(
    ("argv", "unset", "code", "message"),
    [
        (["--grace", "-1"], (), 2, "--grace must be 0 or more"),
        (["--since", "soon"], (), 2, "not a duration"),
        ([], ("ELEVENLABS_API_KEY", "TWILIO_ACCOUNT_SID"), 1, "nothing to reconcile with"),
    ],
)
def test_usage(
    bridge_env: tuple[FakeElevenLabs, FakeTwilio, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    unset: tuple[str, ...],
    code: int,
    message: str,
) -> None:
    for name in unset:
        monkeypatch.delenv(name)
    status, _, err = run_cli(capsys, "reconcile", *argv)
    assert status == code and message in err


def test_no_database_is_reported_not_created(
    bridge_env: tuple[FakeElevenLabs, FakeTwilio, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    missing = tmp_path / "none.sqlite3"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{missing}")
    code, _, err = run_cli(capsys, "reconcile")
    assert code == 1 and "no database" in err and not missing.exists()
