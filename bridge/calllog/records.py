"""The call log: one record per call and an append-only list of what happened to it.

This module is the only writer of the `calls` and `call_events` tables: the API's
placed calls, Twilio's answers and status callbacks, the batched inbound answers
(bridge.calllog.writer), ElevenLabs' post-call webhooks (bridge.calllog.post_call)
and retention's clearing (bridge.calllog.retention) all write through it. That is
why it is longer than the other modules: the rules for these two tables (status
order, first answer wins, dedupe keys) are all in one place.

What it stores is first made storable (`storable`): NUL characters, which
PostgreSQL refuses in text, are removed from every string, and JSON's non-numbers
(NaN, Infinity), which it refuses in JSON, become null, so no caller-controlled value
can make a record the database refuses.

Writes are idempotent: an event with a `dedupe_key` that is already stored (a
replayed status callback or webhook) changes nothing, and a call's status never
moves backwards when Twilio's callbacks arrive out of order.
"""

from __future__ import annotations

import dataclasses
import math
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.call import Answer, Call, LookupNote
from bridge.calllog import outgoing
from bridge.calllog.audio import CallAudio
from bridge.events import outbox
from bridge.events.outbox import Outbox
from bridge.storage.database import Database
from bridge.storage.tables import (
    call_events,
    calls,
    event_deliveries,
    event_outbox,
    fitted,
    recordings,
)

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

# What an answer knows about a call that a status callback does not.
ANSWER_COLUMNS = (
    "from_number",
    "to_number",
    "rule",
    "action",
    "outcome",
    "agent_id",
    "conversation_id",
)


class Answered(Protocol):
    """An inbound answer waiting in the batched writer."""

    call: Call
    answer: Answer
    kind: str
    at: datetime
    # The record's id if it is the first of its call, and its event's dedupe key.
    token: str


@dataclass(frozen=True, slots=True)
class Stored:
    """An ElevenLabs event: whether it was a replay, and the call it was matched to."""

    duplicate: bool
    call_id: str | None


@dataclass(frozen=True, slots=True)
class CallEnd:
    """How a call ended, as ElevenLabs' post-call metadata tells it (calls placed in
    `elevenlabs` or `sip` mode get no Twilio status callbacks). The status only moves
    forward; the times, duration and numbers fill in what the call lacks, so Twilio's
    own final callback, when there is one, still has the last word."""

    status: str | None = None
    duration: int | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    from_number: str | None = None
    to_number: str | None = None


@dataclass(frozen=True, slots=True)
class Cleared:
    audio_paths: list[str]
    calls: int
    events: int
    recordings: int = 0
    outgoing_events: int = 0


