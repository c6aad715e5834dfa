"""Three `callbridge worker` processes share one campaign on one PostgreSQL database,
against a fake Twilio on loopback, and one of them is killed with SIGKILL mid-run:
every recipient still reaches a final state, no number is dialled twice for one
attempt, and the campaign's rate is never exceeded in any one-second window."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from starlette.requests import Request
from starlette.responses import Response

from bridge.calllog.records import CallRecords
from bridge.campaigns.options import CampaignOptions
from bridge.campaigns.states import FINAL
from bridge.campaigns.store import NewRecipient, create_campaign
from bridge.fakes import FakeTwilio
from bridge.storage.database import Database, create_engine
from bridge.storage.tables import campaign_attempts, campaign_recipients, campaigns
from tests.helpers import (
    ACCOUNT_SID,
    API_TOKEN,
    AUTH_TOKEN,
    ELEVENLABS_KEY,
    OUR_NUMBER,
    POSTGRES_SERVER,
    PUBLIC,
    SETTINGS_VARIABLES,
    free_port,
    in_thread,
    migrate_now,
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
    """The fake Twilio, writing when each call was created (wall clock) and to whom,
    one line per call, to `log`."""

    def __init__(self, log: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.log = open(log, "a", encoding="utf-8")  # noqa: SIM115 (open while it runs)

    async def create_call(self, request: Request) -> Response:
        response = await super().create_call(request)
        if response.status_code == 201:
            call = json.loads(bytes(response.body))
            self.log.write(f"{time.time()} {call['to']} {call['sid']}\n")
            self.log.flush()
        return response


def serve_timed_twilio(log: str, port: int) -> None:
    """The fake Twilio in a process of its own, so the test's own work (its database
    queries, the status thread) never delays it and bunches the times it notes."""
    import uvicorn

    twilio = TimedTwilio(log, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
    uvicorn.run(twilio.app, host="127.0.0.1", port=port, log_level="warning")


@contextmanager
def timed_twilio(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The fake Twilio's base URL and the file it notes created calls in."""
    log, port = tmp_path / "created.txt", free_port()
    log.touch()
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from tests.test_e2e_campaign_workers import serve_timed_twilio; "
        "serve_timed_twilio(sys.argv[2], int(sys.argv[3]))"
    )
    root = str(Path(__file__).parent.parent)
    # Twilio does not share the workers' CPUs: on a busy machine (two CPUs here, other
    # work on them) the fake gets the CPU first, so the times it notes are when the
    # requests arrived, not when it got round to them.
    process = subprocess.Popen(
        [sys.executable, "-c", code, root, str(log), str(port)], preexec_fn=_first_in_line
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.1)
        yield base, log
    finally:
        process.terminate()
        process.wait(timeout=10)


def _first_in_line() -> None:
    with contextlib.suppress(OSError):  # only a privileged user may raise a priority
        os.nice(-10)


def created_calls(log: Path) -> list[tuple[float, str]]:
    rows = (line.split() for line in log.read_text(encoding="utf-8").splitlines())
    return [(float(moment), number) for moment, number, _ in rows]


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
    """Twilio's final status callbacks, stored as the bridge's web process stores them,
    for every call the fake Twilio created (whether or not the worker that placed it
    lived to log it): each ends a moment later, busy for a BUSY_FIRST number's first."""

    def __init__(self, database_url: str, created_log: Path) -> None:
        self.database_url = database_url
        self.created_log = created_log
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self.run()), daemon=True)

    async def run(self) -> None:
        database = Database(self.database_url)
        records = CallRecords(database)
        done = 0
        called: set[str] = set()
        while not self.stopping.is_set():
            lines = self.created_log.read_text(encoding="utf-8").splitlines()
            for line in lines[done:]:
                _, number, sid = line.split()
                status = "busy" if number in BUSY_FIRST - called else "completed"
                called.add(number)
                form = {
                    "CallSid": sid,
                    "CallStatus": status,
                    "To": number,
                    "Direction": "outbound-api",
                }
                await records.record_status(form)
            done = len(lines)
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


