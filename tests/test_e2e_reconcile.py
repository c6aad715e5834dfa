"""Reconciliation end to end, over real HTTP against the fakes and with real processes:
a server killed after acknowledging a call, its webhooks never delivered, restored
by `callbridge reconcile`; two reconcilers on one PostgreSQL database, the one
holding the lease killed with SIGKILL, the other taking over once it expires."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select

from bridge.fakes import FakeElevenLabs, FakeTwilio
from bridge.storage.database import Database
from bridge.storage.tables import call_events, calls, leases
from tests.helpers import (
    ACCOUNT_SID,
    API_TOKEN,
    AUTH_TOKEN,
    ELEVENLABS_KEY,
    SETTINGS_VARIABLES,
    free_port,
    fresh_sqlite,
    start_server_process,
    twilio_form,
    twilio_signature,
)

BEARER = {"authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
def fakes() -> Iterator[tuple[FakeElevenLabs, FakeTwilio, str, str]]:
    from tests.helpers import running_server

    elevenlabs = FakeElevenLabs(api_key=ELEVENLABS_KEY)
    twilio = FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
    with running_server(elevenlabs.app) as elevenlabs_url, running_server(twilio.app) as twilio_url:
        yield elevenlabs, twilio, elevenlabs_url, twilio_url


def environment(
    database_url: str, elevenlabs_url: str, twilio_url: str, **more: str
) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in SETTINGS_VARIABLES}
    env.update(
        DATABASE_URL=database_url,
        ELEVENLABS_API_KEY=ELEVENLABS_KEY,
        ELEVENLABS_API_BASE=elevenlabs_url,
        ELEVENLABS_AGENT_ID="agent_default",
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_API_BASE=twilio_url,
        BRIDGE_API_TOKEN=API_TOKEN,
        RECONCILE_INTERVAL_SECONDS="0",
        LOG_LEVEL="WARNING",
        **more,
    )
    return env


def callbridge(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_server_killed_after_acknowledging_is_restored_by_reconcile(
    tmp_path: Path, fakes: tuple[FakeElevenLabs, FakeTwilio, str, str]
) -> None:
    elevenlabs, twilio, elevenlabs_url, twilio_url = fakes
    url = fresh_sqlite(f"sqlite:///{tmp_path / 'killed.sqlite3'}")
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    env = environment(url, elevenlabs_url, twilio_url, PUBLIC_BASE_URL=public)
    command = [sys.executable, "-m", "uvicorn", "bridge.app:app", "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning"]  # fmt: skip
    server = start_server_process(command, env, public, tmp_path / "server.log")
    sids = ["CA" + uuid.uuid4().hex for _ in range(2)]
    conversations = []
    try:
        for sid in sids:
            form = twilio_form(CallSid=sid, To="+14155550100", From="+14155550123")
            answered = httpx.post(
                f"{public}/twilio/inbound",
                data=form,
                headers={"X-Twilio-Signature": twilio_signature(f"{public}/twilio/inbound", form)},
            )
            assert answered.status_code == 200
            conversations.append(
                answered.text.split('name="conversation_id" value="')[1].split('"')[0]
            )
        deadline = time.monotonic() + 20
        for sid in sids:  # acknowledged, and (batched) in the database
            while httpx.get(f"{public}/calls/{sid}", headers=BEARER).status_code != 200:
                assert time.monotonic() < deadline
                time.sleep(0.05)
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)

    # The calls end while the bridge is down: their status callbacks and post-call
    # webhooks go nowhere. ElevenLabs has one conversation (the other is gone),
    # and one more the bridge never heard of.
    for sid in sids:
        twilio.add_call(sid, status="in-progress")
        twilio.end_call(sid, "completed", duration=61)
    elevenlabs.add_conversation(
        conversations[0], call_sid=sids[0], direction="inbound", summary="Opening hours."
    )
    stranger = elevenlabs.add_conversation(call_sid="CA" + uuid.uuid4().hex)

    done = callbridge(env, "reconcile", "--grace", "0")
    assert done.returncode == 0, done.stderr
    assert (
        "recovered: 1 transcript(s), 1 unknown conversation(s), 1 final status(es)" in done.stdout
    ), done.stdout
    again = callbridge(env, "reconcile", "--grace", "0")
    assert "recovered: 0 transcript(s), 0 unknown conversation(s), 0 final status(es)" in (
        again.stdout
    ), again.stdout

    listed = callbridge(env, "calls", "--status", "completed", "--json")
    assert listed.returncode == 0, listed.stderr
    found = {call["call_sid"]: call for call in json.loads(listed.stdout)}
    assert set(found) >= set(sids)
    first = callbridge(env, "calls", "show", sids[0], "--json")
    call = json.loads(first.stdout)
    assert call["summary"] == "Opening hours."
    assert call["status"] == "completed" and call["duration"] == 42  # ElevenLabs' first
    second = json.loads(callbridge(env, "calls", "show", sids[1], "--json").stdout)
    assert (second["status"], second["duration"]) == ("completed", 61)  # Twilio's

    async def unmatched() -> int:
        database = Database(url)
        engine = await database.engine()
        async with engine.connect() as connection:
            count = (
                await connection.execute(
                    select(func.count()).where(
                        call_events.c.conversation_id == stranger["conversation_id"]
                    )
                )
            ).scalar_one()
        await database.dispose()
        return int(count)

    assert asyncio.run(unmatched()) == 1


RECONCILER = """
import asyncio, json, sys, time
from datetime import timedelta
from bridge.reconcile.run import Bounds
from bridge.reconcile.service import Service
from bridge.settings import Settings
from bridge.storage.database import Database
from bridge.transport.factory import make_transport

