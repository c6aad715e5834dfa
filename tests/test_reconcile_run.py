"""bridge.reconcile.run on SQLite and PostgreSQL against the fake upstreams (in
process): transcripts, unknown conversations and final statuses recovered once,
bounds, backoff, upstream faults left for the next run.

Each test lives at a time of its own (`World.base`, far from the real clock and from
each other), so calls other tests left in the shared PostgreSQL database are outside
its window."""

from __future__ import annotations

import json
import logging
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select

from bridge.audio.files import FileAudioStore
from bridge.calllog import post_call
from bridge.metrics import Metrics
from bridge.reconcile import Bounds, Outcome, Reconciler
from bridge.reconcile.candidates import GIVE_UP_AFTER
from bridge.reconcile.conversations import Conversations
from bridge.reconcile.twilio_calls import TwilioCalls
from bridge.reconcile.upstream import Pacer
from bridge.secret import Secret
from bridge.storage.database import Database
from bridge.storage.tables import call_events, calls
from tests.helpers import ACCOUNT_SID, AUTH_TOKEN, ELEVENLABS_KEY, Upstreams

pytestmark = pytest.mark.anyio
AGENT = "agent_default"
NO_AUDIO = FileAudioStore(Path("no-audio-in-a-transcription"))


@dataclass
class World:
    database: Database
    upstreams: Upstreams
    base: datetime
    clock: list[datetime] = field(default_factory=list)
    timeout: float = 5.0

    def now(self) -> datetime:
        return self.clock[-1] if self.clock else self.base

    def reconciler(self, **changes: Any) -> Reconciler:
        pacer = Pacer(0)
        options: dict[str, Any] = {
            "conversations": Conversations(
                api_key=Secret(ELEVENLABS_KEY),
                base_url="http://elevenlabs.test",
                transport=self.upstreams.transport,
                pacer=pacer,
                timeout=self.timeout,
            ),
            "twilio": TwilioCalls(
                account_sid=ACCOUNT_SID,
                auth_token=Secret(AUTH_TOKEN),
                base_url="http://twilio.test",
                transport=self.upstreams.transport,
                pacer=pacer,
                timeout=self.timeout,
            ),
            "default_agent_id": AGENT,
            "now": self.now,
        }
        options.update(changes)
        return Reconciler(self.database, **options)

    async def run(self, grace: float = 300, hours: float = 6, **changes: Any) -> Outcome:
        return await self.reconciler(**changes).run(since=timedelta(hours=hours), grace=grace)

    async def add_call(self, *, age: float = 1200, ended: float | None = 900, **values: Any) -> str:
        """A call started `age` seconds before `base`, ended `ended` seconds before."""
        call_id = uuid.uuid4().hex
        row = {
            "id": call_id,
            "direction": "outbound",
            "created_at": self.base - timedelta(seconds=age),
            "ended_at": self.base - timedelta(seconds=ended) if ended is not None else None,
            "agent_id": AGENT,
            **values,
        }
        engine = await self.database.engine()
        async with engine.begin() as connection:
            await connection.execute(insert(calls).values(row))
        return call_id

    async def call(self, call_id: str) -> Any:
        engine = await self.database.engine()
        async with engine.connect() as connection:
            return (await connection.execute(select(calls).where(calls.c.id == call_id))).one()

    async def events(self, conversation_id: str) -> list[Any]:
        engine = await self.database.engine()
        async with engine.connect() as connection:
            return list(
                await connection.execute(
                    select(call_events).where(call_events.c.conversation_id == conversation_id)
                )
            )

    def conversation(self, conversation_id: str | None = None, **values: Any) -> dict[str, Any]:
        values.setdefault("start_time_unix_secs", int(self.base.timestamp()) - 1200)
        return self.upstreams.elevenlabs.add_conversation(conversation_id, **values)


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    database = Database(database_url)
    base = datetime(2200, 1, 1, tzinfo=UTC) + timedelta(hours=random.randrange(10**6))
    yield World(database, Upstreams(), base)
    await database.dispose()


