"""Three `callbridge worker` processes share one campaign on one PostgreSQL database,
against a fake Twilio on loopback, and one of them is killed with SIGKILL mid-run:
every recipient still reaches a final state, no number is dialled twice for one
attempt, and the campaign's rate is never exceeded in any one-second window."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text, update
from starlette.requests import Request
from starlette.responses import Response

from bridge.campaigns.options import CampaignOptions
from bridge.campaigns.states import FINAL
from bridge.campaigns.store import NewRecipient, create_campaign
from bridge.fakes import FakeTwilio
from bridge.storage.database import Database, create_engine
from bridge.storage.tables import calls, campaign_attempts, campaign_recipients, campaigns
from tests.helpers import (
    ACCOUNT_SID,
    API_TOKEN,
    AUTH_TOKEN,
    ELEVENLABS_KEY,
    OUR_NUMBER,
    POSTGRES_SERVER,
    PUBLIC,
    SETTINGS_VARIABLES,
    in_thread,
    migrate_now,
    running_server,
)

RATE = 20
RECIPIENTS = 300
WORKERS = 3
LEASE_SECONDS = 5
# Every tenth number is busy on its first attempt, and retried at once.
BUSY_FIRST = {f"+1212555{n:04d}" for n in range(1000, 1000 + RECIPIENTS, 10)}
OPTIONS = {
    "calling_hours": {
        "open": "00:00",
        "close": "23:59",
        "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
    },
    "allow_outside_legal_hours": True,
    "timezone": "UTC",
    "rate": RATE,
    "max_in_flight": 100,
    "retry": {"on": ["busy"], "attempts": 1, "delay": 0},
}


class TimedTwilio(FakeTwilio):
    """The fake Twilio, noting when each call was created (wall clock, seconds)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.created: list[tuple[float, str]] = []
        self.lock = threading.Lock()

    async def create_call(self, request: Request) -> Response:
        response = await super().create_call(request)
        if response.status_code == 201:
            to = json.loads(bytes(response.body))["to"]
            with self.lock:
                self.created.append((time.time(), to))
        return response


