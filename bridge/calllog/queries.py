"""Reading the call log: filtered, newest-first pages of calls, and one call in full.

Read-only. Pages use keyset pagination on (created_at, id): the cursor names the last
row of a page, so rows recorded meanwhile never shift a page or repeat a row.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, and_, exists, or_, select
from sqlalchemy.engine import Row

from bridge import phone
from bridge.calllog import audio
from bridge.calllog.dashboard import outcome_of
from bridge.calllog.keys import call_by_key
from bridge.calllog.records import STATUS_RANK
from bridge.calllog.timeline import timeline
from bridge.storage.database import Database
from bridge.storage.tables import call_events, calls, recordings

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
DIRECTIONS = ("inbound", "outbound")
FILTERS = (
    "direction",
    "status",
    "number",
    "rule",
    "since",
    "until",
    "has_voicemail",
    "limit",
    "cursor",
)
BOOLEANS = {"true": True, "false": False}


class BadFilter(ValueError):
    """A query parameter that cannot be used; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Cursor:
    created_at: datetime
    id: str


@dataclass(frozen=True)
class CallFilter:
    direction: str | None = None
    status: str | None = None
    number: str | None = None
    rule: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    # A call has a voicemail when a `recordings` row of kind "voicemail" is on it.
    has_voicemail: bool | None = None
    limit: int = DEFAULT_LIMIT
    after: Cursor | None = None
    # The console's filters (bridge.web.ui): its outcome (bridge.calllog.dashboard),
    # part of a number, and the page before a cursor (newer calls).
    outcome: str | None = None
    number_contains: str | None = None
    before: Cursor | None = None


@dataclass(frozen=True)
class Page:
    calls: list[dict[str, Any]]
    next_cursor: str | None
    # A cursor to the newer calls before this page (only for the console's paging).
    prev_cursor: str | None = None


def parse_filter(params: Mapping[str, str]) -> CallFilter:
    """The filter a query string asks for. Raises BadFilter naming the bad parameter."""
    for name in params:
        if name not in FILTERS:
            raise BadFilter(name, f"unknown parameter {name!r}; expected one of {FILTERS}")
    direction = params.get("direction")
    if direction is not None and direction not in DIRECTIONS:
        raise BadFilter("direction", "direction must be inbound or outbound")
    status = params.get("status")
    if status is not None and status not in STATUS_RANK:
        raise BadFilter("status", f"status must be one of {', '.join(STATUS_RANK)}")
    number = params.get("number")
    if number is not None and not phone.is_e164(number):
        raise BadFilter("number", "number must be E.164, like +14155550123")
    rule = params.get("rule")
    if rule is not None and (not 1 <= len(rule) <= 100 or "\x00" in rule):
        raise BadFilter("rule", "rule must be 1 to 100 characters, none of them NUL")
    since = _instant(params, "since")
    until = _instant(params, "until")
    if since is not None and until is not None and until <= since:
        raise BadFilter("until", "until must be later than since")
    has_voicemail = params.get("has_voicemail")
    if has_voicemail is not None and has_voicemail not in BOOLEANS:
        raise BadFilter("has_voicemail", "has_voicemail must be true or false")
    cursor = params.get("cursor")
    return CallFilter(
        direction=direction,
        status=status,
        number=number,
        rule=rule,
        since=since,
        until=until,
        has_voicemail=BOOLEANS[has_voicemail] if has_voicemail is not None else None,
        limit=_limit(params.get("limit")),
        after=decode_cursor(cursor) if cursor is not None else None,
    )