def lateness(database_url: str, created: list[tuple[float, str]]) -> str:
    """How long after their slots the calls reached the fake Twilio (percentiles)."""
    rows = query(
        database_url,
        select(
            campaign_recipients.c.phone, campaign_attempts.c.attempt, campaign_attempts.c.started_at
        ).join(campaign_attempts, campaign_attempts.c.recipient_id == campaign_recipients.c.id),
    )
    slots: dict[str, list[float]] = {}
    for number, _, slot in sorted(rows, key=lambda row: row[1]):
        slots.setdefault(number, []).append(slot.timestamp())
    seen: Counter[str] = Counter()
    delays = []
    for moment, number in sorted(created):
        if seen[number] < len(slots.get(number, [])):
            delays.append(moment - slots[number][seen[number]])
        seen[number] += 1
    delays.sort()
    if not delays:
        return "no calls"
    p50, p90, p99, most = (delays[int(q * (len(delays) - 1))] * 1000 for q in (0.5, 0.9, 0.99, 1))
    return f"slot to fake Twilio, ms: p50 {p50:.0f} p90 {p90:.0f} p99 {p99:.0f} max {most:.0f}"


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
    logs = [tmp_path / f"worker{index}.log" for index in range(WORKERS)]
    with (
        timed_twilio(tmp_path) as (twilio_base, created_log),
        Telephones(workers_database, created_log),
    ):
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
                if len(created_calls(created_log)) < RATE * 2:
                    continue  # let it run a few seconds first
                held = query(
                    workers_database,
                    select(campaign_recipients.c.id).where(
                        campaign_recipients.c.state == "dialing",
                        campaign_recipients.c.claimed_by.like(f"%:{victim.pid}:%"),
                        campaign_recipients.c.call_sid.is_(None),
                    ),
                )
            assert held, "the worker to kill never held a claim"
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
    created = created_calls(created_log)
    output = "\n".join(log.read_text() for log in logs)

    left = query(
        workers_database,
        select(
            campaign_recipients.c.state,
            campaign_recipients.c.claimed_by,
            campaign_recipients.c.attempts,
            campaign_recipients.c.next_attempt_at,
            campaign_recipients.c.claim_expires_at,
        ).where(
            campaign_recipients.c.state.in_(("pending", "scheduled", "dialing", "in_progress"))
        ),
    )
    assert state == "finished", f"{left[:10]} {output[-3000:]}"
    assert codes == [0] * (WORKERS - 1), output[-3000:]
    recipients = query(workers_database, select(campaign_recipients))
    assert len(recipients) == RECIPIENTS
    assert all(row.state in FINAL for row in recipients)
    taken_over = {row.id: row for row in recipients if row.id in {h.id for h in held}}
    assert taken_over and all(row.state in FINAL for row in taken_over.values())

    # No number dialled twice for one attempt: one created call per attempt at most.
    dialled = Counter(number for _, number in created)
    attempts = {row.phone: row.attempts for row in recipients}
    assert all(dialled[number] <= attempts[number] for number in dialled)
    keys = query(workers_database, select(campaign_attempts.c.idempotency_key))
    assert len({key for (key,) in keys}) == len(keys)
    states = Counter(row.state for row in recipients)
    assert states["completed"] >= RECIPIENTS - len(held) - 1
    for number in BUSY_FIRST:
        if attempts[number] == 2:
            assert dialled[number] <= 2

    # The rate holds across the three workers: never more than RATE in one second.
    times = [moment for moment, _ in created]
    assert busiest_second(times) <= RATE, lateness(workers_database, created)
    print(lateness(workers_database, created))
    print(
        f"\n{RECIPIENTS} recipients, {len(created)} calls, {WORKERS} workers at "
        f"{RATE}/s: finished in {took:.1f} s, one killed at {killed_at:.1f} s holding "
        f"{len(held)} claim(s); busiest second {busiest_second([t for t, _ in created])}"
        f"; states {dict(states)}"
    )