async def test_missed_transcripts_are_fetched_and_stored_as_the_webhook(world: World) -> None:
    sid = "CA" + uuid.uuid4().hex
    document = world.conversation(call_sid=sid, direction="outbound")
    conversation_id = document["conversation_id"]
    call_id = await world.add_call(
        call_sid=sid, conversation_id=conversation_id, mode="elevenlabs", ended=None, age=3600
    )
    outcome = await world.run()
    assert outcome.recovered == {"transcript": 1}
    call = await world.call(call_id)
    assert call.transcript == document["transcript"]
    assert call.summary == "A short call."
    assert (call.status, call.duration) == ("completed", 42)
    assert (call.from_number, call.to_number) == ("+14155550100", "+14155550123")
    assert call.reconcile_attempts == 0 and call.reconciled_at is not None

    # The webhook, late: a replay of what is stored; nothing changes.
    payload = {"type": "post_call_transcription", "event_timestamp": 1, "data": document}
    late = await post_call.record(
        world.database,
        payload,
        json.dumps(payload).encode(),
        store=NO_AUDIO,
    )
    assert late.duplicate
    assert len(await world.events(conversation_id)) == 1

    # And again: nothing to do, nothing asked.
    asked = len(world.upstreams.elevenlabs.conversation_requests)
    again = await world.run()
    assert not again.recovered
    gets = [
        path
        for path in world.upstreams.elevenlabs.conversation_requests[asked:]
        if path.endswith(conversation_id)
    ]
    assert gets == []


async def test_a_webhook_first_then_reconciliation_changes_nothing(world: World) -> None:
    document = world.conversation()
    conversation_id = document["conversation_id"]
    call_id = await world.add_call(conversation_id=conversation_id)
    payload = {"type": "post_call_transcription", "event_timestamp": 5, "data": document}
    stored = await post_call.prepare(payload, json.dumps(payload).encode(), store=NO_AUDIO)
    await stored.store(world.reconciler().records)
    before = await world.call(call_id)
    outcome = await world.run(grace=0)
    assert not outcome.recovered
    assert await world.call(call_id) == before
    assert len(await world.events(conversation_id)) == 1


@pytest.mark.parametrize(
    ("ended", "age", "grace", "looked_at"),
    [
        (60, 120, 300, False),  # ended a minute ago: its webhook may still come
        (60, 120, 0, True),  # --grace 0: at once
        (400, 500, 300, True),
        (None, 700, 300, False),  # no end: grace + 600 s after its start
        (None, 1000, 300, True),
        (None, 5, 0, True),
    ],
)
async def test_grace(
    world: World, ended: float | None, age: float, grace: float, looked_at: bool
) -> None:
    conversation_id = world.conversation()["conversation_id"]
    await world.add_call(conversation_id=conversation_id, ended=ended, age=age)
    outcome = await world.run(grace=grace)
    assert outcome.recovered == ({"transcript": 1} if looked_at else {})


@pytest.mark.parametrize("missing", ["404", "in-progress"])
async def test_a_conversation_not_over_is_tried_with_backoff_then_given_up(
    world: World, missing: str
) -> None:
    conversation_id = f"conv_{uuid.uuid4().hex}"
    if missing == "in-progress":
        world.conversation(conversation_id, status="in-progress")
    call_id = await world.add_call(conversation_id=conversation_id)
    looks = 0
    for minutes in range(0, 60 * 24 * 2, 60):
        world.clock.append(world.base + timedelta(minutes=minutes))
        outcome = await world.run(hours=24 * 7)
        looks += outcome.checked
    call = await world.call(call_id)
    assert looks == GIVE_UP_AFTER == call.reconcile_attempts
    assert call.transcript is None


async def test_unknown_conversations_are_recorded_and_matched_by_call_sid(world: World) -> None:
    sid = "CA" + uuid.uuid4().hex
    matched = world.conversation(call_sid=sid)["conversation_id"]
    call_id = await world.add_call(call_sid=sid, mode="elevenlabs")  # no conversation id
    stranger = world.conversation(call_sid="CA" + uuid.uuid4().hex)["conversation_id"]
    known = world.conversation()["conversation_id"]
    await world.add_call(conversation_id=known, transcript=[], ended=None, age=1)
    live = world.conversation(status="in-progress")["conversation_id"]
    other_agent = world.conversation(agent_id="agent_elsewhere")["conversation_id"]
    before = world.conversation(
        start_time_unix_secs=int((world.base - timedelta(hours=7)).timestamp())
    )["conversation_id"]

    outcome = await world.run()
    assert outcome.recovered == {"conversation": 2}
    call = await world.call(call_id)
    assert call.conversation_id == matched
    assert call.transcript is not None and call.status == "completed"
    (event,) = await world.events(stranger)
    assert event.call_id is None and event.kind == "elevenlabs:post_call_transcription"
    for untouched in (known, live, other_agent, before):
        assert await world.events(untouched) == []
    requests = world.upstreams.elevenlabs.conversation_requests
    assert not any(path.endswith(f"/{known}") for path in requests)
    assert any(f"agent_id={AGENT}" in path for path in requests)
    since = int((world.base - timedelta(hours=6)).timestamp())
    assert any(f"call_start_after_unix={since}" in path for path in requests)
    assert (await world.run()).recovered == {}


