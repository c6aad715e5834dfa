"""`callbridge calls show`: the call's audio, after its transcript."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert

from bridge.cli.calls import audio_lines, details
from bridge.storage import migrate
from bridge.storage.database import Database
from bridge.storage.tables import calls, recordings
from tests.helpers import clear_settings_environment, run_cli

VOICEMAIL = {
    "kind": "voicemail",
    "file": "RE1.mp3",
    "url": "/calls/CA1/audio/RE1.mp3",
    "bytes": 6789,
    "sha256": "a" * 64,
    "duration": 75,
}


def test_audio_lines_say_kind_length_size_and_where() -> None:
    post_call = {**VOICEMAIL, "kind": "post_call", "duration": None, "bytes": None}
    assert audio_lines([VOICEMAIL, post_call], "https://bridge.example.com") == [
        "audio:",
        "  voicemail    1:15  6789 bytes     https://bridge.example.com/calls/CA1/audio/RE1.mp3",
        "  post_call       -  -              https://bridge.example.com/calls/CA1/audio/RE1.mp3",
    ]
    assert audio_lines([], None) == ["audio:", "  -"]


def test_details_end_with_the_audio_and_never_print_it_raw() -> None:
    lines = details({"call_sid": "CA1", "events": [], "transcript": [], "audio": [VOICEMAIL]})
    assert lines[-2:] == ["audio:", f"  voicemail    1:15  6789 bytes     {VOICEMAIL['url']}"]
    assert not any(line.startswith("  audio:") for line in lines)


def test_calls_show_lists_a_voicemail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clear_settings_environment(monkeypatch)
    monkeypatch.delenv("CALLBRIDGE_URL", raising=False)
    url = f"sqlite:///{tmp_path / 'callbridge.sqlite3'}"
    monkeypatch.setenv("DATABASE_URL", url)
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    async def fill() -> None:
        await migrate.upgrade(url)
        database = Database(url)
        engine = await database.engine()
        async with engine.begin() as connection:
            await connection.execute(
                insert(calls).values(id="c1", call_sid="CA1", direction="inbound", created_at=now)
            )
            await connection.execute(
                insert(recordings).values(
                    recording_sid="RE1",
                    call_id="c1",
                    call_sid="CA1",
                    kind="voicemail",
                    status="stored",
                    duration=75,
                    audio_name="recordings/RE1.mp3",
                    audio_bytes=6789,
                    created_at=now,
                )
            )
        await database.dispose()

    asyncio.run(fill())
    code, out, _ = run_cli(capsys, "calls", "show", "CA1")
    assert code == 0
    assert out.splitlines()[-2:] == [
        "audio:",
        "  voicemail    1:15  6789 bytes     /calls/CA1/audio/RE1.mp3",
    ]
