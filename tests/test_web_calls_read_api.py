"""Reading the call log: GET /calls (filters, order, cursor pages), GET /calls/{sid},
and `callbridge calls` on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select, update

import bridge.app
from bridge.call import Answer, Call
from bridge.calllog.queries import Cursor, encode_cursor
from bridge.calllog.records import CallRecords
from bridge.secret import Secret
from bridge.storage.database import Database
from bridge.storage.tables import call_events, calls
from tests.helpers import (
    API_TOKEN,
    BEARER,
    clear_settings_environment,
    make_settings,
    run_cli,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
CALLER = "+14155550123"
OURS = "+14155550100"
OTHER = "+442071838750"


@dataclass
class Log:
    """A database, an API client on it, and a tag (the `rule` of every call a test
    inserts) that keeps tests apart on the shared PostgreSQL database."""

    database: Database
    client: httpx.AsyncClient
    tag: str

    async def add(self, **fields: Any) -> dict[str, Any]:
        values: dict[str, Any] = {
            "id": uuid.uuid4().hex,
            "call_sid": "CA" + uuid.uuid4().hex,
            "direction": "inbound",
            "from_number": CALLER,
            "to_number": OURS,
            "rule": self.tag,
            "status": "completed",
            "created_at": T0,
        }
        values.update(fields)
        engine = await self.database.engine()
        async with engine.begin() as connection:
            await connection.execute(insert(calls).values(values))
        return values

    async def page(self, **params: Any) -> dict[str, Any]:
        response = await self.client.get("/calls", params={"rule": self.tag, **params})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def ids(self, **params: object) -> list[str]:
        return [call["id"] for call in (await self.page(**params))["calls"]]


@pytest.fixture
async def log(database_url: str) -> AsyncIterator[Log]:
    settings = make_settings(bridge_api_token=Secret(API_TOKEN), database_url=database_url)
    app = bridge.app.create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://bridge.test", headers=BEARER
    ) as client:
        database: Database = app.state.database
        yield Log(database, client, "rule-" + uuid.uuid4().hex[:12])
        await database.dispose()


FILTERS = [
    pytest.param({}, ["a", "b", "c", "d"], id="none"),
    pytest.param({"direction": "outbound"}, ["b", "d"], id="direction"),
    pytest.param({"status": "no-answer"}, ["c"], id="status"),
    pytest.param({"number": OTHER}, ["b", "c"], id="number-from-or-to"),
    pytest.param({"since": "2025-03-01T12:02:00+00:00"}, ["c", "d"], id="since-inclusive"),
    pytest.param({"until": "2025-03-01T12:02:00"}, ["a", "b"], id="until-exclusive-naive-utc"),
    pytest.param(
        {"since": "2025-03-01T13:01:00+01:00", "until": "2025-03-01T12:03:00Z"},
        ["b", "c"],
        id="since-with-offset",
    ),
    pytest.param({"direction": "outbound", "number": OTHER}, ["b"], id="combined"),
    pytest.param({"limit": "2"}, ["c", "d"], id="limit"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("params", "expected"), FILTERS)
async def test_filters(log: Log, params: dict[str, str], expected: list[str]) -> None:
    names = {}
    for minute, (name, direction, status, from_number, to_number) in enumerate(
        [
            ("a", "inbound", "completed", CALLER, OURS),
            ("b", "outbound", "completed", OURS, OTHER),
            ("c", "inbound", "no-answer", OTHER, OURS),
            ("d", "outbound", "busy", OURS, CALLER),
        ]
    ):
        row = await log.add(
            direction=direction,
            status=status,
            from_number=from_number,
            to_number=to_number,
            created_at=T0 + timedelta(minutes=minute),
        )
        names[row["id"]] = name
    found = [names[call_id] for call_id in await log.ids(**params)]
    assert found == sorted(expected, reverse=True)  # newest first


@pytest.mark.anyio
async def test_a_call_is_listed_with_every_field(log: Log) -> None:
    row = await log.add(
        action="agent",
        agent_id="agent_1",
        mode="twilio",
        outcome="connected",
        answered_at=T0 + timedelta(seconds=5),
        ended_at=T0 + timedelta(seconds=47),
        duration=42,
        answered_by="human",
        conversation_id="conv_" + log.tag,
        summary="The caller booked Tuesday.",
        call_successful="success",
    )
    (call,) = (await log.page())["calls"]
    assert call == {
        "id": row["id"],
        "call_sid": row["call_sid"],
        "direction": "inbound",
        "from": CALLER,
        "to": OURS,
        "rule": log.tag,
        "action": "agent",
        "agent_id": "agent_1",
        "mode": "twilio",
        "outcome": "connected",
        "status": "completed",
        "created_at": "2025-03-01T12:00:00+00:00",
        "answered_at": "2025-03-01T12:00:05+00:00",
        "ended_at": "2025-03-01T12:00:47+00:00",
        "duration": 42,
        "answered_by": "human",
        "conversation_id": "conv_" + log.tag,
        "summary": "The caller booked Tuesday.",
        "call_successful": "success",
        "error": None,
    }


@pytest.mark.anyio
@pytest.mark.parametrize("limit", [1, 2, 3, 7])
async def test_pages_with_equal_timestamps_have_no_duplicates_or_gaps(log: Log, limit: int) -> None:
    # Five calls share one instant, two are older, one newer: only the id orders a tie.
    stamps = [T0] * 5 + [T0 - timedelta(microseconds=1), T0 - timedelta(days=1)]
    stamps.append(T0 + timedelta(microseconds=1))
    rows = [await log.add(created_at=stamp) for stamp in stamps]
    expected = [row["id"] for row in sorted(rows, key=lambda r: (r["created_at"], r["id"]))]
    expected.reverse()
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, object] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        page = await log.page(**params)
        pages += 1
        assert len(page["calls"]) <= limit
        seen.extend(call["id"] for call in page["calls"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
    assert pages == -(-len(rows) // limit)  # no empty last page


@pytest.mark.anyio
async def test_a_cursor_skips_nothing_recorded_before_it(log: Log) -> None:
    first = await log.add(created_at=T0)
    second = await log.add(created_at=T0 - timedelta(minutes=1))
    page = await log.page(limit=1)
    assert [call["id"] for call in page["calls"]] == [first["id"]]
    await log.add(created_at=T0 + timedelta(minutes=1))  # newer: not on later pages
    assert await log.ids(cursor=page["next_cursor"]) == [second["id"]]


BAD_REQUESTS = [
    pytest.param({"cursor": "%%%"}, "cursor", id="cursor-not-base64"),
    pytest.param({"cursor": "bm90IGpzb24"}, "cursor", id="cursor-not-json"),
    pytest.param({"cursor": "eyJ0IjoxfQ"}, "cursor", id="cursor-wrong-shape"),
    pytest.param(
        {"cursor": "eyJ0Ijoibm90IGEgdGltZSIsImlkIjoieCJ9"}, "cursor", id="cursor-bad-time"
    ),
    pytest.param({"limit": "0"}, "limit", id="limit-zero"),
    pytest.param({"limit": "201"}, "limit", id="limit-too-big"),
    pytest.param({"limit": "ten"}, "limit", id="limit-not-a-number"),
    pytest.param({"since": "yesterday"}, "since", id="since"),
    pytest.param({"until": "2025-13-01"}, "until", id="until"),
    pytest.param({"since": "2025-03-02", "until": "2025-03-01"}, "until", id="until-before"),
    pytest.param({"direction": "sideways"}, "direction", id="direction"),
    pytest.param({"status": "exploded"}, "status", id="status"),
    pytest.param({"number": "4155550123"}, "number", id="number-not-e164"),
    pytest.param({"statsu": "completed"}, "statsu", id="unknown-parameter"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("params", "field"), BAD_REQUESTS)
async def test_bad_parameters_are_400_naming_the_field(
    log: Log, params: dict[str, str], field: str
) -> None:
    response = await log.client.get("/calls", params=params)
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == field and body["error"]


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/calls", "/calls/CA" + "0" * 32])
@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer wrong"}])
async def test_reading_needs_the_bearer_token(log: Log, path: str, headers: dict[str, str]) -> None:
    log.client.headers.pop("authorization")
    response = await log.client.get(path, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"error": "Missing or invalid bearer token."}


async def record_a_call(database: Database, sid: str, conversation_id: str) -> str:
    """A call as the bridge records it, then ElevenLabs' transcript; its id."""
    clock = iter(T0 + timedelta(seconds=second) for second in range(100))
    records = CallRecords(database, now=lambda: next(clock))
    call = Call(call_sid=sid, from_number=CALLER, to_number=OURS)
    answer = Answer(
        "<Response/>",
        rule="vip",
        action="agent",
        outcome="connected",
        agent_id="agent_vip",
        conversation_id=conversation_id,
    )
    await records.record_answer(call, answer, kind="inbound")
    for sequence, status in enumerate(["in-progress", "completed"]):
        form = {"CallSid": sid, "CallStatus": status, "SequenceNumber": str(sequence)}
        await records.record_status({**form, "Direction": "inbound", "CallDuration": "42"})
    engine = await database.engine()
    async with engine.begin() as connection:
        await connection.execute(
            update(calls)
            .where(calls.c.call_sid == sid)
            .values(
                transcript=[
                    {"role": "agent", "message": "Hello, how can I help?"},
                    {"role": "user", "message": "I'd like to book Tuesday."},
                ],
                summary="Booked Tuesday.",
                call_successful="success",
            )
        )
        # A webhook that came before the call was matched to its conversation.
        await connection.execute(
            insert(call_events).values(
                kind="post_call_audio",
                at=T0 + timedelta(minutes=5),
                data={"bytes": 10},
                conversation_id=conversation_id,
            )
        )
        found = await connection.execute(select(calls.c.id).where(calls.c.call_sid == sid))
        return str(found.scalar_one())


