"""What reconciliation looks at, read from the call log in batches (keyset paging by
creation time, so each call is read once per run however the run changes it):

- calls with a conversation id and no transcript, `grace` after they ended (or,
  without an end, `grace + unended` after they started);
- calls with a Twilio call SID and no final status, as long after they started;
- which of a page of conversation ids the log already knows.

A call looked at without success is looked at again after a growing pause
(`BACKOFF`, by `calls.reconcile_attempts`), and not at all after `len(BACKOFF)`
attempts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, tuple_, union
from sqlalchemy.sql.elements import ColumnElement

from bridge.calllog.records import FINAL, STATUS_RANK
from bridge.storage.database import Database
from bridge.storage.tables import call_events, calls

# Seconds to wait after the last look, by the number of looks that failed so far.
BACKOFF = (0, 60, 300, 900, 3600, 4 * 3600, 12 * 3600)
GIVE_UP_AFTER = len(BACKOFF)
FINAL_RANK = max(STATUS_RANK[name] for name in FINAL)
TRANSCRIPTION_KIND = "elevenlabs:post_call_transcription"


@dataclass(frozen=True, slots=True)
class Window:
    """Which calls a run may look at, as of `now`."""

    now: datetime
    since: datetime  # created at or after
    grace: timedelta  # after a call's end before it is looked at
    unended: timedelta  # added for a call without an end, counted from its start


@dataclass(frozen=True, slots=True)
class Candidate:
    id: str
    call_sid: str | None
    conversation_id: str | None


def due(now: datetime) -> ColumnElement[bool]:
    """Not given up on, and its pause since the last look is over."""
    return or_(
        *(
            and_(
                calls.c.reconcile_attempts == attempts,
                or_(
                    calls.c.reconciled_at.is_(None),
                    calls.c.reconciled_at <= now - timedelta(seconds=pause),
                ),
            )
            for attempts, pause in enumerate(BACKOFF)
        )
    )


def over(window: Window) -> ColumnElement[bool]:
    cutoff = window.now - window.grace
    return and_(
        calls.c.created_at >= window.since,
        or_(
            and_(calls.c.ended_at.is_not(None), calls.c.ended_at <= cutoff),
            and_(calls.c.ended_at.is_(None), calls.c.created_at <= cutoff - window.unended),
        ),
    )


def missing_transcript(window: Window) -> ColumnElement[bool]:
    return and_(
        calls.c.conversation_id.is_not(None),
        calls.c.transcript.is_(None),
        over(window),
        due(window.now),
    )


def not_final(window: Window) -> ColumnElement[bool]:
    return and_(
        calls.c.call_sid.like("CA%"),
        calls.c.status_rank < FINAL_RANK,
        over(window),
        due(window.now),
    )


async def batches(
    database: Database, where: ColumnElement[bool], *, size: int
) -> AsyncIterator[list[Candidate]]:
    """The calls `where` selects, oldest first, `size` at a time."""
    engine = await database.engine()
    after: tuple[Any, str] | None = None
    while True:
        query = select(calls.c.id, calls.c.call_sid, calls.c.conversation_id, calls.c.created_at)
        query = query.where(where)
        if after is not None:
            query = query.where(tuple_(calls.c.created_at, calls.c.id) > tuple_(*after))
        query = query.order_by(calls.c.created_at, calls.c.id).limit(size)
        async with engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        if not rows:
            return
        yield [Candidate(row.id, row.call_sid, row.conversation_id) for row in rows]
        after = (rows[-1].created_at, rows[-1].id)
        if len(rows) < size:
            return


async def agents_in_use(
    database: Database, since: datetime, *, default: str, limit: int
) -> list[str]:
    """The agents of calls since `since`, and the default agent."""
    engine = await database.engine()
    async with engine.connect() as connection:
        found = (
            await connection.execute(
                select(calls.c.agent_id)
                .where(and_(calls.c.created_at >= since, calls.c.agent_id.is_not(None)))
                .distinct()
                .order_by(calls.c.agent_id)
                .limit(limit)
            )
        ).scalars()
        agents = [str(agent) for agent in found if agent]
    if default and default not in agents:
        agents.insert(0, default)
    return agents[:limit]


async def known(database: Database, conversation_ids: Sequence[str]) -> set[str]:
    """Those of `conversation_ids` that are on a call or have a stored transcription."""
    if not conversation_ids:
        return set()
    wanted = sorted(set(conversation_ids))
    engine = await database.engine()
    async with engine.connect() as connection:
        rows = await connection.execute(
            union(
                select(calls.c.conversation_id).where(calls.c.conversation_id.in_(wanted)),
                select(call_events.c.conversation_id).where(
                    and_(
                        call_events.c.conversation_id.in_(wanted),
                        call_events.c.kind == TRANSCRIPTION_KIND,
                    )
                ),
            )
        )
        return {str(row[0]) for row in rows}