class CallRecords:
    """`events` (EVENTS_WEBHOOK_URL set) makes the writes that end a call, and its
    fallback, transfer, voicemail and analysis, also write an outgoing event in the
    same transaction (bridge.calllog.outgoing says what each carries)."""

    def __init__(
        self,
        database: Database,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        events: Outbox | None = None,
    ) -> None:
        self.database = database
        self.now = now
        self.events = events

    async def record_answer(
        self,
        call: Call,
        answer: Answer,
        *,
        kind: str,
        dedupe_key: str | None = None,
        later_step: bool = False,
    ) -> None:
        """What the bridge answered a voice webhook with (inbound or outbound answer).
        `dedupe_key` makes writing it again (a retry) change nothing. A `later_step`
        (after a Dial) is only an event: the call keeps what its rule chose, and only
        columns still empty are filled in."""
        call, answer = storable_call(call), storable_answer(answer)
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
            fresh = await self._event(
                connection, call_id, kind, answer_event_data(answer), dedupe_key=dedupe_key
            )
            values: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
            if later_step:
                values = {k: func.coalesce(calls.c[k], v) for k, v in values.items()}
            if fresh and values:
                await connection.execute(update(calls).where(calls.c.id == call_id).values(values))

    async def record_step(
        self,
        call_sid: str | None,
        kind: str,
        data: Mapping[str, Any],
        *,
        dedupe_key: str,
        direction: str = "inbound",
    ) -> bool:
        """A step of a call (a transfer, a dial result, a voicemail, a fallback, a
        machine-detection result) as an event on it, once per `dedupe_key`; the call's
        columns are left as they are. False when it was a replay."""
        call_sid, dedupe_key = storable(call_sid), storable(dedupe_key)
        stored: dict[str, Any] = storable(dict(data))
        engine = await self.database.engine()
        async with engine.begin() as connection:
            call_id = await self._call_id(
                connection, call_sid, direction=direction, from_number=None, to_number=None
            )
            fresh = await self._event(connection, call_id, kind, stored, dedupe_key=dedupe_key)
            emitted = fresh and await self._step_event(
                connection, call_id, kind, stored, dedupe_key
            )
        if emitted:
            outbox.notify()
        return fresh

    async def record_placed(
        self, placed: Mapping[str, Any], *, idempotency_key: str | None
    ) -> None:
        """An outbound call the API placed (201 body of POST /calls)."""
        placed = storable(dict(placed))
        idempotency_key = storable(idempotency_key)
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

    async def record_not_placed(
        self,
        *,
        to: str,
        mode: str,
        agent_id: str | None,
        status: int,
        reason: str,
    ) -> bool:
        """An outbound call the API could not place (definitely): only a `call.failed`
        event, as no call exists. False when no event was written."""
        if self.events is None or not self.events.wants(outgoing.FAILED):
            return False
        data = storable(
            {
                "call_id": None,
                "call_sid": None,
                "direction": "outbound",
                "to": to,
                "mode": mode,
                "agent_id": agent_id,
                "status": "not-placed",
                "error": reason,
                "http_status": status,
            }
        )
        engine = await self.database.engine()
        async with engine.begin() as connection:
            found = await self.events.enqueue(
                connection, outgoing.FAILED, data, dedupe_key=f"not_placed:{secrets.token_hex(16)}"
            )
        outbox.notify()
        return found is not None

    async def record_status(
        self,
        form: Mapping[str, str],
        *,
        source: str | None = None,
        ended_at: datetime | None = None,
    ) -> bool:
        """A Twilio status callback. False when it was a duplicate (nothing changed).

        `source` names another way the status was learnt (`"reconcile"`: Twilio's call
        resource fetched later); such a status is stored once per status, with the end
        time `ended_at` Twilio reported, and like a callback it never moves back."""
        form = storable(dict(form))
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
                    "source": source,
                },
                dedupe_key=f"status:{call_sid}:{source or sequence}:{status}",
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
                values["ended_at"] = ended_at or now
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
            emitted = status in FINAL and await self._final_event(connection, call_id)
        if emitted:
            outbox.notify()
        return True

    async def record_answers(self, entries: Sequence[Answered]) -> None:
        """A batch of inbound answers in one transaction; writing it twice writes it once."""
        engine = await self.database.engine()
        rows = [storable(_answered_row(entry)) for entry in entries]
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        # One row per call: a retried webhook in the same batch adds only an event.
        unique = {row["call_sid"]: row for row in reversed(rows) if row["call_sid"]}
        # In key order: two processes upserting overlapping calls then lock rows in the
        # same order and cannot deadlock (PostgreSQL).
        with_sid = [unique[key] for key in sorted(unique)]
        without_sid = [row for row in rows if not row["call_sid"]]
        statement = dialect.insert(calls)
        async with engine.begin() as connection:
            if with_sid:
                # First answer wins. A status callback may have created the record
                # before this batch (a rejected call ends at once): then fill in what
                # it lacks.
                await connection.execute(
                    statement.on_conflict_do_update(
                        index_elements=["call_sid"],
                        set_={
                            name: func.coalesce(calls.c[name], statement.excluded[name])
                            for name in ANSWER_COLUMNS
                        },
                    ),
                    with_sid,
                )
            if without_sid:
                await connection.execute(
                    statement.on_conflict_do_nothing(index_elements=["id"]), without_sid
                )
            ids = dict(
                (
                    await connection.execute(
                        select(calls.c.call_sid, calls.c.id).where(
                            calls.c.call_sid.in_(sorted(unique))
                        )
                    )
                ).all()
            )
            events = [
                {
                    "call_id": ids.get(row["call_sid"], row["id"]),
                    "kind": entry.kind,
                    "at": entry.at,
                    "dedupe_key": f"answer:{entry.token}",
                    "data": answer_event_data(storable_answer(entry.answer)),
                }
                for entry, row in zip(entries, rows, strict=True)
            ]
            # The lookup hook's outcome is a step before the answer it shaped.
            events[:0] = [
                {
                    "call_id": ids.get(row["call_sid"], row["id"]),
                    "kind": "lookup",
                    "at": entry.at,
                    "dedupe_key": f"lookup:{entry.token}",
                    "data": lookup_event_data(entry.answer.lookup),
                }
                for entry, row in zip(entries, rows, strict=True)
                if entry.answer.lookup is not None
            ]
            # A fallback is also a step of its own, after the answer that took it.
            events += [
                {
                    "call_id": ids.get(row["call_sid"], row["id"]),
                    "kind": "fallback",
                    "at": entry.at,
                    "dedupe_key": f"fallback:{entry.token}",
                    "data": fallback_event_data(storable_answer(entry.answer)),
                }
                for entry, row in zip(entries, rows, strict=True)
                if entry.answer.outcome == "fallback"
            ]
            await connection.execute(
                dialect.insert(call_events).on_conflict_do_nothing(index_elements=["dedupe_key"]),
                events,
            )
            emitted = False
            for event in events:
                if event["kind"] == "fallback":
                    emitted |= await self._step_event(
                        connection, event["call_id"], "fallback", event["data"], event["dedupe_key"]
                    )
        if emitted:
            outbox.notify()

    async def record_elevenlabs_event(
        self,
        *,
        kind: str,
        dedupe_key: str,
        payload: dict[str, Any],
        conversation_id: str | None,
        call_sid: str | None,
        changes: dict[str, Any],
        failure: str | None = None,
        end: CallEnd | None = None,
    ) -> Stored:
        """An ElevenLabs webhook as an event (once per `dedupe_key`), matched to its call
        by conversation id, else by call SID; `changes` go on that call. `failure`
        fails the call unless it already ended (then it is only its error); `end`
        (from the post-call metadata) completes it (`CallEnd`)."""
        dedupe_key, payload, conversation_id = (
            storable(dedupe_key),
            storable(payload),
            storable(conversation_id),
        )
        call_sid, changes, failure = storable(call_sid), storable(changes), storable(failure)
        if end is not None:
            end = dataclasses.replace(
                end,
                status=storable(end.status),
                from_number=storable(end.from_number),
                to_number=storable(end.to_number),
            )
        engine = await self.database.engine()
        async with engine.begin() as connection:
            call_id, by_sid = await _match(connection, conversation_id, call_sid)
            try:
                async with connection.begin_nested():
                    await connection.execute(
                        insert(call_events).values(
                            call_id=call_id,
                            kind=f"elevenlabs:{kind}"[:64],
                            at=self.now(),
                            dedupe_key=dedupe_key,
                            data=payload,
                            conversation_id=conversation_id[:128] if conversation_id else None,
                        )
                    )
            except IntegrityError:
                return Stored(duplicate=True, call_id=call_id)
            if call_id is None:
                return Stored(duplicate=False, call_id=None)
            changes = dict(changes)
            if by_sid and conversation_id:
                changes["conversation_id"] = conversation_id[:128]
            if failure is not None:
                changes.update(await _failed(connection, call_id, failure))
            if changes:
                await connection.execute(update(calls).where(calls.c.id == call_id).values(changes))
            if end is not None:
                await _ended(connection, call_id, end)
            emitted = False
            if failure is not None or end is not None:
                emitted |= await self._final_event(connection, call_id)
            if "transcript" in changes or "analysis" in changes:
                emitted |= await self._analyzed_event(connection, call_id)
        if emitted:
            outbox.notify()
        return Stored(duplicate=False, call_id=call_id)

    async def record_reconciled(self, call_ids: Sequence[str], *, done: bool) -> None:
        """Reconciliation looked at these calls now: `done`, or one more attempt that
        did not complete them (so a call that cannot be completed is tried less often,
        then given up on)."""
        if not call_ids:
            return
        engine = await self.database.engine()
        values: dict[str, Any] = {"reconciled_at": self.now()}
        if not done:
            values["reconcile_attempts"] = calls.c.reconcile_attempts + 1
        async with engine.begin() as connection:
            await connection.execute(
                update(calls).where(calls.c.id.in_(sorted(call_ids))).values(values)
            )

    async def audio_before(self, cutoff: datetime) -> list[str]:
        """Every stored audio a record before `cutoff` names: a call's post-call audio,
        a post-call audio event's (also of a conversation that matched no call), and a
        recording's. Object names of the audio store (bridge.audio.names), or the
        absolute file paths that calls and events kept before there was a store."""
        engine = await self.database.engine()
        async with engine.connect() as connection:
            found = {
                str(name)
                for (name,) in await connection.execute(
                    select(calls.c.audio_path).where(
                        and_(calls.c.created_at < cutoff, calls.c.audio_path.is_not(None))
                    )
                )
            }
            found.update(
                str(name)
                for (name,) in await connection.execute(
                    select(recordings.c.audio_name).where(
                        and_(recordings.c.created_at < cutoff, recordings.c.audio_name.is_not(None))
                    )
                )
            )
            events = await connection.execute(
                select(call_events.c.data).where(
                    and_(
                        call_events.c.at < cutoff,
                        call_events.c.kind == "elevenlabs:post_call_audio",
                    )
                )
            )
            for (data,) in events:
                name = _audio_name(data)
                if name:
                    found.add(name)
        return sorted(found)

    async def clear_personal_data(self, cutoff: datetime, *, events_become: Any) -> Cleared:
        """Before `cutoff`: transcripts, analyses, summaries and audio names cleared (of
        calls, and of recordings with their transcriptions), and ElevenLabs event bodies
        replaced with `events_become`. The audio itself is the caller's to delete
        (`audio_before`), first."""
        engine = await self.database.engine()
        old = calls.c.created_at < cutoff
        has_personal_data = (
            calls.c.transcript.is_not(None)
            | calls.c.analysis.is_not(None)
            | calls.c.summary.is_not(None)
            | calls.c.audio_path.is_not(None)
        )
        async with engine.begin() as connection:
            audio = [
                path
                for (path,) in await connection.execute(
                    select(calls.c.audio_path).where(and_(old, calls.c.audio_path.is_not(None)))
                )
            ]
            cleared = await connection.execute(
                update(calls)
                .where(and_(old, has_personal_data))
                .values(
                    transcript=None,
                    analysis=None,
                    summary=None,
                    post_call_metadata=None,
                    audio_path=None,
                )
            )
            recorded = await connection.execute(
                update(recordings)
                .where(
                    and_(
                        recordings.c.created_at < cutoff,
                        recordings.c.audio_name.is_not(None)
                        | recordings.c.transcription.is_not(None),
                    )
                )
                .values(audio_name=None, transcription=None)
            )
            emptied = await connection.execute(
                update(call_events)
                .where(and_(call_events.c.at < cutoff, call_events.c.kind.like("elevenlabs:%")))
                .values(data=events_become)
            )
            # Outgoing events carry transcripts too; older than the cutoff they are long
            # past their 24 hours of retries: deleted with their deliveries.
            old_events = select(event_outbox.c.id).where(event_outbox.c.created_at < cutoff)
            await connection.execute(
                delete(event_deliveries).where(event_deliveries.c.event_id.in_(old_events))
            )
            outgoing_deleted = await connection.execute(
                delete(event_outbox).where(event_outbox.c.created_at < cutoff)
            )
        return Cleared(
            audio_paths=audio,
            calls=cleared.rowcount,
            events=emptied.rowcount,
            recordings=recorded.rowcount,
            outgoing_events=outgoing_deleted.rowcount,
        )

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
        if not call_sid:
            await connection.execute(insert(calls).values(fitted(calls, values)))
            return call_id
        # ON CONFLICT rather than a savepoint: two statements fewer on every new call.
        statement = _dialect(connection).insert(calls).values(fitted(calls, values))
        created = await connection.execute(
            statement.on_conflict_do_nothing(index_elements=["call_sid"])
        )
        if not created.rowcount:
            # Another request recorded the same call just now.
            found = (
                await connection.execute(select(calls.c.id).where(calls.c.call_sid == call_sid))
            ).scalar_one()
            return str(found)
        return call_id

    async def _final_event(self, connection: AsyncConnection, call_id: str) -> bool:
        """`call.completed` or `call.failed` once per call, when its status is final."""
        if self.events is None:
            return False
        row = await outgoing.call_row(connection, call_id)
        if row is None or row.status not in FINAL:
            return False
        event_type = outgoing.final_type(row.status)
        if not self.events.wants(event_type):
            return False
        data = await outgoing.final_record(connection, row, self.events.base_url)
        found = await self.events.enqueue(
            connection, event_type, data, dedupe_key=f"final:{call_id}", call_id=call_id
        )
        return found is not None

    async def _analyzed_event(self, connection: AsyncConnection, call_id: str) -> bool:
        """`call.analyzed` once per call, when its transcript or analysis is stored."""
        if self.events is None or not self.events.wants(outgoing.ANALYZED):
            return False
        row = await outgoing.call_row(connection, call_id)
        if row is None:
            return False
        data = await outgoing.final_record(connection, row, self.events.base_url)
        found = await self.events.enqueue(
            connection, outgoing.ANALYZED, data, dedupe_key=f"analyzed:{call_id}", call_id=call_id
        )
        return found is not None

    async def _step_event(
        self,
        connection: AsyncConnection,
        call_id: str,
        kind: str,
        data: dict[str, Any],
        dedupe_key: str | None = None,
    ) -> bool:
        """The event of a step: a fallback, a transfer, a voicemail (once stored, or
        given up on)."""
        if self.events is None:
            return False
        event_type = _STEP_EVENTS.get(kind)
        if event_type is None or not self.events.wants(event_type):
            return False
        if kind == "voicemail" and data.get("status") not in ("stored", "failed"):
            return False
        row = await outgoing.call_row(connection, call_id)
        if row is None:
            return False
        payload: dict[str, Any] = {**outgoing.identity(row), **_step_data(kind, data)}
        if kind == "voicemail":
            audio = data.get("audio")
            payload["audio"] = (
                outgoing.audio_link(
                    row,
                    CallAudio(
                        "voicemail",
                        str(audio["name"]),
                        audio.get("bytes"),
                        audio.get("sha256"),
                        data.get("duration"),
                    ),
                    self.events.base_url,
                )
                if isinstance(audio, dict) and audio.get("name")
                else None
            )
            key = f"voicemail:{data.get('recording_sid') or dedupe_key}"
        else:
            key = f"{kind}:{dedupe_key or secrets.token_hex(16)}"
        found = await self.events.enqueue(
            connection, event_type, payload, dedupe_key=key, call_id=call_id
        )
        return found is not None

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
        statement = _dialect(connection).insert(call_events).values(values)
        added = await connection.execute(
            statement.on_conflict_do_nothing(index_elements=["dedupe_key"])
        )
        return bool(added.rowcount)  # 0: a replay


