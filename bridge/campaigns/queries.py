"""Reading campaigns: the list, one campaign with its counts and ETA, its recipients
(filter by state, cursor pages, each with its attempts) and its results, with the
agent's `call_successful` from the call log. Read-only.

`secret__` variables are never shown: their values read "***".
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.campaigns.states import ACTIVE, CAMPAIGN_STATES, RECIPIENT_STATES, WAITING
from bridge.secret import is_secret_variable
from bridge.storage.database import Database
from bridge.storage.tables import calls, campaign_attempts, campaign_recipients, campaigns

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
HIDDEN = "***"
# Rows read per query while the results file is written.
RESULTS_BATCH = 1000
RESULT_COLUMNS = (
    "line",
    "id",
    "phone",
    "state",
    "attempts",
    "outcome",
    "call_sid",
    "call_successful",
    "error",
    "finished_at",
)


class BadFilter(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


def _utc(moment: datetime | None) -> datetime | None:
    # SQLite hands datetimes back without their zone; they were stored in UTC.
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso(moment: datetime | None) -> str | None:
    aware = _utc(moment)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z") if aware else None


def limit_of(params: Mapping[str, str]) -> int:
    text = params.get("limit")
    if text is None:
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise BadFilter("limit", f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(text)


def _encode(data: Any) -> str:
    text = json.dumps(data, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(value: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (binascii.Error, ValueError, TypeError):
        raise BadFilter("cursor", "cursor is not one this API returned") from None


# --- campaigns ---------------------------------------------------------------------------


async def counts_by_state(
    connection: AsyncConnection, campaign_ids: Sequence[str]
) -> dict[str, dict[str, int]]:
    """Each campaign's recipients by state, every state named (0 when none)."""
    found: dict[str, dict[str, int]] = {
        campaign_id: dict.fromkeys(RECIPIENT_STATES, 0) for campaign_id in campaign_ids
    }
    if not campaign_ids:
        return found
    rows = await connection.execute(
        select(
            campaign_recipients.c.campaign_id,
            campaign_recipients.c.state,
            func.count(),
        )
        .where(campaign_recipients.c.campaign_id.in_(list(campaign_ids)))
        .group_by(campaign_recipients.c.campaign_id, campaign_recipients.c.state)
    )
    for campaign_id, state, count in rows:
        found[campaign_id][state] = count
    return found


def eta(row: Row[Any], counts: Mapping[str, int], now: datetime) -> str | None:
    """When the last waiting recipient will have been dialled at the campaign's rate:
    a lower bound (calling hours and retries add to it); None unless it is active."""
    waiting = sum(counts.get(state, 0) for state in WAITING)
    if row.state != "active" or not waiting:
        return None
    rate = float((row.options or {}).get("rate") or 1.0)
    begins = max(now, _utc(row.next_dial_at) or now, _utc(row.start_at) or now)
    return _iso((begins + timedelta(seconds=waiting / rate)).replace(microsecond=0))


def campaign_summary(row: Row[Any], counts: Mapping[str, int], now: datetime) -> dict[str, Any]:
    remaining = sum(counts.get(state, 0) for state in WAITING | ACTIVE)
    return {
        "id": row.id,
        "name": row.name,
        "agent_id": row.agent_id,
        "mode": row.mode,
        "state": row.state,
        "recipient_count": row.recipient_count,
        "counts": dict(counts),
        "remaining": remaining,
        "created_at": _iso(row.created_at),
        "start_at": _iso(row.start_at),
        "started_at": _iso(row.started_at),
        "finished_at": _iso(row.finished_at),
        "updated_at": _iso(row.updated_at),
        "eta": eta(row, counts, now),
    }


