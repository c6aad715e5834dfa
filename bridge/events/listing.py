"""Reading the outbox: `GET /events` and `callbridge events`.

Newest first, keyset pages on (created_at, id) like `GET /calls`; each event with its
body and its deliveries. An endpoint is shown without its query string (it may carry
a token).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import and_, exists, or_, select

from bridge.events import outbox
from bridge.events.outbox import STATUSES
from bridge.settings.schema import EVENT_TYPES
from bridge.storage.database import Database
from bridge.storage.tables import event_deliveries, event_endpoints, event_outbox

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
FILTERS = ("status", "type", "limit", "cursor")


class BadFilter(ValueError):
    """A query parameter that cannot be used; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class EventFilter:
    # Events with a delivery in this status.
    status: str | None = None
    type: str | None = None
    limit: int = DEFAULT_LIMIT
    after: tuple[datetime, str] | None = None


@dataclass(frozen=True)
class Page:
    events: list[dict[str, Any]]
    next_cursor: str | None


def parse_filter(params: Mapping[str, str]) -> EventFilter:
    """The filter a query string asks for. Raises BadFilter naming the bad parameter."""
    for name in params:
        if name not in FILTERS:
            raise BadFilter(name, f"unknown parameter {name!r}; expected one of {FILTERS}")
    status = params.get("status")
    if status is not None and status not in STATUSES:
        raise BadFilter("status", f"status must be one of {', '.join(STATUSES)}")
    kind = params.get("type")
    if kind is not None and kind not in EVENT_TYPES:
        raise BadFilter("type", f"type must be one of {', '.join(EVENT_TYPES)}")
    cursor = params.get("cursor")
    return EventFilter(
        status=status,
        type=kind,
        limit=_limit(params.get("limit")),
        after=decode_cursor(cursor) if cursor is not None else None,
    )


def encode_cursor(created_at: datetime, event_id: str) -> str:
    text = json.dumps({"t": _utc(created_at).isoformat(), "id": event_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(value: str) -> tuple[datetime, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
        created_at = _utc(datetime.fromisoformat(data["t"]))
        event_id = data["id"]
    except (binascii.Error, ValueError, TypeError, KeyError, OverflowError):
        raise BadFilter("cursor", "cursor is not one this API returned") from None
    if not isinstance(event_id, str) or not event_id or "\x00" in event_id:
        raise BadFilter("cursor", "cursor is not one this API returned")
    return created_at, event_id


async def list_events(database: Database, wanted: EventFilter) -> Page:
    query = select(event_outbox)
    if wanted.type is not None:
        query = query.where(event_outbox.c.type == wanted.type)
    if wanted.status is not None:
        query = query.where(
            exists().where(
                event_deliveries.c.event_id == event_outbox.c.id,
                event_deliveries.c.status == wanted.status,
            )
        )
    if wanted.after is not None:
        at, event_id = wanted.after
        query = query.where(
            or_(
                event_outbox.c.created_at < at,
                and_(event_outbox.c.created_at == at, event_outbox.c.id < event_id),
            )
        )
    query = query.order_by(event_outbox.c.created_at.desc(), event_outbox.c.id.desc()).limit(
        wanted.limit + 1
    )
    engine = await database.engine()
    async with engine.connect() as connection:
        rows = list(await connection.execute(query))[: wanted.limit + 1]
        shown = rows[: wanted.limit]
        found: dict[str, list[dict[str, Any]]] = {row.id: [] for row in shown}
        if found:
            deliveries = await connection.execute(
                select(event_deliveries)
                .where(event_deliveries.c.event_id.in_(sorted(found)))
                .order_by(event_deliveries.c.id)
            )
            for delivery in deliveries:
                found[delivery.event_id].append(delivery_summary(delivery))
    next_cursor = None
    if len(rows) > wanted.limit:
        next_cursor = encode_cursor(shown[-1].created_at, shown[-1].id)
    return Page(
        [
            {
                "id": row.id,
                "type": row.type,
                "created_at": _iso(row.created_at),
                "call_id": row.call_id,
                "body": json.loads(row.body),
                "deliveries": found[row.id],
            }
            for row in shown
        ],
        next_cursor,
    )


async def outbox_health(database: Database, now: datetime) -> dict[str, Any]:
    """What on-call people check: deliveries pending, the oldest one's age, and the
    endpoints a 410 disabled (nothing is sent to them until an event is redelivered)."""
    engine = await database.engine()
    async with engine.connect() as connection:
        depth = await outbox.depth(connection)
        disabled = (
            await connection.execute(
                select(event_endpoints.c.url, event_endpoints.c.disabled_at).order_by(
                    event_endpoints.c.disabled_at
                )
            )
        ).all()
    oldest = depth.oldest
    return {
        "pending": depth.pending,
        "oldest_pending_seconds": (
            round(max((now - _utc(oldest)).total_seconds(), 0.0), 3) if oldest else None
        ),
        "disabled_endpoints": [
            {"endpoint": shown_endpoint(url), "disabled_at": _iso(at)} for url, at in disabled
        ],
    }


def delivery_summary(row: Any) -> dict[str, Any]:
    return {
        "endpoint": shown_endpoint(row.endpoint),
        "status": row.status,
        "attempts": row.attempts,
        "last_status": row.last_status,
        "last_error": row.last_error,
        "next_attempt_at": _iso(row.next_attempt_at) if row.status == "pending" else None,
        "delivered_at": _iso(row.delivered_at),
    }


def shown_endpoint(url: str) -> str:
    parsed = httpx.URL(url)
    return str(parsed.copy_with(query=None, fragment=None, username=None, password=None))


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
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso(value: datetime | None) -> str | None:
    return _utc(value).isoformat() if value is not None else None
