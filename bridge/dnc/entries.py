"""Writing the do-not-call list: add (which also stops the number's waiting campaign
calls, in the same transaction), remove, and list a page at a time.

Every function takes the caller's connection, so the caller chooses the transaction:
a number is never listed without its pending retries being stopped, nor the other way.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge import phone
from bridge.dnc.numbers import LISTED
from bridge.storage.tables import campaign_recipients, do_not_call

Source = Literal["api", "cli", "console", "import", "opt_out"]
SOURCES: tuple[Source, ...] = ("api", "cli", "console", "import", "opt_out")
MAX_REASON = 500
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# Rows per INSERT / UPDATE ... IN (...): well under every driver's parameter limit.
_CHUNK = 500
# bridge.campaigns.states names these; bridge.campaigns sits above this package, so
# the words are repeated here (tests/test_dnc_entries.py holds them equal).
WAITING_STATES = ("pending", "scheduled")
DO_NOT_CALL_STATE = "do_not_call"


class BadNumber(ValueError):
    """Not a number the list can hold; the message says why (and what was meant)."""


def normalized(written: str) -> str:
    """`written` as the E.164 number it means ("+1 (415) 555-0123" is +14155550123).
    Raises BadNumber naming the rule, with a suggestion when one is clear."""
    stripped = written.strip()
    tidied = phone.without_separators(stripped)
    if phone.is_e164(tidied):
        return tidied
    if not stripped:
        raise BadNumber("no number")
    meant = phone.suggestion(stripped)
    hint = f" (did you mean {meant}?)" if meant else ""
    raise BadNumber(f"{stripped!r} is not an E.164 number like +14155550123{hint}")


def clean_reason(reason: str | None) -> str | None:
    """A reason as stored: trimmed, at most MAX_REASON characters, None when blank."""
    if reason is None:
        return None
    text = " ".join(reason.split())
    return text[:MAX_REASON] or None


@dataclass(frozen=True)
class Added:
    number: str
    # False: the number was listed already (its entry is kept as it was).
    added: bool
    reason: str | None
    source: str
    created_at: datetime
    # Waiting campaign recipients of the number, now `do_not_call`.
    stopped_recipients: list[Stopped]

    @property
    def stopped(self) -> int:
        return len(self.stopped_recipients)


async def add(
    connection: AsyncConnection,
    number: str,
    *,
    reason: str | None,
    source: Source,
    now: datetime,
) -> Added:
    """List `number` (E.164) and stop its waiting campaign calls. Adding a listed
    number again keeps its first entry, and still stops any waiting calls."""
    reason = clean_reason(reason)
    inserted = await _insert_new(connection, [(number, reason)], source=source, now=now)
    row = (
        await connection.execute(select(do_not_call).where(do_not_call.c.number == number))
    ).one()
    stopped = await stop_waiting(connection, [number], reasons={number: row.reason}, now=now)
    return Added(
        number=number,
        added=bool(inserted),
        reason=row.reason,
        source=row.source,
        created_at=row.created_at,
        stopped_recipients=stopped,
    )


@dataclass(frozen=True)
class AddedMany:
    added: int
    already_listed: int
    stopped_recipients: list[Stopped]

    @property
    def stopped(self) -> int:
        return len(self.stopped_recipients)


async def add_many(
    connection: AsyncConnection,
    entries: Sequence[tuple[str, str | None]],
    *,
    source: Source,
    now: datetime,
) -> AddedMany:
    """List each (number, reason) as `add` does, in chunks; the first entry of a number
    given twice wins."""
    unique: dict[str, str | None] = {}
    for number, reason in entries:
        unique.setdefault(number, clean_reason(reason))
    items = list(unique.items())
    added = 0
    stopped: list[Stopped] = []
    for start in range(0, len(items), _CHUNK):
        chunk = items[start : start + _CHUNK]
        added += await _insert_new(connection, chunk, source=source, now=now)
        numbers = [number for number, _ in chunk]
        rows = await connection.execute(
            select(do_not_call.c.number, do_not_call.c.reason).where(
                do_not_call.c.number.in_(numbers)
            )
        )
        reasons = {number: reason for number, reason in rows}
        stopped += await stop_waiting(connection, numbers, reasons=reasons, now=now)
    return AddedMany(added=added, already_listed=len(items) - added, stopped_recipients=stopped)


async def _insert_new(
    connection: AsyncConnection,
    entries: Sequence[tuple[str, str | None]],
    *,
    source: Source,
    now: datetime,
) -> int:
    """Insert the entries not listed yet; how many were. ON CONFLICT DO NOTHING, so two
    writers adding one number at once both succeed."""
    if not entries:
        return 0
    dialect = connection.dialect.name
    maker: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    rows = [
        {"number": number, "reason": reason, "source": source, "created_at": now}
        for number, reason in entries
    ]
    # executemany with RETURNING (SQLAlchemy's "insertmanyvalues"): one cached
    # statement; the numbers it gives back are exactly those inserted.
    statement = (
        maker(do_not_call)
        .on_conflict_do_nothing(index_elements=["number"])
        .returning(do_not_call.c.number)
    )
    result = await connection.execute(statement, rows)
    return len(result.all())


@dataclass(frozen=True)
class Stopped:
    """A campaign recipient that was waiting and is now `do_not_call`."""

    id: int
    campaign_id: str
    external_id: str | None
    phone: str
    attempts: int
    call_sid: str | None
    error: str


async def stop_waiting(
    connection: AsyncConnection,
    numbers: Sequence[str],
    *,
    reasons: dict[str, str | None],
    now: datetime,
) -> list[Stopped]:
    """Campaign recipients of `numbers` still waiting (pending, scheduled) become
    `do_not_call`, with the list's reason as their error; those that did. Recipients
    being dialled or in a call are left to finish: the worker checks the list again
    before each attempt."""
    # One UPDATE per reason and chunk: an import of 100,000 numbers, most with the
    # same reason or none, is a few hundred statements, not 100,000.
    by_error: dict[str, list[str]] = {}
    for number in numbers:
        reason = reasons.get(number)
        by_error.setdefault(f"{LISTED}: {reason}" if reason else LISTED, []).append(number)
    stopped: list[Stopped] = []
    for error, group in by_error.items():
        for start in range(0, len(group), _CHUNK):
            stopped += await _stop(connection, group[start : start + _CHUNK], error, now)
    return stopped


async def _stop(
    connection: AsyncConnection, numbers: Sequence[str], error: str, now: datetime
) -> list[Stopped]:
    rows = await connection.execute(
        update(campaign_recipients)
        .where(
            campaign_recipients.c.phone.in_(numbers),
            campaign_recipients.c.state.in_(WAITING_STATES),
        )
        .values(
            state=DO_NOT_CALL_STATE,
            error=error,
            next_attempt_at=None,
            updated_at=now,
            finished_at=now,
        )
        .returning(
            campaign_recipients.c.id,
            campaign_recipients.c.campaign_id,
            campaign_recipients.c.external_id,
            campaign_recipients.c.phone,
            campaign_recipients.c.attempts,
            campaign_recipients.c.call_sid,
        )
    )
    return [
        Stopped(
            id=row.id,
            campaign_id=row.campaign_id,
            external_id=row.external_id,
            phone=row.phone,
            attempts=row.attempts,
            call_sid=row.call_sid,
            error=error,
        )
        for row in rows
    ]


async def remove(connection: AsyncConnection, number: str) -> bool:
    """Take `number` off the list; False when it was not on it. Recipients already
    stopped stay `do_not_call` (a final state)."""
    result = await connection.execute(delete(do_not_call).where(do_not_call.c.number == number))
    return bool(result.rowcount)


async def entry(connection: AsyncConnection, number: str) -> dict[str, Any] | None:
    row = (
        await connection.execute(select(do_not_call).where(do_not_call.c.number == number))
    ).first()
    return shown(row) if row is not None else None


class BadCursor(ValueError):
    """A cursor this list did not hand out."""


@dataclass(frozen=True)
class Page:
    entries: list[dict[str, Any]]
    next_cursor: str | None


async def page(
    connection: AsyncConnection,
    *,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    source: Source | None = None,
) -> Page:
    """Entries in number order, `limit` at a time; `next_cursor` goes on after them."""
    query = select(do_not_call).order_by(do_not_call.c.number).limit(limit + 1)
    if cursor is not None:
        query = query.where(do_not_call.c.number > decode_cursor(cursor))
    if source is not None:
        query = query.where(do_not_call.c.source == source)
    rows = list(await connection.execute(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(
        entries=[shown(row) for row in rows],
        next_cursor=encode_cursor(rows[-1].number) if more else None,
    )


def shown(row: Any) -> dict[str, Any]:
    created: datetime = row.created_at
    if created.tzinfo is None:  # SQLite gives back naive UTC
        created = created.replace(tzinfo=UTC)
    return {
        "number": row.number,
        "reason": row.reason,
        "source": row.source,
        "created_at": created.isoformat(),
    }


def encode_cursor(number: str) -> str:
    return base64.urlsafe_b64encode(f"dnc:{number}".encode()).decode().rstrip("=")


def decode_cursor(value: str) -> str:
    try:
        text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadCursor("cursor is not one this API returned") from None
    if not text.startswith("dnc:"):
        raise BadCursor("cursor is not one this API returned")
    return text[4:]