def parse_campaign_filter(params: Mapping[str, str]) -> tuple[str | None, int, Any]:
    """(state, limit, cursor position) from a query string; BadFilter when one is wrong."""
    state = params.get("state")
    if state is not None and state not in CAMPAIGN_STATES:
        raise BadFilter("state", f"state must be one of {', '.join(CAMPAIGN_STATES)}")
    cursor = params.get("cursor")
    after = None
    if cursor is not None:
        data = _decode(cursor)
        if not (
            isinstance(data, list) and len(data) == 2 and all(isinstance(x, str) for x in data)
        ):
            raise BadFilter("cursor", "cursor is not one this API returned")
        try:
            after = (_utc(datetime.fromisoformat(data[0])), data[1])
        except ValueError:
            raise BadFilter("cursor", "cursor is not one this API returned") from None
    return state, limit_of(params), after


async def list_campaigns(
    database: Database,
    *,
    state: str | None = None,
    limit: int = DEFAULT_LIMIT,
    after: tuple[datetime, str] | None = None,
    now: datetime,
) -> Page:
    """Newest first (created_at, then id, descending)."""
    query = select(campaigns)
    if state is not None:
        query = query.where(campaigns.c.state == state)
    if after is not None:
        created_at, campaign_id = after
        query = query.where(
            (campaigns.c.created_at < created_at)
            | and_(campaigns.c.created_at == created_at, campaigns.c.id < campaign_id)
        )
    query = query.order_by(campaigns.c.created_at.desc(), campaigns.c.id.desc()).limit(limit + 1)
    engine = await database.engine()
    async with engine.connect() as connection:
        rows = list(await connection.execute(query))
        shown = rows[:limit]
        counts = await counts_by_state(connection, [row.id for row in shown])
    next_cursor = None
    if len(rows) > limit:
        last = shown[-1]
        next_cursor = _encode([_iso(last.created_at), last.id])
    return Page([campaign_summary(row, counts[row.id], now) for row in shown], next_cursor)


async def find_campaign(
    database: Database, campaign_id: str, now: datetime
) -> dict[str, Any] | None:
    """One campaign: its summary and its options; None when there is none by that id."""
    engine = await database.engine()
    async with engine.connect() as connection:
        return await campaign_in(connection, campaign_id, now)


async def campaign_in(
    connection: AsyncConnection, campaign_id: str, now: datetime
) -> dict[str, Any] | None:
    row = (await connection.execute(select(campaigns).where(campaigns.c.id == campaign_id))).first()
    if row is None:
        return None
    counts = await counts_by_state(connection, [campaign_id])
    return {**campaign_summary(row, counts[campaign_id], now), "options": row.options}


# --- recipients --------------------------------------------------------------------------


def shown_variables(variables: Mapping[str, Any] | None) -> dict[str, Any]:
    return {
        name: HIDDEN if is_secret_variable(name) else value
        for name, value in (variables or {}).items()
    }


def parse_recipient_filter(params: Mapping[str, str]) -> tuple[str | None, int, int | None]:
    """(state, limit, id to go on after); BadFilter when one is wrong."""
    state = params.get("state")
    if state is not None and state not in RECIPIENT_STATES:
        raise BadFilter("state", f"state must be one of {', '.join(RECIPIENT_STATES)}")
    cursor = params.get("cursor")
    after = None
    if cursor is not None:
        data = _decode(cursor)
        if not (isinstance(data, int) and not isinstance(data, bool) and data >= 0):
            raise BadFilter("cursor", "cursor is not one this API returned")
        after = data
    return state, limit_of(params), after


_RECIPIENT_COLUMNS = (
    campaign_recipients,
    calls.c.call_successful,
)


def _recipients_query(campaign_id: str, *columns: Any) -> Any:
    return (
        select(*(columns or _RECIPIENT_COLUMNS))
        .select_from(
            campaign_recipients.outerjoin(
                calls,
                # A Twilio call SID; for native and SIP calls possibly the conversation id.
                or_(
                    calls.c.call_sid == campaign_recipients.c.call_sid,
                    calls.c.conversation_id == campaign_recipients.c.call_sid,
                ),
            )
        )
        .where(campaign_recipients.c.campaign_id == campaign_id)
    )


