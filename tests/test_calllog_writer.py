"""Inbound calls reach the call log in batches, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from starlette.testclient import TestClient

from bridge.app import create_app
from bridge.call import Answer, Call
from bridge.calllog.writer import CallLogWriter, QueueFull
from bridge.fakes import FakeElevenLabs
from bridge.storage.database import Database
from bridge.storage.tables import call_events, calls
from tests.helpers import PUBLIC, fresh_sqlite, make_settings, twilio_form, twilio_signature


@pytest.fixture
async def writer(database_url: str) -> AsyncIterator[CallLogWriter]:
    database = Database(database_url)
    yield CallLogWriter(database)
    await database.dispose()


def answer(outcome: str = "connected") -> Answer:
    return Answer(
        "<Response/>",
        rule="default",
        action="agent",
        outcome=outcome,
        agent_id="agent_a",
        upstream_status=200,
        upstream_latency=0.15,
        attempts=1,
        conversation_id="conv_x",
    )


@pytest.mark.anyio
async def test_a_batch_is_written_in_one_flush(writer: CallLogWriter) -> None:
    sids = ["CA" + uuid.uuid4().hex for _ in range(50)]
    for sid in sids:
        writer.add(
            Call(call_sid=sid, from_number="+14155550123", to_number="+14155550100"), answer()
        )
    # A retried webhook for the first call: one record, two events.
    writer.add(
        Call(call_sid=sids[0], from_number="+14155550123", to_number="+14155550100"),
        answer("fallback"),
    )
    assert await writer.flush() == 51
    engine = await writer.database.engine()
    async with engine.connect() as connection:
        stored = (
            await connection.execute(
                select(func.count()).select_from(calls).where(calls.c.call_sid.in_(sids))
            )
        ).scalar()
        first = (await connection.execute(select(calls).where(calls.c.call_sid == sids[0]))).one()
        first_events = (
            (
                await connection.execute(
                    # The answers' events; a fallback is also a `fallback` event of its own.
                    select(call_events.c.data).where(
                        call_events.c.call_id == first.id, call_events.c.kind != "fallback"
                    )
                )
            )
            .scalars()
            .all()
        )
    assert stored == 50
    assert (first.direction, first.outcome, first.agent_id) == ("inbound", "connected", "agent_a")
    assert sorted(event["outcome"] for event in first_events) == ["connected", "fallback"]
    assert await writer.flush() == 0


def test_calls_answered_by_the_server_are_in_the_log_after_shutdown(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'served.sqlite3'}"
    fresh_sqlite(url)
    fake = FakeElevenLabs(api_key="test-elevenlabs-key")
    app = create_app(make_settings(database_url=url), transport=httpx.ASGITransport(app=fake.app))
    sids = ["CA" + uuid.uuid4().hex for _ in range(3)]
    with TestClient(app) as client:
        for sid in sids:
            form = twilio_form(CallSid=sid)
            response = client.post(
                "/twilio/inbound",
                data=form,
                headers={"X-Twilio-Signature": twilio_signature(f"{PUBLIC}/twilio/inbound", form)},
            )
            assert response.status_code == 200
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT call_sid, rule, outcome, conversation_id FROM calls")
        ).all()
    engine.dispose()
    assert sorted(row.call_sid for row in rows) == sorted(sids)
    assert {row.outcome for row in rows} == {"connected"}
    assert all(row.conversation_id.startswith("conv_") for row in rows)


@pytest.mark.anyio
async def test_a_status_callback_before_the_batch_does_not_lose_the_answer(
    writer: CallLogWriter,
) -> None:
    from bridge.calllog.records import CallRecords

    # A rejected call ends at once: Twilio's "completed" can beat the batch.
    sid = "CA" + uuid.uuid4().hex
    records = CallRecords(writer.database)
    assert await records.record_status(
        {"CallSid": sid, "CallStatus": "completed", "SequenceNumber": "0", "CallDuration": "0"}
    )
    writer.add(Call(call_sid=sid, from_number="+14155550123", to_number="+14155550100"), answer())
    assert await writer.flush() == 1
    engine = await writer.database.engine()
    async with engine.connect() as connection:
        stored = (await connection.execute(select(calls).where(calls.c.call_sid == sid))).all()
    assert len(stored) == 1
    record = stored[0]
    assert (record.status, record.rule, record.action, record.outcome) == (
        "completed",
        "default",
        "agent",
        "connected",
    )
    assert (record.agent_id, record.from_number) == ("agent_a", "+14155550123")


def inbound_call(sid: str) -> Call:
    return Call(call_sid=sid, from_number="+14155550123", to_number="+14155550100")


async def stored_counts(writer: CallLogWriter, sids: list[str]) -> tuple[int, int]:
    engine = await writer.database.engine()
    async with engine.connect() as connection:
        records = (
            await connection.execute(
                select(func.count()).select_from(calls).where(calls.c.call_sid.in_(sids))
            )
        ).scalar()
        events = (
            await connection.execute(
                select(func.count())
                .select_from(call_events.join(calls, call_events.c.call_id == calls.c.id))
                .where(calls.c.call_sid.in_(sids))
            )
        ).scalar()
    return int(records or 0), int(events or 0)


@pytest.mark.anyio
async def test_records_wait_for_a_database_that_is_down(
    writer: CallLogWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    failures: list[None] = []
    writer.on_failure = lambda: failures.append(None)
    writer.on_dropped = lambda count: pytest.fail("nothing is dropped")
    sids = ["CA" + uuid.uuid4().hex for _ in range(3)]
    writer.add(inbound_call(sids[0]), answer())
    writer.add(inbound_call(sids[1]), answer())
    engine = writer.database.engine

    async def unreachable() -> object:
        raise ConnectionRefusedError("database is down")

    monkeypatch.setattr(writer.database, "engine", unreachable)
    with pytest.raises(ConnectionRefusedError):
        await writer.flush()
    writer.add(inbound_call(sids[2]), answer())  # meanwhile, another call
    assert len(failures) == 1
    monkeypatch.setattr(writer.database, "engine", engine)
    assert await writer.flush() == 3
    assert await stored_counts(writer, sids) == (3, 3)


@pytest.mark.anyio
async def test_a_write_repeated_after_it_went_through_changes_nothing(
    writer: CallLogWriter,
) -> None:
    sid = "CA" + uuid.uuid4().hex
    writer.add(inbound_call(sid), answer())
    entries = list(writer._pending)
    assert await writer.flush() == 1
    # The commit reached the database but its acknowledgement did not: written again.
    await writer._write(entries)
    assert await stored_counts(writer, [sid]) == (1, 1)


def test_a_full_queue_gives_up_new_records(tmp_path: Path) -> None:
    dropped: list[int] = []
    writer = CallLogWriter(
        Database(f"sqlite:///{tmp_path / 'x.sqlite3'}"), max_pending=3, on_dropped=dropped.append
    )
    for i in range(5):
        writer.add(inbound_call(f"CA{i:032x}"), answer())
    assert [entry.call.call_sid for entry in writer._pending] == [f"CA{i:032x}" for i in range(3)]
    assert dropped == [1, 1]


def test_a_writer_backing_off_is_not_woken_by_new_calls(tmp_path: Path) -> None:
    writer = CallLogWriter(Database(f"sqlite:///{tmp_path / 'x.sqlite3'}"), batch=2)
    writer._backing_off = True
    for i in range(5):
        writer.add(inbound_call(f"CA{i:032x}"), answer())
    assert not writer._wake.is_set()
    writer._backing_off = False
    writer.add(inbound_call("CA" + "f" * 32), answer())
    assert writer._wake.is_set()


@pytest.mark.anyio
async def test_batches_are_written_a_chunk_at_a_time(
    writer: CallLogWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer.batch = 4
    sids = ["CA" + uuid.uuid4().hex for _ in range(10)]
    for sid in sids:
        writer.add(inbound_call(sid), answer())
    real_write = writer._write
    attempts: list[int] = []

    async def down_after_the_first_chunk(entries: list[object]) -> None:
        attempts.append(len(entries))
        if len(attempts) > 1:
            raise ConnectionRefusedError("database is down")
        await real_write(entries)  # type: ignore[arg-type]

    monkeypatch.setattr(writer, "_write", down_after_the_first_chunk)
    with pytest.raises(ConnectionRefusedError):
        await writer.flush()
    # The first chunk is stored and gone from the queue; the rest waits, in order.
    assert attempts == [4, 4]
    assert [entry.call.call_sid for entry in writer._pending] == sids[4:]
    monkeypatch.setattr(writer, "_write", real_write)
    assert await writer.flush() == 6
    assert await stored_counts(writer, sids) == (10, 10)


@pytest.mark.anyio
async def test_a_record_the_database_refuses_does_not_hold_up_the_others(
    writer: CallLogWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import DataError

    dropped: list[int] = []
    writer.on_dropped = dropped.append
    sids = ["CA" + uuid.uuid4().hex for _ in range(7)]
    for sid in sids:
        writer.add(inbound_call(sid), answer())
    poison = sids[4]
    real_write = writer._write

    async def refuse_the_poison(entries: list[Any]) -> None:
        if any(entry.call.call_sid == poison for entry in entries):
            raise DataError("INSERT ...", {}, ValueError("value too long"))
        await real_write(entries)

    monkeypatch.setattr(writer, "_write", refuse_the_poison)
    assert await writer.flush() == 6
    assert dropped == [1] and writer.pending == 0
    assert await stored_counts(writer, [sid for sid in sids if sid != poison]) == (6, 6)


@pytest.mark.anyio
async def test_long_caller_ids_are_stored_cut_to_fit(writer: CallLogWriter) -> None:
    # A Twilio Client caller: "client:" and an identity of up to 121 characters.
    sid = "CA" + uuid.uuid4().hex
    caller = "client:" + "a" * 121
    writer.add(Call(call_sid=sid, from_number=caller, to_number="+14155550100"), answer())
    assert await writer.flush() == 1
    engine = await writer.database.engine()
    async with engine.connect() as connection:
        stored = (
            await connection.execute(select(calls.c.from_number).where(calls.c.call_sid == sid))
        ).scalar_one()
    assert stored == caller[:64]


@pytest.mark.anyio
async def test_a_record_without_a_call_sid_written_twice_is_one_record(
    writer: CallLogWriter,
) -> None:
    writer.add(Call(call_sid="", from_number="+14155550123", to_number="+14155550100"), answer())
    entries = list(writer._pending)
    assert await writer.flush() == 1
    await writer._write(entries)
    engine = await writer.database.engine()
    async with engine.connect() as connection:
        records = (
            await connection.execute(
                select(func.count()).select_from(calls).where(calls.c.id == entries[0].token)
            )
        ).scalar()
    assert records == 1


@pytest.mark.anyio
async def test_a_caller_id_with_nul_is_stored_without_it(writer: CallLogWriter) -> None:
    # PostgreSQL refuses NUL in text (asyncpg: a plain DBAPIError); one such call must
    # neither be lost nor hold up the log.
    sids = ["CA" + uuid.uuid4().hex for _ in range(3)]
    for sid, caller in [
        (sids[0], "+1415\x005550123"),
        (sids[1] + "\x00", "+14155550123"),
        (sids[2], "+14155550123"),
    ]:
        writer.add(Call(call_sid=sid, from_number=caller, to_number="+1"), answer())
    assert await writer.flush() == 3
    engine = await writer.database.engine()
    async with engine.connect() as connection:
        stored = dict(
            (
                await connection.execute(
                    select(calls.c.call_sid, calls.c.from_number).where(calls.c.call_sid.in_(sids))
                )
            ).all()
        )
    assert stored == dict.fromkeys(sids, "+14155550123")


RECORD_ERRORS = [
    pytest.param(DBAPIError("INSERT ...", {}, Exception("invalid byte")), id="generic-dbapi"),
    pytest.param(DataError("INSERT ...", {}, ValueError("value too long")), id="data-error"),
    pytest.param(ValueError("Out of range float values are not JSON compliant"), id="value"),
    pytest.param(RecursionError("maximum recursion depth exceeded"), id="recursion"),
]


@pytest.mark.anyio
@pytest.mark.parametrize("error", RECORD_ERRORS)
async def test_a_record_that_fails_alone_is_given_up_whatever_the_error(
    writer: CallLogWriter, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    dropped: list[int] = []
    writer.on_dropped = dropped.append
    sids = ["CA" + uuid.uuid4().hex for _ in range(5)]
    for sid in sids:
        writer.add(inbound_call(sid), answer())
    real_write = writer._write

    async def refuse_the_poison(entries: list[Any]) -> None:
        if any(entry.call.call_sid == sids[2] for entry in entries):
            raise error
        await real_write(entries)

    monkeypatch.setattr(writer, "_write", refuse_the_poison)
    assert await writer.flush() == 4
    assert dropped == [1] and writer.pending == 0
    assert await stored_counts(writer, sids[:2] + sids[3:]) == (4, 4)


@pytest.mark.anyio
@pytest.mark.parametrize("error", RECORD_ERRORS)
async def test_a_write_failing_as_the_database_comes_back_is_stored_not_dropped(
    writer: CallLogWriter, error: Exception
) -> None:
    # The outage ends between a queued write's failure (an error that does not name an
    # outage: PostgreSQL refusing connections is a plain DBAPIError) and the check that
    # the database answers: the write is tried once more, and stored.
    writer.on_dropped = lambda count: pytest.fail("nothing is dropped")
    tries: list[int] = []

    async def write_as_the_outage_ends() -> None:
        tries.append(1)
        if len(tries) == 1:
            raise error

    assert writer.defer("event=status call_sid=CAx", write_as_the_outage_ends)
    assert await writer.flush() == 1
    assert len(tries) == 2 and writer.pending == 0


@pytest.mark.anyio
async def test_a_locked_or_lost_database_drops_nothing(
    writer: CallLogWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "database is locked" while a plain SELECT still works: an outage, not a record's.
    writer.on_dropped = lambda count: pytest.fail("nothing is dropped")
    writer.add(inbound_call("CA" + uuid.uuid4().hex), answer())

    async def locked(entries: list[Any]) -> None:
        raise OperationalError("INSERT ...", {}, Exception("database is locked"))

    monkeypatch.setattr(writer, "_write", locked)
    with pytest.raises(OperationalError):
        await writer.flush()
    assert writer.pending == 1


class FlakyWrite:
    """A call-log write that fails its first `failures` tries, each after `delay` s."""

    def __init__(self, failures: int, delay: float = 0.0) -> None:
        self.failures = failures
        self.delay = delay
        self.tries = 0
        self.stored = 0

    async def __call__(self) -> str:
        self.tries += 1
        await asyncio.sleep(self.delay)
        if self.tries <= self.failures:
            raise OperationalError("INSERT ...", {}, Exception("database is down"))
        self.stored += 1
        return "stored"


STORES = [
    # failures, delay, what store answers, queued after it
    pytest.param(0, 0.0, "stored", 0, id="at-once"),
    pytest.param(1, 0.0, None, 1, id="fails-then-queued"),
    pytest.param(0, 0.2, None, 0, id="slow-but-stored"),
    pytest.param(1, 0.2, None, 0, id="slow-then-fails-then-queued"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("failures", "delay", "answer", "queued"), STORES)
async def test_store_keeps_what_it_cannot_write_until_it_is_written(
    writer: CallLogWriter, failures: int, delay: float, answer: str | None, queued: int
) -> None:
    writer.store_wait = 0.05
    write = FlakyWrite(failures, delay)
    assert await writer.store("event=test", write) == answer
    assert writer.pending == queued
    await writer.drain()
    assert (write.stored, writer.pending) == (1, 0)


@pytest.mark.anyio
@pytest.mark.parametrize("delay", [0.0, 0.2], ids=["fails", "slow"])
async def test_store_with_a_full_queue_is_refused(writer: CallLogWriter, delay: float) -> None:
    dropped: list[int] = []
    writer.on_dropped = dropped.append
    writer.store_wait = 0.05
    writer.max_pending = 1
    writer.add(inbound_call("CA" + uuid.uuid4().hex), answer())
    with pytest.raises(QueueFull):
        await writer.store("event=test", FlakyWrite(1, delay))
    await writer.drain()
    assert writer.pending == 0