async def main() -> None:
    settings = Settings.from_env()
    database = Database(settings.database_url)
    service = Service(settings, database, make_transport("pooled", 10),
                      bounds=Bounds(per_second=100, concurrency=1), lease_ttl=1.5)
    while True:
        outcome = await service.run_once(since=timedelta(hours=1), grace=0)
        if outcome is not None:
            print(json.dumps({"at": time.time(), "recovered": dict(outcome.recovered)}), flush=True)
            break
        print("waiting", flush=True)
        await asyncio.sleep(0.1)
    await service.aclose()
    await database.dispose()

asyncio.run(main())
"""


def test_one_reconciler_at_a_time_and_a_killed_one_is_taken_over(
    postgres_url: str, tmp_path: Path, fakes: tuple[FakeElevenLabs, FakeTwilio, str, str]
) -> None:
    elevenlabs, _, elevenlabs_url, twilio_url = fakes
    elevenlabs.latency = 0.2  # each request: a run of 40 calls takes 8 s or more
    env = environment(postgres_url, elevenlabs_url, twilio_url)
    env.pop("TWILIO_ACCOUNT_SID")
    mine = []

    async def setup() -> None:
        database = Database(postgres_url)
        engine = await database.engine()
        async with engine.begin() as connection:
            await connection.execute(leases.delete())
            for _ in range(40):
                conversation_id = elevenlabs.add_conversation()["conversation_id"]
                mine.append(conversation_id)
                await connection.execute(
                    insert(calls).values(
                        id=uuid.uuid4().hex,
                        direction="inbound",
                        conversation_id=conversation_id,
                        created_at=func.now(),
                    )
                )
        await database.dispose()

    asyncio.run(setup())
    script = tmp_path / "reconciler.py"
    script.write_text(RECONCILER)
    logs = [(tmp_path / f"r{n}.log").open("w") for n in range(2)]
    first = subprocess.Popen(
        [sys.executable, str(script)], env=env, stdout=logs[0], stderr=subprocess.STDOUT
    )
    second = first  # until it is started
    try:
        holder = wait_for_holder(postgres_url, timeout=30)
        assert f":{first.pid}:" in holder
        second = subprocess.Popen(
            [sys.executable, str(script)], env=env, stdout=logs[1], stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while "waiting" not in read(logs[1]):  # the lease is held: no second run
            assert time.monotonic() < deadline, read(logs[1])
            time.sleep(0.05)
        assert first.poll() is None  # still running, holding the lease
        killed_at = time.time()
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        # About 20 s of upstream latency, but two Python processes share a busy CI
        # machine with the rest of the suite: the bound is generous on purpose.
        assert second.wait(timeout=180) == 0, read(logs[1])
        result = json.loads(read(logs[1]).strip().splitlines()[-1])
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.kill()
                process.wait()
        for log in logs:
            log.close()
    assert result["at"] > killed_at

    async def stored() -> tuple[int, int]:
        database = Database(postgres_url)
        engine = await database.engine()
        async with engine.connect() as connection:
            with_transcript = (
                await connection.execute(
                    select(func.count()).where(
                        calls.c.conversation_id.in_(mine), calls.c.transcript.is_not(None)
                    )
                )
            ).scalar_one()
            events = (
                await connection.execute(
                    select(func.count()).where(call_events.c.conversation_id.in_(mine))
                )
            ).scalar_one()
        await database.dispose()
        return int(with_transcript), int(events)

    assert asyncio.run(stored()) == (40, 40)  # all of them, none twice


def wait_for_holder(database_url: str, *, timeout: float) -> str:
    async def holder() -> Any:
        database = Database(database_url)
        engine = await database.engine()
        async with engine.connect() as connection:
            found = (await connection.execute(select(leases.c.holder))).scalar()
        await database.dispose()
        return found

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = asyncio.run(holder())
        if found:
            return str(found)
        time.sleep(0.05)
    raise AssertionError("nobody took the lease")


def read(log: Any) -> str:
    # Through a file of its own: the child shares the log's offset.
    return Path(log.name).read_text()