@pytest.mark.anyio
@pytest.mark.parametrize("key", ["sid", "id", "conversation_id"])
async def test_show_has_events_in_order_and_the_transcript(log: Log, key: str) -> None:
    sid = "CA" + uuid.uuid4().hex
    conversation_id = "conv_" + uuid.uuid4().hex
    call_id = await record_a_call(log.database, sid, conversation_id)
    lookup = {"sid": sid, "id": call_id, "conversation_id": conversation_id}[key]
    response = await log.client.get(f"/calls/{lookup}")
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["call_sid"], body["conversation_id"]) == (
        call_id,
        sid,
        conversation_id,
    )
    assert (body["rule"], body["status"], body["duration"]) == ("vip", "completed", 42)
    assert [event["kind"] for event in body["events"]] == [
        "inbound",
        "status",
        "status",
        "post_call_audio",
    ]
    assert body["created_at"] == "2025-03-01T12:00:00+00:00"
    assert body["events"][0]["at"] == "2025-03-01T12:00:01+00:00"
    assert body["events"][2]["data"]["status"] == "completed"
    assert body["transcript"][1] == {"role": "user", "message": "I'd like to book Tuesday."}


@pytest.mark.anyio
async def test_an_unknown_call_is_404(log: Log) -> None:
    response = await log.client.get("/calls/CA" + uuid.uuid4().hex)
    assert response.status_code == 404
    assert "error" in response.json()