async def test_conversation_pages_are_followed_and_bounded(world: World) -> None:
    for _ in range(250):
        world.conversation(status="in-progress")
    outcome = await world.run()
    assert (outcome.pages, outcome.stopped, outcome.result) == (3, None, "complete")
    outcome = await world.run(bounds=Bounds(pages=2))
    assert (outcome.pages, outcome.stopped, outcome.result) == (2, "pages", "bounded")
    cursors = [p for p in world.upstreams.elevenlabs.conversation_requests if "cursor=" in p]
    assert len(cursors) == 2 + 1 and all("page_size=100" in p for p in cursors)


@pytest.mark.parametrize(
    ("twilio_status", "ours", "final_status", "recovered"),
    [
        ("completed", "ringing", "completed", {"status": 1}),
        ("no-answer", None, "no-answer", {"status": 1}),
        ("in-progress", "ringing", "in-progress", {}),
        ("ringing", "in-progress", "in-progress", {}),  # never backwards
        (None, "ringing", "ringing", {}),  # Twilio does not know it (404)
    ],
)
async def test_a_lost_final_status_is_fetched_from_twilio(
    world: World,
    twilio_status: str | None,
    ours: str | None,
    final_status: str,
    recovered: dict[str, int],
) -> None:
    sid = "CA" + uuid.uuid4().hex
    rank = {"ringing": 2, "in-progress": 3}.get(ours or "", 0)
    call_id = await world.add_call(call_sid=sid, status=ours, status_rank=rank, ended=None)
    if twilio_status is not None:
        world.upstreams.twilio.add_call(sid, status="in-progress")
        if twilio_status in ("completed", "no-answer"):
            world.upstreams.twilio.end_call(sid, twilio_status, duration=42)
        else:
            world.upstreams.twilio.calls[sid].resource["status"] = twilio_status
    outcome = await world.run()
    assert outcome.recovered == recovered
    call = await world.call(call_id)
    assert call.status == final_status
    if recovered:
        assert call.duration == 42 and call.ended_at is not None
        assert call.reconcile_attempts == 0
        assert (await world.run(grace=0)).checked == 0  # final: never asked again
    else:
        assert call.reconcile_attempts == 1
    fetches = [r for r in world.upstreams.twilio.requests if r.method == "GET"]
    assert len(fetches) == 1 and fetches[0].path.endswith(f"/Calls/{sid}.json")


# A hung upstream (a timeout) is in test_cli_reconcile, over real HTTP: in process,
# httpx's timeouts do not apply.
@pytest.mark.parametrize("fault", ["status:500", "status:503", "status:429", "html"])
async def test_upstream_faults_leave_everything_for_the_next_run(world: World, fault: str) -> None:
    world.timeout = 0.3
    conversation_id = world.conversation()["conversation_id"]
    transcript_call = await world.add_call(conversation_id=conversation_id)
    sid = "CA" + uuid.uuid4().hex
    status_call = await world.add_call(call_sid=sid, ended=None)
    world.upstreams.twilio.add_call(sid)
    world.upstreams.twilio.end_call(sid)
    world.upstreams.elevenlabs.script = [fault]
    world.upstreams.twilio.script = [fault]
    outcome = await world.run()
    assert (outcome.faults, outcome.result, outcome.recovered) == (2, "faults", {})
    assert outcome.down == {"elevenlabs", "twilio"}
    for call_id in (transcript_call, status_call):
        call = await world.call(call_id)
        assert (call.reconcile_attempts, call.reconciled_at) == (0, None)
    outcome = await world.run()
    assert outcome.recovered == {"transcript": 1, "status": 1}


async def test_a_run_stops_at_its_time_bound(world: World) -> None:
    await world.add_call(conversation_id=world.conversation()["conversation_id"])
    outcome = await world.run(bounds=Bounds(seconds=0))
    assert (outcome.stopped, outcome.checked, outcome.result) == ("time", 0, "bounded")


