"""The call log: one record per call and an append-only list of what happened to it.

Writes are idempotent: an event with a `dedupe_key` that is already stored (a
replayed status callback or webhook) changes nothing, and a call's status never
moves backwards when Twilio's callbacks arrive out of order.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.call import Answer, Call
from bridge.storage.database import Database
from bridge.storage.tables import call_events, calls, fitted

# Twilio's call statuses in the order a call goes through them.
STATUS_RANK = {
    "queued": 1,
    "initiated": 1,
    "ringing": 2,
    "in-progress": 3,
    "answered": 3,
    "completed": 4,
    "busy": 4,
    "failed": 4,
    "no-answer": 4,
    "canceled": 4,
}
FINAL = frozenset(name for name, rank in STATUS_RANK.items() if rank == 4)


class CallRecords:
    def __init__(
        self, database: Database, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.database = database
        self.now = now

    async def record_answer(self, call: Call, answer: Answer, *, kind: str) -> None:
        """What the bridge answered a voice webhook with (inbound or outbound answer)."""
        engine = await self.database.engine()
        fields = {
            "rule": answer.rule,
            "action": answer.action,
            "outcome": answer.outcome,
            "agent_id": answer.agent_id,
        }
        if answer.conversation_id:
            fields["conversation_id"] = answer.conversation_id
        async with engine.begin() as connection:
            call_id = await self._call_id(
                connection,
                call.call_sid,
                direction="inbound" if call.direction == "inbound" else "outbound",
                from_number=call.from_number,
                to_number=call.to_number,
            )
            await connection.execute(
                update(calls)
                .where(calls.c.id == call_id)
                .values(**{k: v for k, v in fields.items() if v is not None})
            )
            await self._event(connection, call_id, kind, answer_event_data(answer))

    async def record_placed(
        self, placed: Mapping[str, Any], *, idempotency_key: str | None
    ) -> None:
        """An outbound call the API placed (201 body of POST /calls)."""
        engine = await self.database.engine()
        async with engine.begin() as connection:
            call_id = await self._call_id(
                connection,
                placed.get("call_sid"),
                direction="outbound",
                from_number=None,
                to_number=placed.get("to"),
            )
            await connection.execute(
                update(calls)
                .where(calls.c.id == call_id)
                .values(
                    mode=placed.get("mode"),
                    agent_id=placed.get("agent_id"),
                    conversation_id=placed.get("conversation_id"),
                    sip_call_id=placed.get("sip_call_id"),
                    idempotency_key=idempotency_key,
                )
            )
            await self._event(connection, call_id, "placed", dict(placed))

    async def record_status(self, form: Mapping[str, str]) -> bool:
        """A Twilio status callback. False when it was a duplicate (nothing changed)."""
        call_sid = form.get("CallSid", "")
        status = form.get("CallStatus", "")
        if not call_sid or not status:
            return False
        sequence = _int(form.get("SequenceNumber"))
        engine = await self.database.engine()
        async with engine.begin() as connection:
            call_id = await self._call_id(
                connection,
                call_sid,
                direction="inbound" if form.get("Direction", "") == "inbound" else "outbound",
                from_number=form.get("From"),
                to_number=form.get("To"),
            )
            fresh = await self._event(
                connection,
                call_id,
                "status",
                {
                    "status": status,
                    "sequence": sequence,
                    "duration": _int(form.get("CallDuration")),
                    "answered_by": form.get("AnsweredBy") or None,
                    "timestamp": form.get("Timestamp") or None,
                },
                dedupe_key=f"status:{call_sid}:{sequence}:{status}",
            )
            if not fresh:
                return False
            rank = STATUS_RANK.get(status, 0)
            this_call = calls.c.id == call_id
            # Compare and set in one statement: another process may be storing a
            # callback of the same call right now, and the status must not go back.
            later = calls.c.status_rank < rank
            if sequence is not None:
                later = later | (
                    (calls.c.status_rank == rank)
                    & (calls.c.status_sequence.is_(None) | (calls.c.status_sequence < sequence))
                )
            await connection.execute(
                update(calls)
                .where(this_call & later)
                .values(status=status, status_rank=rank, status_sequence=sequence)
            )
            values: dict[str, Any] = {}
            now = self.now()
            if status in ("in-progress", "answered"):
                values["answered_at"] = now
            if status in FINAL:
                values["ended_at"] = now
                values["duration"] = _int(form.get("CallDuration"))
            if form.get("AnsweredBy"):
                values["answered_by"] = form["AnsweredBy"]
            values = {key: value for key, value in values.items() if value is not None}
            # Whoever created the record first may not have known the numbers.
            numbers = fitted(calls, {"from_number": form.get("From"), "to_number": form.get("To")})
            for column, number in numbers.items():
                if number:
                    values[column] = func.coalesce(calls.c[column], number)
            if values:
                await connection.execute(update(calls).where(this_call).values(values))
            return True

    async def _call_id(
        self,
        connection: AsyncConnection,
        call_sid: str | None,
        *,
        direction: str,
        from_number: str | None,
        to_number: str | None,
    ) -> str:
        """The record for a call SID, created on first sight."""
        if call_sid:
            found = (
                await connection.execute(select(calls.c.id).where(calls.c.call_sid == call_sid))
            ).scalar()
            if found is not None:
                return str(found)
        call_id = secrets.token_hex(16)
        values = {
            "id": call_id,
            "call_sid": call_sid or None,
            "direction": direction,
            "from_number": from_number,
            "to_number": to_number,
            "created_at": self.now(),
        }
        try:
            async with connection.begin_nested():
                await connection.execute(insert(calls).values(fitted(calls, values)))
        except IntegrityError:
            # Another request recorded the same call just now.
            found = (
                await connection.execute(select(calls.c.id).where(calls.c.call_sid == call_sid))
            ).scalar_one()
            return str(found)
        return call_id

    async def _event(
        self,
        connection: AsyncConnection,
        call_id: str,
        kind: str,
        data: dict[str, Any],
        *,
        dedupe_key: str | None = None,
    ) -> bool:
        values = {
            "call_id": call_id,
            "kind": kind,
            "at": self.now(),
            "dedupe_key": dedupe_key,
            "data": {key: value for key, value in data.items() if value is not None},
        }
        try:
            async with connection.begin_nested():
                await connection.execute(insert(call_events).values(values))
        except IntegrityError:
            return False  # a replay
        return True


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def answer_event_data(answer: Answer) -> dict[str, Any]:
    """What an answered webhook adds to a call's events (None values left out)."""
    data = {
        "rule": answer.rule,
        "action": answer.action,
        "outcome": answer.outcome,
        "agent_id": answer.agent_id,
        "reason": answer.reason,
        "upstream_status": answer.upstream_status,
        "upstream_ms": round(answer.upstream_latency * 1000, 1)
        if answer.upstream_latency is not None
        else None,
        "attempts": answer.attempts or None,
        "conversation_id": answer.conversation_id,
    }
    return {key: value for key, value in data.items() if value is not None}