def _dialect(connection: AsyncConnection) -> Any:
    """The dialect module whose `insert` has ON CONFLICT (both databases have it)."""
    return postgresql if connection.dialect.name == "postgresql" else sqlite


_STEP_EVENTS = {
    "fallback": outgoing.FALLBACK,
    "transfer": outgoing.TRANSFERRED,
    "voicemail": outgoing.VOICEMAIL,
}


def _step_data(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    keep: tuple[str, ...]
    if kind == "voicemail":
        keep = ("recording_sid", "status", "duration", "error")
    else:
        keep = tuple(key for key in data if key != "audio")
    return {key: data.get(key) for key in keep if data.get(key) is not None}


async def _match(
    connection: AsyncConnection, conversation_id: str | None, call_sid: str | None
) -> tuple[str | None, bool]:
    """(the call's id or None, whether it was found by call SID)."""
    if conversation_id:
        found = (
            await connection.execute(
                select(calls.c.id)
                .where(calls.c.conversation_id == conversation_id)
                .order_by(calls.c.created_at.desc())
                .limit(1)
            )
        ).scalar()
        if found is not None:
            return str(found), False
    if call_sid:
        found = (
            await connection.execute(
                select(calls.c.id)
                .where(or_(calls.c.call_sid == call_sid, calls.c.sip_call_id == call_sid))
                .limit(1)
            )
        ).scalar()
        if found is not None:
            return str(found), True
    return None, False


async def _failed(connection: AsyncConnection, call_id: str, reason: str) -> dict[str, Any]:
    row = (
        await connection.execute(select(calls.c.status, calls.c.error).where(calls.c.id == call_id))
    ).one()
    changes: dict[str, Any] = {}
    if row.status not in FINAL:
        changes.update(status="failed", status_rank=STATUS_RANK["failed"], error=reason)
    elif row.error is None:
        changes["error"] = reason
    return changes


async def _ended(connection: AsyncConnection, call_id: str, end: CallEnd) -> None:
    this_call = calls.c.id == call_id
    rank = STATUS_RANK.get(end.status or "", 0)
    if rank:
        # Forward only, in one statement (a status callback may be stored right now).
        await connection.execute(
            update(calls)
            .where(this_call & (calls.c.status_rank < rank))
            .values(status=end.status, status_rank=rank)
        )
    filled = fitted(
        calls,
        {
            "duration": end.duration,
            "answered_at": end.answered_at,
            "ended_at": end.ended_at,
            "from_number": end.from_number,
            "to_number": end.to_number,
        },
    )
    values = {
        name: func.coalesce(calls.c[name], value)
        for name, value in filled.items()
        if value is not None
    }
    if values:
        await connection.execute(update(calls).where(this_call).values(values))


def _audio_name(data: Any) -> str | None:
    """The audio a stored post-call audio event names: `data.full_audio.name` (an
    object of the audio store), or `.path` (a file, before there was a store)."""
    inner = data.get("data") if isinstance(data, dict) else None
    audio = inner.get("full_audio") if isinstance(inner, dict) else None
    if not isinstance(audio, dict):
        return None
    name = audio.get("name") or audio.get("path")
    return name if isinstance(name, str) and name else None


def _answered_row(entry: Answered) -> dict[str, Any]:
    call, answer = entry.call, entry.answer
    return fitted(
        calls,
        {
            "id": entry.token,
            "call_sid": call.call_sid or None,
            "direction": "inbound",
            "from_number": call.from_number,
            "to_number": call.to_number,
            "rule": answer.rule,
            "action": answer.action,
            "outcome": answer.outcome,
            "agent_id": answer.agent_id,
            "conversation_id": answer.conversation_id,
            "status_rank": 0,
            "created_at": entry.at,
        },
    )


def storable(value: Any) -> Any:
    """`value` as the database takes it: NUL removed from every string (keys too),
    lone surrogates replaced by U+FFFD, non-finite floats as None, in any nesting of
    dicts, lists and tuples."""
    if isinstance(value, str):
        return _storable_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable(item) for item in value]
    return value