def encode_cursor(cursor: Cursor) -> str:
    text = json.dumps({"t": cursor.created_at.isoformat(), "id": cursor.id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(value: str) -> Cursor:
    """The position a cursor names. Raises BadFilter("cursor") when it is not ours."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        data = json.loads(raw)
        created_at = _utc(datetime.fromisoformat(data["t"]))
        call_id = data["id"]
    except (binascii.Error, ValueError, TypeError, KeyError, OverflowError):
        raise BadFilter("cursor", "cursor is not one this API returned") from None
    if not isinstance(call_id, str) or not call_id or "\x00" in call_id:
        raise BadFilter("cursor", "cursor is not one this API returned")
    return Cursor(created_at, call_id)


async def list_calls(database: Database, wanted: CallFilter) -> Page:
    """Newest first (created_at, then id, descending); at most `wanted.limit` calls.
    With `wanted.before`, the newest-first page just before that cursor."""
    query = _filtered(select(calls), wanted)
    if wanted.before is not None:
        return await _page_before(database, query, wanted)
    query = query.order_by(calls.c.created_at.desc(), calls.c.id.desc()).limit(wanted.limit + 1)
    engine = await database.engine()
    async with engine.connect() as connection:
        rows = list(await connection.execute(query))
    shown = rows[: wanted.limit]
    next_cursor = None
    if len(rows) > wanted.limit:
        next_cursor = _cursor_of(shown[-1])
    prev_cursor = _cursor_of(shown[0]) if wanted.after is not None and shown else None
    return Page([call_summary(row) for row in shown], next_cursor, prev_cursor)


async def _page_before(database: Database, query: Select[Any], wanted: CallFilter) -> Page:
    assert wanted.before is not None
    at, call_id = wanted.before.created_at, wanted.before.id
    query = query.where(
        or_(calls.c.created_at > at, and_(calls.c.created_at == at, calls.c.id > call_id))
    )
    query = query.order_by(calls.c.created_at.asc(), calls.c.id.asc()).limit(wanted.limit + 1)
    engine = await database.engine()
    async with engine.connect() as connection:
        rows = list(await connection.execute(query))
    shown = list(reversed(rows[: wanted.limit]))
    prev_cursor = _cursor_of(shown[0]) if len(rows) > wanted.limit else None
    next_cursor = _cursor_of(shown[-1]) if shown else None
    return Page([call_summary(row) for row in shown], next_cursor, prev_cursor)


def _cursor_of(row: Row[Any]) -> str:
    return encode_cursor(Cursor(_utc(row.created_at), row.id))


async def find_call(database: Database, key: str) -> dict[str, Any] | None:
    """A call by Twilio call SID, else the bridge's id, else its conversation id: the
    record, its events in order, its transcript and its audio (links to
    `GET /calls/{sid}/audio/{file}`). None when nothing matches."""
    engine = await database.engine()
    async with engine.connect() as connection:
        row = await call_by_key(connection, key)
        if row is None:
            return None
        mine = call_events.c.call_id == row.id
        if row.conversation_id:
            # ElevenLabs webhooks that arrived before the call was matched to them.
            mine = or_(
                mine,
                and_(
                    call_events.c.call_id.is_(None),
                    call_events.c.conversation_id == row.conversation_id,
                ),
            )
        events = [
            {"kind": event.kind, "at": _iso(event.at), "data": event.data or {}}
            for event in await connection.execute(
                select(call_events).where(mine).order_by(call_events.c.at, call_events.c.id)
            )
        ]
        return {
            **call_summary(row),
            "sip_call_id": row.sip_call_id,
            "analysis": row.analysis,
            "audio_bytes": row.audio_bytes,
            "audio_sha256": row.audio_sha256,
            "events": events,
            "timeline": timeline(events),
            "transcript": row.transcript or [],
            "audio": audio.links(row, await audio.listed(connection, row)),
        }


def call_summary(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "call_sid": row.call_sid,
        "direction": row.direction,
        "from": row.from_number,
        "to": row.to_number,
        "rule": row.rule,
        "action": row.action,
        "agent_id": row.agent_id,
        "mode": row.mode,
        "outcome": row.outcome,
        "status": row.status,
        "created_at": _iso(row.created_at),
        "answered_at": _iso(row.answered_at),
        "ended_at": _iso(row.ended_at),
        "duration": row.duration,
        "answered_by": row.answered_by,
        "conversation_id": row.conversation_id,
        "summary": row.summary,
        "call_successful": row.call_successful,
        "error": row.error,
    }


def _filtered(query: Select[Any], wanted: CallFilter) -> Select[Any]:
    for column, value in (
        (calls.c.direction, wanted.direction),
        (calls.c.status, wanted.status),
        (calls.c.rule, wanted.rule),
    ):
        if value is not None:
            query = query.where(column == value)
    if wanted.number is not None:
        query = query.where(
            or_(calls.c.from_number == wanted.number, calls.c.to_number == wanted.number)
        )
    if wanted.number_contains is not None:
        # Digits and + only (the console keeps nothing else), so no LIKE wildcards.
        pattern = "%" + "".join(c for c in wanted.number_contains if c in "+0123456789") + "%"
        query = query.where(or_(calls.c.from_number.like(pattern), calls.c.to_number.like(pattern)))
    if wanted.outcome is not None:
        query = query.where(outcome_of() == wanted.outcome)
    if wanted.since is not None:
        query = query.where(calls.c.created_at >= wanted.since)
    if wanted.until is not None:
        query = query.where(calls.c.created_at < wanted.until)
    if wanted.has_voicemail is not None:
        voicemail = exists().where(
            recordings.c.call_id == calls.c.id, recordings.c.kind == "voicemail"
        )
        query = query.where(voicemail if wanted.has_voicemail else ~voicemail)
    if wanted.after is not None:
        at, call_id = wanted.after.created_at, wanted.after.id
        query = query.where(
            or_(
                calls.c.created_at < at,
                and_(calls.c.created_at == at, calls.c.id < call_id),
            )
        )
    return query


def _instant(params: Mapping[str, str], name: str) -> datetime | None:
    value = params.get(name)
    if value is None:
        return None
    try:
        return _utc(datetime.fromisoformat(value))
    except (ValueError, OverflowError):
        raise BadFilter(
            name, f"{name} must be an ISO 8601 date and time, like 2025-01-31T09:00:00Z"
        ) from None


def _limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise BadFilter("limit", f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return limit


def _utc(value: datetime) -> datetime:
    """Aware and in UTC; naive times are UTC (SQLite stores them without an offset)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _iso(value: datetime | None) -> str | None:
    return _utc(value).isoformat() if value is not None else None