async def test_a_run_stops_when_told_to(world: World) -> None:
    await world.add_call(conversation_id=world.conversation()["conversation_id"])
    outcome = await world.reconciler().run(
        since=timedelta(hours=6), grace=300, keep_going=lambda: False
    )
    assert (outcome.stopped, outcome.checked) == ("lease", 0)


async def test_without_upstreams_nothing_is_asked(world: World) -> None:
    await world.add_call(conversation_id=world.conversation()["conversation_id"])
    outcome = await world.run(conversations=None, twilio=None)
    assert (outcome.checked, outcome.result) == (0, "complete")


async def test_recovered_is_counted_and_logged_once_per_run(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = Metrics()
    for _ in range(2):
        await world.add_call(conversation_id=world.conversation()["conversation_id"])
    calls_made: list[str] = []

    async def also() -> None:
        calls_made.append("recordings")

    async def broken() -> None:
        raise RuntimeError("boom")

    with caplog.at_level(logging.INFO, logger="bridge.reconcile"):
        await world.run(metrics=metrics, also=[broken, also])
    assert calls_made == ["recordings"]
    lines = [
        r.getMessage() for r in caplog.records if r.getMessage().startswith("event=reconcile ")
    ]
    assert len(lines) == 1
    assert "recovered_transcript=2" in lines[0] and "result=complete" in lines[0]
    text, _ = metrics.exposition(None)
    assert b'callbridge_reconcile_recovered_total{kind="transcript"} 2.0' in text
    assert b'callbridge_reconcile_runs_total{result="complete"} 1.0' in text


@pytest.mark.parametrize(
    "error", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.ReadError("cut")]
)
async def test_no_answer_is_a_fault(world: World, error: Exception) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise error

    await world.add_call(conversation_id=world.conversation()["conversation_id"])
    dead = httpx.MockTransport(refuse)
    pacer = Pacer(0)
    outcome = await world.run(
        conversations=Conversations(
            api_key=Secret("k"), base_url="http://x.test", transport=dead, pacer=pacer
        ),
        twilio=None,
    )
    assert outcome.faults == 1 and not outcome.recovered


async def test_batches_are_read_on_past_the_first(world: World) -> None:
    for _ in range(5):
        await world.add_call(conversation_id=world.conversation()["conversation_id"])
    outcome = await world.run(bounds=Bounds(batch=2, concurrency=2))
    assert outcome.recovered == {"transcript": 5}


async def test_a_fault_while_listing_is_left_for_the_next_run(world: World) -> None:
    world.conversation(call_sid="CA" + uuid.uuid4().hex)
    world.upstreams.elevenlabs.script = ["status:502"]
    outcome = await world.run(twilio=None)
    assert (outcome.faults, outcome.pages, outcome.down) == (1, 0, {"elevenlabs"})
    assert (await world.run(twilio=None)).recovered == {"conversation": 1}


async def test_a_listed_conversation_not_over_when_fetched_waits(world: World) -> None:
    document = world.conversation()

    async def fetched(conversation_id: str) -> dict[str, Any]:
        return {**document, "status": "processing"}

    reconciler = world.reconciler(twilio=None)
    assert reconciler.conversations is not None
    reconciler.conversations.get = fetched  # type: ignore[method-assign]
    outcome = await reconciler.run(since=timedelta(hours=6), grace=0)
    assert (outcome.recovered, outcome.not_yet) == ({}, 1)


async def test_a_call_resource_without_a_status_is_not_final(world: World) -> None:
    sid = "CA" + uuid.uuid4().hex
    call_id = await world.add_call(call_sid=sid, ended=None)
    world.upstreams.twilio.add_call(sid)
    world.upstreams.twilio.script = ["json"]  # 200 with an object that is not a call
    outcome = await world.run(conversations=None)
    assert (outcome.recovered, outcome.not_yet) == ({}, 1)
    assert (await world.call(call_id)).status is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Wed, 02 Dec 2026 09:00:00 +0000", datetime(2026, 12, 2, 9, 0, tzinfo=UTC)),
        ("Wed, 02 Dec 2026 09:00:00", datetime(2026, 12, 2, 9, 0, tzinfo=UTC)),
        ("yesterday", None),
        ("", None),
        (None, None),
        (5, None),
    ],
)
def test_twilio_times(value: object, expected: datetime | None) -> None:
    from bridge.reconcile.run import _twilio_time

    assert _twilio_time(value) == expected