def recipient_summary(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "line": row.line,
        "external_id": row.external_id,
        "phone": row.phone,
        "variables": shown_variables(row.variables),
        "time_zones": [zone for zone in (row.time_zones or "").split(",") if zone],
        "state": row.state,
        "attempts": row.attempts,
        "next_attempt_at": _iso(row.next_attempt_at),
        "call_sid": row.call_sid,
        "outcome": row.outcome,
        "call_successful": row.call_successful,
        "error": row.error,
        "updated_at": _iso(row.updated_at),
        "finished_at": _iso(row.finished_at),
    }


async def list_recipients(
    database: Database,
    campaign_id: str,
    *,
    state: str | None = None,
    limit: int = DEFAULT_LIMIT,
    after: int | None = None,
) -> Page | None:
    """In the order they were given (by id), each with its attempts; None when there
    is no such campaign."""
    query = _recipients_query(campaign_id)
    if state is not None:
        query = query.where(campaign_recipients.c.state == state)
    if after is not None:
        query = query.where(campaign_recipients.c.id > after)
    query = query.order_by(campaign_recipients.c.id).limit(limit + 1)
    engine = await database.engine()
    async with engine.connect() as connection:
        exists = await connection.scalar(
            select(campaigns.c.id).where(campaigns.c.id == campaign_id)
        )
        if exists is None:
            return None
        rows = list(await connection.execute(query))
        shown = rows[:limit]
        attempts = await _attempts(connection, [row.id for row in shown])
    items = [{**recipient_summary(row), "attempt_log": attempts.get(row.id, [])} for row in shown]
    next_cursor = _encode(shown[-1].id) if len(rows) > limit else None
    return Page(items, next_cursor)


async def _attempts(
    connection: AsyncConnection, recipient_ids: Sequence[int]
) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {}
    if not recipient_ids:
        return found
    rows = await connection.execute(
        select(campaign_attempts)
        .where(campaign_attempts.c.recipient_id.in_(list(recipient_ids)))
        .order_by(campaign_attempts.c.recipient_id, campaign_attempts.c.attempt)
    )
    for row in rows:
        found.setdefault(row.recipient_id, []).append(
            {
                "attempt": row.attempt,
                "call_sid": row.call_sid,
                "outcome": row.outcome,
                "error": row.error,
                "started_at": _iso(row.started_at),
                "finished_at": _iso(row.finished_at),
            }
        )
    return found


# --- results -----------------------------------------------------------------------------


def csv_cell(value: object) -> str:
    """A cell a spreadsheet would take for a formula (= + - @, tab, CR first) is made
    text with a leading ' ; E.164 numbers stay as they are."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    return text.startswith("+") and text[1:].isdigit()


async def result_rows(database: Database, campaign_id: str) -> AsyncIterator[list[str]]:
    """The results CSV's rows (header first), in the order the recipients were given.

    One query, streamed RESULTS_BATCH rows at a time: a keyset page per batch would
    sort the campaign's recipients again for each one."""
    yield list(RESULT_COLUMNS)
    engine = await database.engine()
    r = campaign_recipients.c
    query = _recipients_query(
        campaign_id,
        *(r.line, r.external_id, r.phone, r.state, r.attempts, r.outcome, r.call_sid),
        *(calls.c.call_successful, r.error, r.finished_at),
    ).order_by(r.id)
    async with engine.connect() as connection:
        result = await connection.stream(query.execution_options(yield_per=RESULTS_BATCH))
        async for rows in result.partitions(RESULTS_BATCH):
            for row in rows:
                yield [csv_cell(cell) for cell in row[:-1]] + [_iso(row.finished_at) or ""]


async def campaign_exists(database: Database, campaign_id: str) -> bool:
    engine = await database.engine()
    async with engine.connect() as connection:
        found = await connection.scalar(select(campaigns.c.id).where(campaigns.c.id == campaign_id))
    return found is not None
