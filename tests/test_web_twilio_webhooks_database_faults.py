"""The outbound answer and status callback webhooks when the database fails: the
callee still hears a goodbye (never Twilio's "application error"), and a status
callback is still stored and acknowledged. During an outage (PostgreSQL unreachable,
SQLite locked) every event acknowledged is kept and stored, once, when it is back."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.testclient import TestClient
from twilio.request_validator import RequestValidator

from bridge.answer.outbound import OUTBOUND_FALLBACK
from bridge.app import create_app
from bridge.elevenlabs.webhook_signature import HEADER, sign
from bridge.secret import Secret
from bridge.settings import Settings
from bridge.storage.database import async_database_url
from bridge.storage.migrate import upgrade
from bridge.storage.tables import call_events, calls
from tests.helpers import POSTGRES_SERVER, fresh_sqlite, in_thread, migrate_now

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


# --- an outage: every event acknowledged is stored once the database is back -------

N = 5
WEBHOOK_SECRET = "wsec_database_faults"


@contextlib.contextmanager
def outage_database(kind: str, tmp_path: Path) -> Iterator[tuple[str, Callable[[bool], None]]]:
    """A migrated database of `kind` of this test's own, and a switch that makes it
    unreachable (PostgreSQL: no connections allowed, open ones ended) or locked (SQLite:
    another connection holds the write lock)."""
    if kind == "sqlite":
        url = fresh_sqlite(f"sqlite:///{tmp_path / 'outage.sqlite3'}")
        holder = sqlite3.connect(tmp_path / "outage.sqlite3", isolation_level=None)

        def lock_sqlite(down: bool) -> None:
            holder.execute("BEGIN EXCLUSIVE" if down else "COMMIT")

        try:
            yield url, lock_sqlite
        finally:
            holder.close()
        return
    name = f"callbridge_outage_{os.getpid()}"
    admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}")
    url = f"{POSTGRES_SERVER}/{name}"
    migrate_now(url)

    def switch_postgres(down: bool) -> None:
        if down:
            admin(
                f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false",
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'",  # noqa: S608 (our own name)
            )
        else:
            admin(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")

    try:
        yield url, switch_postgres
    finally:
        switch_postgres(False)
        admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def admin(*statements: str) -> None:
    async def run() -> None:
        engine = create_async_engine(async_database_url(f"{POSTGRES_SERVER}/postgres"))
        async with engine.connect() as connection:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            for statement in statements:
                await connection.execute(text(statement))
        await engine.dispose()

    in_thread(lambda: asyncio.run(run()))


def transcription(conversation_id: str) -> dict[str, Any]:
    return {
        "type": "post_call_transcription",
        "event_timestamp": int(time.time()),
        "data": {"conversation_id": conversation_id, "transcript": [], "analysis": {}},
    }


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_events_received_during_an_outage_are_all_stored_once(kind: str, tmp_path: Path) -> None:
    if kind == "postgresql":
        pytest.importorskip("asyncpg")
    with outage_database(kind, tmp_path) as (url, down):
        settings = Settings(
            twilio_auth_token=Secret(AUTH_TOKEN),
            public_base_url=PUBLIC,
            database_url=url,
            elevenlabs_webhook_secret=Secret(WEBHOOK_SECRET),
            call_audio_dir=tmp_path / "audio",
        )
        app = create_app(settings)
        with TestClient(app) as client:
            writer = app.state.call_log_writer
            writer.store_wait = 0.3
            sids = {name: ["CA" + uuid.uuid4().hex for _ in range(N)] for name in EVENT_KINDS}
            conversations = [f"conv_{uuid.uuid4().hex}" for _ in range(N)]
            down(True)
            try:
                requests: list[Callable[[], Any]] = []
                for index in range(N):
                    status = call_form(
                        sids["status"][index], CallStatus="completed", SequenceNumber="2"
                    )
                    answer = f"/twilio/outbound-answer?call={uuid.uuid4().hex}"
                    dialled = call_form(sids["dial_complete"][index], DialCallStatus="completed")
                    dial = "/twilio/dial-complete?step=forward%3Adesk"
                    raw = json.dumps(transcription(conversations[index])).encode()
                    header = {HEADER: sign(raw, WEBHOOK_SECRET, int(time.time()))}
                    requests += [
                        functools.partial(post, client, "/twilio/status", status),
                        functools.partial(
                            post, client, answer, call_form(sids["outbound_answer"][index])
                        ),
                        functools.partial(post, client, dial, dialled),
                        functools.partial(
                            client.post, "/elevenlabs/webhook", content=raw, headers=header
                        ),
                    ]
                # At once, as Twilio and ElevenLabs would send them.
                with ThreadPoolExecutor(len(requests)) as pool:
                    responses = list(pool.map(lambda send: send(), requests))
                assert [response.status_code for response in responses] == [200] * len(requests)
            finally:
                down(False)
            client.portal.call(writer.drain)  # type: ignore[union-attr]
            assert writer.pending == 0

            async def stored() -> tuple[dict[str, list[str]], list[str]]:
                engine = await app.state.database.engine()
                async with engine.connect() as connection:
                    rows = await connection.execute(
                        select(calls.c.call_sid, call_events.c.kind).join(
                            call_events, call_events.c.call_id == calls.c.id
                        )
                    )
                    by_kind: dict[str, list[str]] = {}
                    for call_sid, event_kind in rows:
                        by_kind.setdefault(event_kind, []).append(call_sid)
                    hooks = await connection.execute(select(call_events.c.conversation_id))
                    return by_kind, [row[0] for row in hooks if row[0]]

            by_kind, hooked = client.portal.call(stored)  # type: ignore[union-attr]
    for name in EVENT_KINDS:
        assert sorted(by_kind[name]) == sorted(sids[name])
    assert sorted(hooked) == sorted(conversations)


EVENT_KINDS = ["status", "outbound_answer", "dial_complete"]