@pytest.mark.anyio
async def test_post_calls_still_reaches_the_outbound_api(log: Log) -> None:
    response = await log.client.post("/calls", json={})
    assert response.status_code != 405


# The command line, with the bridge built in process from the environment.


@pytest.fixture
def cli_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Database, str]]:
    clear_settings_environment(monkeypatch)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("BRIDGE_API_TOKEN", API_TOKEN)
    database = Database(database_url)
    yield database, "rule-" + uuid.uuid4().hex[:12]
    asyncio.run(database.dispose())


def test_cli_lists_calls_newest_first(
    cli_env: tuple[Database, str], capsys: pytest.CaptureFixture[str]
) -> None:
    database, tag = cli_env

    async def add() -> None:
        engine = await database.engine()
        async with engine.begin() as connection:
            for minute, (direction, summary) in enumerate(
                [("inbound", "short"), ("outbound", "word " * 40), ("inbound", None)]
            ):
                await connection.execute(
                    insert(calls).values(
                        id=f"{tag}-{minute}",
                        direction=direction,
                        from_number=CALLER,
                        to_number=OURS,
                        rule=tag,
                        status="completed",
                        duration=minute * 10 or None,
                        summary=summary,
                        created_at=T0 + timedelta(minutes=minute),
                    )
                )
        await database.dispose()

    asyncio.run(add())
    code, out, err = run_cli(capsys, "calls", "--rule", tag, "--limit", "2")
    assert code == 0, err
    header, newest, older = out.splitlines()
    assert header.split() == [
        "created",
        "(UTC)",
        "direction",
        "from→to",
        "rule",
        "status",
        "duration",
        "summary",
    ]
    assert newest.split()[:8] == [
        "2025-03-01",
        "12:02:00",
        "inbound",
        f"{CALLER}→{OURS}",
        tag,
        "completed",
        "20s",
        "-",
    ]
    assert "outbound" in older and "10s" in older and older.endswith("…")
    assert len(older) < 200
    assert "more calls" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["calls", "--since", "soon"], "since must be an ISO 8601"),
        (["calls", "--number", "12345"], "number must be E.164"),
        (["calls", "--status", "exploded"], "status must be one of"),
    ],
)
def test_cli_passes_on_the_bridges_400_as_a_usage_error(
    cli_env: tuple[Database, str],
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    code, out, err = run_cli(capsys, *argv)
    assert (code, out) == (2, "")
    assert err.startswith(f"callbridge: {message}")


@pytest.mark.parametrize("argv", [["calls", "--limit", "0"], ["calls", "--direction", "up"]])
def test_cli_checks_its_options(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        run_cli(capsys, *argv)
    assert exited.value.code == 2
    assert argv[1] in capsys.readouterr().err


def test_cli_shows_a_call(
    cli_env: tuple[Database, str], capsys: pytest.CaptureFixture[str]
) -> None:
    database, _ = cli_env
    sid = "CA" + uuid.uuid4().hex

    async def record() -> None:
        await record_a_call(database, sid, "conv_" + uuid.uuid4().hex)
        await database.dispose()

    asyncio.run(record())
    code, out, err = run_cli(capsys, "calls", "show", sid)
    assert code == 0, err
    assert out.startswith(f"call {sid}\n")
    assert "  status:          completed\n" in out
    assert "  summary:         Booked Tuesday.\n" in out
    events = out.split("events:\n")[1].split("transcript:\n")[0].splitlines()
    assert [line.split()[2] for line in events] == [
        "inbound",
        "status",
        "status",
        "post_call_audio",
    ]
    assert out.split("transcript:\n")[1].split("audio:\n")[0].splitlines() == [
        "  agent: Hello, how can I help?",
        "  user: I'd like to book Tuesday.",
    ]


def test_cli_show_finds_nothing(
    cli_env: tuple[Database, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "calls", "show", "CA" + uuid.uuid4().hex)
    assert (code, out) == (1, "")
    assert "No call" in err


@pytest.mark.anyio
@pytest.mark.parametrize("key", ["CA%00", "%00", "CA" + "0" * 32 + "%00"])
async def test_a_key_with_nul_is_404(log: Log, key: str) -> None:
    # PostgreSQL refuses NUL in text; nothing stored has one (bridge.calllog.records).
    response = await log.client.get(f"/calls/{key}")
    assert response.status_code == 404


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"rule": "desk\x00"}, "rule"),
        ({"cursor": encode_cursor(Cursor(datetime(2025, 3, 1, tzinfo=UTC), "a\x00"))}, "cursor"),
    ],
    ids=["rule", "cursor"],
)
async def test_a_filter_with_nul_is_400(log: Log, params: dict[str, str], field: str) -> None:
    response = await log.client.get("/calls", params=params)
    assert response.status_code == 400
    assert field in response.text