# NUL (PostgreSQL refuses it in text) and lone surrogates (a JSON "\\udc80" escape:
# no encoding can write them, so the record could never be served back as JSON).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _storable_text(value: str) -> str:
    if value.isascii():
        return value.replace("\x00", "") if "\x00" in value else value
    return _UNSTORABLE.sub(lambda found: "" if found.group() == "\x00" else "\ufffd", value)


def storable_call(call: Call) -> Call:
    return dataclasses.replace(
        call,
        call_sid=storable(call.call_sid),
        from_number=storable(call.from_number),
        to_number=storable(call.to_number),
    )


def storable_answer(answer: Answer) -> Answer:
    return dataclasses.replace(
        answer,
        rule=storable(answer.rule),
        reason=storable(answer.reason),
        agent_id=storable(answer.agent_id),
        conversation_id=storable(answer.conversation_id),
        upstream_latency=storable(answer.upstream_latency),
    )


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


def lookup_event_data(note: LookupNote) -> dict[str, Any]:
    """A `lookup` event: its result, time and the names of what it changed (no values)."""
    data: dict[str, Any] = {"result": note.result, "ms": round(note.latency * 1000, 1)}
    if note.status is not None:
        data["status"] = note.status
    if note.changed:
        data["changed"] = list(note.changed)
    return data


def fallback_event_data(answer: Answer) -> dict[str, Any]:
    """A `fallback` event: the action that fell back and why (None values left out)."""
    data = {"action": answer.action, "reason": answer.reason}
    return {key: value for key, value in data.items() if value is not None}
