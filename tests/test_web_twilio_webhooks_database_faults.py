"""The outbound answer and status callback webhooks when the database fails: the
callee still hears a goodbye (never Twilio's "application error"), and a status
callback is still stored and acknowledged."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient
from twilio.request_validator import RequestValidator

from bridge.answer.outbound import OUTBOUND_FALLBACK
from bridge.app import create_app
from bridge.secret import Secret
from bridge.settings import Settings
from bridge.storage.migrate import upgrade
from bridge.storage.tables import calls

AUTH_TOKEN = "database-faults-auth-token"
PUBLIC = "https://bridge.example.com"
ACCOUNT_SID = "AC" + "f" * 32


@pytest.fixture
def database_file(tmp_path: Path) -> Path:
    path = tmp_path / "faults.sqlite3"
    asyncio.run(upgrade(f"sqlite:///{path}"))
    return path


@pytest.fixture
def client(database_file: Path) -> Iterator[TestClient]:
    settings = Settings(
        twilio_auth_token=Secret(AUTH_TOKEN),
        public_base_url=PUBLIC,
        database_url=f"sqlite:///{database_file}",
    )
    with TestClient(create_app(settings)) as client:
        yield client


def post(client: TestClient, path: str, form: dict[str, str]) -> Any:
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC + path, form)
    return client.post(path, data=form, headers={"X-Twilio-Signature": signature})


def call_form(call_sid: str, **fields: str) -> dict[str, str]:
    return {
        "CallSid": call_sid,
        "AccountSid": ACCOUNT_SID,
        "From": "+14155550100",
        "To": "+14155550123",
        "Direction": "outbound-api",
        **fields,
    }


def drop_pending_calls(database_file: Path) -> None:
    with sqlite3.connect(database_file) as connection:
        connection.execute("DROP TABLE pending_outbound_calls")


def test_an_answer_the_database_fails_gets_the_goodbye(
    client: TestClient, database_file: Path
) -> None:
    drop_pending_calls(database_file)
    call_sid = "CA" + uuid.uuid4().hex
    response = post(client, f"/twilio/outbound-answer?call={uuid.uuid4().hex}", call_form(call_sid))
    assert response.status_code == 200
    assert response.text == OUTBOUND_FALLBACK


def test_a_status_callback_is_stored_when_the_cleanup_after_it_fails(
    client: TestClient, database_file: Path
) -> None:
    drop_pending_calls(database_file)
    call_sid = "CA" + uuid.uuid4().hex
    form = call_form(call_sid, CallStatus="completed", CallDuration="42", SequenceNumber="3")
    response = post(client, "/twilio/status", form)
    assert response.status_code == 200
    assert "<Response" in response.text

    async def stored() -> list[Any]:
        engine = await client.app.state.database.engine()  # type: ignore[attr-defined]
        async with engine.begin() as connection:
            query = select(calls.c.status, calls.c.duration).where(calls.c.call_sid == call_sid)
            return list(await connection.execute(query))

    assert client.portal.call(stored) == [("completed", 42)]  # type: ignore[union-attr]
