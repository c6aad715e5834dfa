"""The pieces of outbound calling: destination guard, client-data schema, sealing,
idempotency keys (on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import text

from bridge.elevenlabs.client_data import ClientData, field_errors
from bridge.outbound.destinations import destination_problem
from bridge.outbound.idempotency import IdempotencyKeys, KeyConflict, Replay, request_hash
from bridge.outbound.sealing import Sealer
from bridge.settings import Settings, SettingsError
from bridge.storage.database import Database, async_database_url


@pytest.mark.parametrize(
    ("number", "allowed", "problem"),
    [
        ("+14155550100", ("US",), None),
        ("+14155550100", ("US", "CA"), None),
        ("+16135550123", ("US",), "+16135550123 is in CA, which is not in the allowed countries"),
        ("+18765550100", ("US",), "+18765550100 is in JM, which is not in the allowed countries"),
        ("+19005550100", ("US",), "+19005550100 is a premium-rate number"),
        ("+448712345678", ("GB",), "+448712345678 is a premium-rate number"),
        ("+34901123456", ("ES",), "+34901123456 is a shared-cost number"),
        ("+447012345678", ("GB",), "+447012345678 is a personal (follow-me) number"),
        ("+33899123456", ("FR",), "+33899123456 is a premium-rate number"),
        ("+15551234567", ("US",), "+15551234567 is not a valid phone number"),
        ("+14155550100", (), "no destination country is allowed"),
    ],
)
def test_destination_guard(number: str, allowed: tuple[str, ...], problem: str | None) -> None:
    found = destination_problem(number, allowed)
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(problem)


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        ({"dynamic_variables": {"a": "x", "b": 1, "c": 1.5, "d": True, "e": None}}, []),
        ({"dynamic_variables": {"a": [1]}}, ["dynamic_variables.a"]),
        ({"dynamic_variables": {"a": {"b": 1}}}, ["dynamic_variables.a"]),
        (
            {"conversation_config_override": {"agent": {"first_mesage": "hi"}}},
            ["conversation_config_override.agent.first_mesage"],
        ),
        (
            {"conversation_config_override": {"tts": {"speed": "fast"}}},
            ["conversation_config_override.tts.speed"],
        ),
        (
            {"conversation_config_override": {"agent": {"prompt": {"prompt": 3}}}},
            ["conversation_config_override.agent.prompt.prompt"],
        ),
        (
            {"conversation_config_override": {"conversation": {"text_only": "yes"}}},
            ["conversation_config_override.conversation.text_only"],
        ),
        ({"source_info": {"source": "fax"}}, ["source_info.source"]),
        ({"user_id": 5, "extra": 1}, ["user_id", "extra"]),
    ],
)
def test_client_data_schema(data: dict[str, object], fields: list[str]) -> None:
    try:
        ClientData.model_validate(data)
        found: list[str] = []
    except ValidationError as error:
        found = [item["field"] for item in field_errors(error)]
    assert sorted(found) == sorted(fields)


def test_client_data_keeps_only_what_was_set() -> None:
    data = ClientData.model_validate(
        {"conversation_config_override": {"agent": {"first_message": "Hi"}}}
    )
    assert data.to_json() == {"conversation_config_override": {"agent": {"first_message": "Hi"}}}


def test_sealing_hides_secret_variables_and_restores_them() -> None:
    sealer = Sealer("token-one")
    data = {"dynamic_variables": {"name": "Ada", "secret__pin": "1234", "secret__n": 7}}
    sealed = sealer.seal(data)
    assert sealed is not None
    assert sealed["dynamic_variables"]["name"] == "Ada"
    for name in ("secret__pin", "secret__n"):
        value = sealed["dynamic_variables"][name]
        assert isinstance(value, dict) and set(value) == {"$sealed"}
    assert sealer.unseal(sealed) == data
    with pytest.raises(ValueError, match="cannot be opened"):
        Sealer("another-token").unseal(sealed)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///./callbridge.sqlite3", "sqlite+aiosqlite:///./callbridge.sqlite3"),
        ("postgres://u:p@host:5432/db", "postgresql+asyncpg://u:p@host:5432/db"),
        ("postgresql://u@host/db", "postgresql+asyncpg://u@host/db"),
        ("postgresql+asyncpg://u@host/db", "postgresql+asyncpg://u@host/db"),
        ("postgres://u:p@host/db?sslmode=require", "postgresql+asyncpg://u:p@host/db?ssl=require"),
    ],
)
def test_database_urls(url: str, expected: str) -> None:
    assert async_database_url(url) == expected


@pytest.fixture
async def keys(database_url: str) -> AsyncIterator[IdempotencyKeys]:
    database = Database(database_url)
    engine = await database.engine()
    async with engine.begin() as connection:
        await connection.execute(text("DELETE FROM idempotency_keys"))
    yield IdempotencyKeys(database)
    await database.dispose()


@pytest.mark.anyio
async def test_idempotency_replay_mismatch_and_release(keys: IdempotencyKeys) -> None:
    key = uuid.uuid4().hex
    first = request_hash("calls", {"to": "+14155550100"})
    assert await keys.begin("calls", key, first) is None
    with pytest.raises(KeyConflict) as busy:
        await keys.begin("calls", key, first)
    assert busy.value.status == 409
    await keys.finish("calls", key, 201, {"call_sid": "CA1"})
    assert await keys.begin("calls", key, first) == Replay(201, {"call_sid": "CA1"})
    with pytest.raises(KeyConflict) as mismatch:
        await keys.begin("calls", key, request_hash("calls", {"to": "+14155550101"}))
    assert mismatch.value.status == 422
    # Another scope does not see the key.
    assert await keys.begin("transfer", key, first) is None
    await keys.release("transfer", key)
    assert await keys.begin("transfer", key, first) is None


@pytest.mark.anyio
async def test_idempotency_keys_expire_after_a_day(keys: IdempotencyKeys) -> None:
    key = uuid.uuid4().hex
    fingerprint = request_hash("calls", {"to": "+14155550100"})
    start = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    keys.now = lambda: start
    assert await keys.begin("calls", key, fingerprint) is None
    await keys.finish("calls", key, 201, {"call_sid": "CA1"})
    keys.now = lambda: start + timedelta(hours=23, minutes=59)
    assert await keys.begin("calls", key, fingerprint) == Replay(201, {"call_sid": "CA1"})
    keys.now = lambda: start + timedelta(hours=24, seconds=1)
    assert await keys.begin("calls", key, fingerprint) is None


@pytest.mark.anyio
async def test_concurrent_duplicates_let_exactly_one_through(keys: IdempotencyKeys) -> None:
    key = uuid.uuid4().hex
    fingerprint = request_hash("calls", {"to": "+14155550100"})

    async def attempt() -> str:
        try:
            return "went" if await keys.begin("calls", key, fingerprint) is None else "replayed"
        except KeyConflict as conflict:
            return str(conflict.status)

    outcomes = await asyncio.gather(*(attempt() for _ in range(8)))
    assert outcomes.count("went") == 1
    assert set(outcomes) <= {"went", "409"}


@pytest.mark.parametrize(
    ("env", "allowed"),
    [
        ({}, ()),
        ({"TWILIO_PHONE_NUMBER": "+14155550100"}, ("US",)),
        ({"TWILIO_PHONE_NUMBER": "+442071234567"}, ("GB",)),
        (
            {"TWILIO_PHONE_NUMBER": "+14155550100", "OUTBOUND_ALLOWED_COUNTRIES": "us, ca"},
            ("US", "CA"),
        ),
    ],
)
def test_allowed_countries(env: dict[str, str], allowed: tuple[str, ...]) -> None:
    assert Settings.from_env(env).allowed_countries() == allowed


def test_unknown_allowed_country_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="OUTBOUND_ALLOWED_COUNTRIES: XX"):
        Settings.from_env({"OUTBOUND_ALLOWED_COUNTRIES": "US,XX"})


@pytest.mark.anyio
async def test_a_key_abandoned_by_a_dead_worker_answers_unknown_after_its_lease(
    keys: IdempotencyKeys,
) -> None:
    key = uuid.uuid4().hex
    fingerprint = request_hash("calls", {"to": "+14155550100"})
    start = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    keys.now = lambda: start
    assert await keys.begin("calls", key, fingerprint) is None  # ...and the worker dies
    keys.now = lambda: start + timedelta(seconds=30)
    with pytest.raises(KeyConflict) as busy:
        await keys.begin("calls", key, fingerprint)
    assert busy.value.status == 409
    keys.now = lambda: start + timedelta(minutes=3)
    replay = await keys.begin("calls", key, fingerprint)
    assert replay is not None and replay.status == 500
    assert replay.body["placed"] == "unknown"
