"""bridge.outbound.placement: what POST /calls answers, without HTTP, with fakes around it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from bridge.metrics import Metrics
from bridge.outbound.dialer import NotPlaced, OutboundRequest
from bridge.outbound.idempotency import KeyConflict, Replay
from bridge.outbound.placement import BAD_KEY, OUTCOME_UNKNOWN, Placed, Placement

CALLEE = "+14155550123"
PLACED = {"mode": "twilio", "to": CALLEE, "agent_id": "agent_a", "call_sid": "CA" + "1" * 32}


@dataclass
class Keys:
    """IdempotencyKeys, remembering what was asked of it."""

    begin_gives: Replay | KeyConflict | None = None
    finish_fails: bool = False
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def fingerprint(self, scope: str, body: Any) -> str:
        return f"{scope}:{sorted(body)}"

    async def begin(self, scope: str, key: str, fingerprint: str) -> Replay | None:
        self.calls.append(("begin", key))
        if isinstance(self.begin_gives, KeyConflict):
            raise self.begin_gives
        return self.begin_gives

    async def finish(self, scope: str, key: str, status: int, body: dict[str, Any]) -> None:
        self.calls.append(("finish", key, status, body))
        if self.finish_fails:
            raise RuntimeError("database is down")

    async def release(self, scope: str, key: str) -> None:
        self.calls.append(("release", key))


@dataclass
class Dialer:
    outcome: dict[str, Any] | BaseException = field(default_factory=lambda: dict(PLACED))
    dialled: int = 0

    def default_mode(self) -> str:
        return "twilio"

    async def place(self, call: OutboundRequest) -> dict[str, Any]:
        self.dialled += 1
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


@dataclass
class Records:
    fails: bool = False
    placed: list[tuple[dict[str, Any], str | None]] = field(default_factory=list)
    not_placed: list[dict[str, Any]] = field(default_factory=list)

    async def record_placed(self, placed: dict[str, Any], *, idempotency_key: str | None) -> None:
        if self.fails:
            raise RuntimeError("database is down")
        self.placed.append((placed, idempotency_key))

    async def record_not_placed(self, **failure: Any) -> bool:
        if self.fails:
            raise RuntimeError("database is down")
        self.not_placed.append(failure)
        return True


@dataclass
class World:
    keys: Keys = field(default_factory=Keys)
    dialer: Dialer = field(default_factory=Dialer)
    records: Records = field(default_factory=Records)
    metrics: Metrics = field(default_factory=Metrics)
    allowed: tuple[str, ...] = ("US",)

    async def place(self, key: str | None = None, to: str = CALLEE) -> Placed:
        placement = Placement(
            dialer=cast(Any, self.dialer),
            keys=cast(Any, self.keys),
            records=cast(Any, self.records),
            metrics=self.metrics,
            allowed_countries=self.allowed,
        )
        body = {"to": to}
        return await placement.place(OutboundRequest.model_validate(body), body, key)

    def counted(self, result: str, mode: str = "twilio") -> float:
        value = self.metrics.registry.get_sample_value(
            "callbridge_outbound_requests_total", {"mode": mode, "result": result}
        )
        return value or 0.0


@pytest.mark.anyio
async def test_a_placed_call_is_201_counted_logged_and_its_key_finished() -> None:
    world = World()
    placed = await world.place("key-1")
    assert placed == Placed(201, PLACED)
    assert world.keys.calls == [("begin", "key-1"), ("finish", "key-1", 201, PLACED)]
    assert world.records.placed == [(PLACED, "key-1")]
    assert world.counted("placed") == 1


@pytest.mark.anyio
async def test_a_refused_destination_is_403_and_nothing_is_dialled() -> None:
    world = World(allowed=("GB",))
    placed = await world.place("key-1")
    assert placed.status == 403
    assert placed.body["placed"] is False
    assert "not in the allowed countries" in placed.body["error"]
    assert (world.dialer.dialled, world.keys.calls) == (0, [])


@pytest.mark.anyio
@pytest.mark.parametrize("key", ["", "k" * 256])
async def test_a_key_of_the_wrong_length_is_400(key: str) -> None:
    world = World()
    assert await world.place(key) == Placed(400, {"error": BAD_KEY})
    assert world.dialer.dialled == 0


@pytest.mark.anyio
async def test_a_finished_key_replays_its_answer() -> None:
    world = World(keys=Keys(begin_gives=Replay(201, PLACED)))
    assert await world.place("key-1") == Placed(201, PLACED, replayed=True)
    assert world.dialer.dialled == 0


@pytest.mark.anyio
async def test_a_key_in_conflict_is_its_status() -> None:
    world = World(keys=Keys(begin_gives=KeyConflict(409, "still being processed")))
    assert await world.place("key-1") == Placed(409, {"error": "still being processed"})
    assert world.dialer.dialled == 0


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("definite", "key_calls", "result"),
    [
        (True, [("release", "key-1")], "not_placed"),
        (False, [("finish", "key-1", 504, None)], "unknown"),
    ],
)
async def test_a_call_not_placed_releases_the_key_only_when_it_surely_was_not(
    definite: bool, key_calls: list[tuple[Any, ...]], result: str
) -> None:
    failure = NotPlaced(504, "upstream timed out", definite=definite)
    world = World(dialer=Dialer(outcome=failure))
    placed = await world.place("key-1")
    assert placed == Placed(504, failure.body())
    expected = [(*call[:3], failure.body()) if call[0] == "finish" else call for call in key_calls]
    assert world.keys.calls[1:] == expected
    assert world.counted(result) == 1
    assert world.records.placed == []
    # Only a call surely not placed is a `call.failed` event.
    expected_events = [
        {
            "to": CALLEE,
            "mode": "twilio",
            "agent_id": None,
            "status": 504,
            "reason": "upstream timed out",
        }
    ]
    assert world.records.not_placed == (expected_events if definite else [])


@pytest.mark.anyio
async def test_a_call_event_that_cannot_be_written_leaves_the_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failure = NotPlaced(400, "invalid number")
    world = World(dialer=Dialer(outcome=failure), records=Records(fails=True))
    assert await world.place() == Placed(400, failure.body())
    assert "event=call_event_not_written" in caplog.text


@pytest.mark.anyio
async def test_a_failed_dial_is_a_json_unknown_and_keeps_the_key() -> None:
    world = World(dialer=Dialer(outcome=RuntimeError("the database went away")))
    assert await world.place("key-1") == Placed(500, OUTCOME_UNKNOWN)
    assert OUTCOME_UNKNOWN["placed"] == "unknown"
    assert world.keys.calls[-1] == ("finish", "key-1", 500, OUTCOME_UNKNOWN)
    assert world.counted("unknown") == 1


@pytest.mark.anyio
async def test_an_interrupted_dial_keeps_the_key_as_unknown() -> None:
    world = World(dialer=Dialer(outcome=asyncio.CancelledError()))
    with pytest.raises(asyncio.CancelledError):
        await world.place("key-1")
    assert world.keys.calls[-1] == ("finish", "key-1", 500, OUTCOME_UNKNOWN)
    assert world.counted("unknown") == 1


@pytest.mark.anyio
@pytest.mark.parametrize("outcome", [RuntimeError("dial failed"), dict(PLACED)])
async def test_a_key_that_cannot_be_finished_is_still_a_json_answer(
    outcome: dict[str, Any] | Exception,
) -> None:
    world = World(keys=Keys(finish_fails=True), dialer=Dialer(outcome=outcome))
    assert await world.place("key-1") == Placed(500, OUTCOME_UNKNOWN)


@pytest.mark.anyio
async def test_without_a_key_no_key_is_touched() -> None:
    world = World()
    assert (await world.place(None)).status == 201
    assert world.keys.calls == []
    assert world.records.placed == [(PLACED, None)]


@pytest.mark.anyio
async def test_a_call_log_failure_does_not_unplace_the_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = World(records=Records(fails=True))
    assert (await world.place("key-1")).status == 201
    assert "event=call_log_failed" in caplog.text