@pytest.fixture
def workers_database() -> Iterator[str]:
    """A PostgreSQL database of this test's own, migrated."""
    name = f"callbridge_workers_{os.getpid()}"

    async def admin(*statements: str) -> None:
        engine = create_engine(f"{POSTGRES_SERVER}/test")
        async with engine.connect() as connection:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            for statement in statements:
                await connection.execute(text(statement))
        await engine.dispose()

    in_thread(
        lambda: asyncio.run(admin(f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}"))
    )
    url = f"{POSTGRES_SERVER}/{name}"
    migrate_now(url)
    yield url
    in_thread(lambda: asyncio.run(admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")))


class Telephones:
    """Twilio's final statuses, as the bridge's web process stores them from status
    callbacks: every call placed ends a moment later, busy for a BUSY_FIRST number's
    first call. Written in bulk, so this thread leaves the fake Twilio's timing alone."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self.run()), daemon=True)

    async def run(self) -> None:
        database = Database(self.database_url)
        engine = await database.engine()
        ended: set[str] = set()
        while not self.stopping.is_set():
            async with engine.begin() as connection:
                rows = (
                    await connection.execute(
                        select(calls.c.call_sid, calls.c.to_number).where(calls.c.status_rank < 4)
                    )
                ).all()
                busy = [r.call_sid for r in rows if r.to_number in BUSY_FIRST - ended]
                ended.update(r.to_number for r in rows)
                for status, sids in (
                    ("busy", busy),
                    ("completed", [r.call_sid for r in rows if r.call_sid not in busy]),
                ):
                    if sids:
                        await connection.execute(
                            update(calls)
                            .where(calls.c.call_sid.in_(sids))
                            .values(status=status, status_rank=4)
                        )
            await asyncio.sleep(0.3)
        await database.dispose()

    def __enter__(self) -> Telephones:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)


def make_campaign(database_url: str) -> str:
    async def create() -> str:
        database = Database(database_url)
        engine = await database.engine()
        async with engine.begin() as connection:
            campaign_id = await create_campaign(
                connection,
                name="three workers",
                agent_id="agent_c",
                options=CampaignOptions.model_validate(OPTIONS),
                recipients=[
                    NewRecipient(line=n + 2, phone=f"+1212555{1000 + n:04d}", time_zones=("UTC",))
                    for n in range(RECIPIENTS)
                ],
                now=datetime.now(UTC),
            )
        await database.dispose()
        return campaign_id

    return asyncio.run(create())


def query(database_url: str, statement: Any) -> list[Any]:
    async def read() -> list[Any]:
        database = Database(database_url)
        engine = await database.engine()
        async with engine.connect() as connection:
            rows = list((await connection.execute(statement)).all())
        await database.dispose()
        return rows

    return asyncio.run(read())


def worker_environment(database_url: str, twilio_base: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in SETTINGS_VARIABLES}
    env.update(
        DATABASE_URL=database_url,
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_PHONE_NUMBER=OUR_NUMBER,
        TWILIO_API_BASE=twilio_base,
        PUBLIC_BASE_URL=PUBLIC,
        ELEVENLABS_API_KEY=ELEVENLABS_KEY,
        ELEVENLABS_AGENT_ID="agent_default",
        BRIDGE_API_TOKEN=API_TOKEN,
        LOG_LEVEL="WARNING",
    )
    return env


def wait_until_running(logs: list[Path]) -> None:
    """Until every worker has started (imports take seconds on a busy machine)."""
    deadline = time.monotonic() + 60
    while not all("running campaigns" in log.read_text() for log in logs):
        assert time.monotonic() < deadline, "the workers did not start"
        time.sleep(0.2)


def busiest_second(times: list[float]) -> int:
    """The most calls created in any window of one second (starting at a creation)."""
    times = sorted(times)
    most, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


def test_three_workers_share_a_campaign_and_survive_one_killed(
    workers_database: str, tmp_path: Path
) -> None:
    twilio = TimedTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
    logs = [tmp_path / f"worker{index}.log" for index in range(WORKERS)]
    with running_server(twilio.app) as twilio_base, Telephones(workers_database):
        env = worker_environment(workers_database, twilio_base)
        command = [sys.executable, "-m", "bridge", "worker", "--lease", str(LEASE_SECONDS)]
        processes = []
        for log in logs:
            with log.open("wb") as sink:
                processes.append(
                    subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
                )
        try:
            wait_until_running(logs)
            campaign_id = make_campaign(workers_database)
            started = time.monotonic()
            victim = processes[0]
            # Killed while it holds claims it has not dialled yet.
            held: list[Any] = []
            deadline = time.monotonic() + 30
            while not held and time.monotonic() < deadline:
                time.sleep(0.2)
                if len(twilio.created) < RATE * 2:
                    continue  # let it run a few seconds first
                held = query(
                    workers_database,
                    select(campaign_recipients.c.id).where(
                        campaign_recipients.c.state == "dialing",
                        campaign_recipients.c.claimed_by.like(f"%:{victim.pid}:%"),
                        campaign_recipients.c.call_sid.is_(None),
                    ),
                )
            assert held, f"the worker to kill never held a claim: {len(twilio.created)} created"
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            killed_at = time.monotonic() - started

            deadline = time.monotonic() + 60
            state = None
            while time.monotonic() < deadline:
                ((state,),) = query(
                    workers_database, select(campaigns.c.state).where(campaigns.c.id == campaign_id)
                )
                if state == "finished":
                    break
                time.sleep(0.5)
        finally:
            if processes[0].poll() is None:
                processes[0].kill()
            for process in processes[1:]:
                process.send_signal(signal.SIGTERM)
            codes = [process.wait(timeout=15) for process in processes[1:]]
            processes[0].wait()
    took = time.monotonic() - started
    output = "\n".join(log.read_text() for log in logs)

    assert state == "finished", output[-3000:]
    assert codes == [0] * (WORKERS - 1), output[-3000:]
    recipients = query(workers_database, select(campaign_recipients))
    assert len(recipients) == RECIPIENTS
    assert all(row.state in FINAL for row in recipients)
    taken_over = {row.id: row for row in recipients if row.id in {h.id for h in held}}
    assert taken_over and all(row.state in FINAL for row in taken_over.values())

    # No number dialled twice for one attempt: one created call per attempt at most.
    created = Counter(number for _, number in twilio.created)
    attempts = {row.phone: row.attempts for row in recipients}
    assert all(created[number] <= attempts[number] for number in created)
    keys = query(workers_database, select(campaign_attempts.c.idempotency_key))
    assert len({key for (key,) in keys}) == len(keys)
    states = Counter(row.state for row in recipients)
    assert states["completed"] >= RECIPIENTS - len(held) - 1
    for number in BUSY_FIRST:
        if attempts[number] == 2:
            assert created[number] <= 2

    # The rate holds across the three workers: never more than RATE in one second.
    assert busiest_second([moment for moment, _ in twilio.created]) <= RATE
    print(
        f"\n{RECIPIENTS} recipients, {len(twilio.created)} calls, {WORKERS} workers at "
        f"{RATE}/s: finished in {took:.1f} s, one killed at {killed_at:.1f} s holding "
        f"{len(held)} claim(s); busiest second {busiest_second([t for t, _ in twilio.created])}"
        f"; states {dict(states)}"
    )
