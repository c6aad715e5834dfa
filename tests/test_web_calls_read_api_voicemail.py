"""The plain-words timeline of `GET /calls/{sid}` and `callbridge calls show`, and the
`has_voicemail` filter of `GET /calls` and `callbridge calls --has-voicemail`, on
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

import bridge.app
from bridge.secret import Secret
from bridge.storage.database import Database
from bridge.storage.tables import call_events, calls, recordings
from tests.helpers import API_TOKEN, BEARER, clear_settings_environment, make_settings, run_cli

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
AUDIO = {"name": "recordings/RE1.mp3", "bytes": 6720, "sha256": "ab" * 32}


async def add_call(
    database: Database, tag: str, name: str, *, minute: int = 0, **fields: Any
) -> str:
    call_id = f"{tag}-{name}"
    engine = await database.engine()
    async with engine.begin() as connection:
        await connection.execute(
            insert(calls).values(
                id=call_id,
                call_sid="CA" + uuid.uuid4().hex,
                direction="inbound",
                from_number="+14155550123",
                to_number="+14155550100",
                rule=tag,
                status="completed",
                created_at=T0 + timedelta(minutes=minute),
                **fields,
            )
        )
    return call_id


async def add_recording(database: Database, call_id: str | None, kind: str) -> None:
    engine = await database.engine()
    async with engine.begin() as connection:
        await connection.execute(
            insert(recordings).values(
                recording_sid="RE" + uuid.uuid4().hex,
                call_id=call_id,
                kind=kind,
                status="stored",
                duration=42,
                created_at=T0,
            )
        )


async def add_events(database: Database, call_id: str, *events: tuple[str, dict[str, Any]]) -> None:
    engine = await database.engine()
    async with engine.begin() as connection:
        for second, (kind, data) in enumerate(events):
            await connection.execute(
                insert(call_events).values(
                    call_id=call_id,
                    kind=kind,
                    at=T0 + timedelta(seconds=second),
                    dedupe_key=f"{call_id}:{second}",
                    data=data,
                )
            )


# A voicemail call's whole life, as the steps and the recordings helper store it.
LIFE: list[tuple[str, dict[str, Any]]] = [
    ("inbound", {"rule": "sales", "action": "forward", "outcome": "handled"}),
    ("dial_result", {"step": "0", "status": "no-answer", "duration": 20}),
    ("dial_complete", {"rule": "sales", "action": "voicemail", "outcome": "handled"}),
    ("voicemail", {"step": "1", "recording_sid": "RE1", "duration": 42}),
    (
        "voicemail",
        {
            "recording_sid": "RE1",
            "duration": 42,
            "channels": 1,
            "status": "completed",
            "audio": None,
            "source": "RecordVerb",
        },
    ),
    (
        "voicemail",
        {
            "recording_sid": "RE1",
            "duration": 42,
            "channels": 1,
            "status": "stored",
            "audio": AUDIO,
            "source": "RecordVerb",
        },
    ),
    ("status", {"status": "completed", "duration": 190, "sequence": 3}),
    ("reconciled_somehow", {"status": "done"}),
]
LIFE_TEXT = [
    "answered by rule sales: forward",
    "dial no-answer after 20 s",
    "after the dial, answered by rule sales: voicemail",
    "voicemail 0:42",
    "voicemail 0:42 recorded, audio not stored yet",
    "voicemail 0:42 with audio",
    "completed 3:10",
    "reconciled somehow: done",
]


@dataclass
class Log:
    database: Database
    client: httpx.AsyncClient
    tag: str


@pytest.fixture
async def log(database_url: str) -> AsyncIterator[Log]:
    settings = make_settings(bridge_api_token=Secret(API_TOKEN), database_url=database_url)
    app = bridge.app.create_app(settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bridge.test", headers=BEARER
    ) as client:
        database: Database = app.state.database
        yield Log(database, client, "rule-" + uuid.uuid4().hex[:12])
        await database.dispose()


@pytest.mark.anyio
async def test_the_timeline_is_beside_the_events(log: Log) -> None:
    call_id = await add_call(log.database, log.tag, "life")
    await add_events(log.database, call_id, *LIFE)
    response = await log.client.get(f"/calls/{call_id}")
    assert response.status_code == 200
    body = response.json()
    assert [event["kind"] for event in body["events"]] == [kind for kind, _ in LIFE]
    assert [step["text"] for step in body["timeline"]] == LIFE_TEXT
    assert [step["kind"] for step in body["timeline"]] == [kind for kind, _ in LIFE]
    assert [step["at"] for step in body["timeline"]] == [e["at"] for e in body["events"]]


@pytest.mark.anyio
async def test_a_call_without_events_has_an_empty_timeline(log: Log) -> None:
    call_id = await add_call(log.database, log.tag, "quiet")
    body = (await log.client.get(f"/calls/{call_id}")).json()
    assert (body["events"], body["timeline"]) == ([], [])


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", ["voicemail", "both"]), ("false", ["plain", "recorded", "other-call"]), (None, None)],
)
async def test_has_voicemail(log: Log, value: str | None, expected: list[str] | None) -> None:
    names = ["plain", "voicemail", "recorded", "both", "other-call"]
    ids = {}
    for minute, name in enumerate(names):
        ids[name] = await add_call(log.database, log.tag, name, minute=minute)
    await add_recording(log.database, ids["voicemail"], "voicemail")
    await add_recording(log.database, ids["recorded"], "recording")
    await add_recording(log.database, ids["both"], "recording")
    await add_recording(log.database, ids["both"], "voicemail")
    await add_recording(log.database, ids["both"], "voicemail")  # two: still listed once
    await add_recording(log.database, None, "voicemail")  # matched to no call
    params = {"rule": log.tag} | ({"has_voicemail": value} if value is not None else {})
    response = await log.client.get("/calls", params=params)
    assert response.status_code == 200
    found = [call["id"].removeprefix(f"{log.tag}-") for call in response.json()["calls"]]
    assert found == list(reversed(expected if expected is not None else names))


@pytest.mark.anyio
async def test_has_voicemail_pages_with_a_cursor(log: Log) -> None:
    for minute in range(5):
        call_id = await add_call(log.database, log.tag, f"c{minute}", minute=minute)
        if minute % 2 == 0:
            await add_recording(log.database, call_id, "voicemail")
    params = {"rule": log.tag, "has_voicemail": "true", "limit": "2"}
    first = (await log.client.get("/calls", params=params)).json()
    second = (
        await log.client.get("/calls", params={**params, "cursor": first["next_cursor"]})
    ).json()
    shown = [call["id"].removeprefix(f"{log.tag}-") for call in first["calls"] + second["calls"]]
    assert shown == ["c4", "c2", "c0"]
    assert second["next_cursor"] is None


@pytest.mark.anyio
@pytest.mark.parametrize("value", ["yes", "1", "TRUE", "", "true\x00"])
async def test_a_bad_has_voicemail_is_400_naming_the_field(log: Log, value: str) -> None:
    response = await log.client.get("/calls", params={"has_voicemail": value})
    assert response.status_code == 400
    assert response.json() == {
        "error": "has_voicemail must be true or false",
        "field": "has_voicemail",
    }


# The command line, with the bridge built in process from the environment.


@pytest.fixture
def cli_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Database, str]]:
    clear_settings_environment(monkeypatch)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("BRIDGE_API_TOKEN", API_TOKEN)
    database = Database(database_url)
    yield database, "rule-" + uuid.uuid4().hex[:12]
    asyncio.run(database.dispose())


def test_cli_show_prints_the_timeline(
    cli_env: tuple[Database, str], capsys: pytest.CaptureFixture[str]
) -> None:
    database, tag = cli_env

    async def fill() -> str:
        call_id = await add_call(database, tag, "life")
        await add_events(database, call_id, *LIFE)
        await database.dispose()
        return call_id

    call_id = asyncio.run(fill())
    code, out, err = run_cli(capsys, "calls", "show", call_id)
    assert code == 0, err
    lines = out.split("timeline:\n")[1].split("events:\n")[0].splitlines()
    assert lines[0] == "  2025-03-01 12:00:00  answered by rule sales: forward"
    assert [line[23:] for line in lines] == LIFE_TEXT
    assert "  timeline:" not in out  # not repeated among the record's fields


@pytest.mark.parametrize("value", ["true", "false"])
def test_cli_has_voicemail(
    cli_env: tuple[Database, str], capsys: pytest.CaptureFixture[str], value: str
) -> None:
    database, tag = cli_env

    async def fill() -> None:
        await add_call(database, tag, "plain", minute=0)
        with_voicemail = await add_call(database, tag, "left-one", minute=1)
        await add_recording(database, with_voicemail, "voicemail")
        await database.dispose()

    asyncio.run(fill())
    code, out, err = run_cli(capsys, "calls", "--rule", tag, "--has-voicemail", value, "--json")
    assert code == 0, err
    found = [call["id"] for call in json.loads(out)]
    assert found == [f"{tag}-left-one" if value == "true" else f"{tag}-plain"]


def test_cli_refuses_a_bad_has_voicemail(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        run_cli(capsys, "calls", "--has-voicemail", "maybe")
    assert exited.value.code == 2
    assert "--has-voicemail" in capsys.readouterr().err


def test_cli_words_the_events_of_a_bridge_that_sends_no_timeline() -> None:
    from bridge.cli.calls import details

    data = {"status": "completed", "duration": 190}
    event = {"kind": "status", "at": "2025-03-01T12:03:10+00:00", "data": data}
    lines = details({"call_sid": "CA1", "events": [event]})
    assert lines[lines.index("timeline:") + 1] == "  2025-03-01 12:03:10  completed 3:10"
    quiet = details({"call_sid": "CA2", "events": []})
    assert quiet[quiet.index("timeline:") + 1] == "  -"
