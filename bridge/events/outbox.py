"""The durable outbox of outgoing events: writing an event in the caller's
transaction (`Outbox.enqueue`), and the queries the sender, `GET /events` and
`callbridge events` use.

An event is one `event_outbox` row whose `body` (`{type, timestamp, data}` as JSON
text) is fixed when it is written, so every retry sends the same bytes under the same
`webhook-id` (its `id`). Each configured endpoint gets its own `event_deliveries` row.
A cause written twice (a replayed webhook) has the same `dedupe_key`: no second event.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.secret import is_secret_variable
from bridge.settings import Settings
from bridge.storage.tables import event_deliveries, event_endpoints, event_outbox

PENDING, DELIVERED, FAILED, DISABLED = "pending", "delivered", "failed", "disabled"
STATUSES = (PENDING, DELIVERED, FAILED, DISABLED)

# Told when an event was written in this process (the sender wakes up at once).
_listeners: list[Callable[[], None]] = []


def listen(callback: Callable[[], None]) -> Callable[[], None]:
    """Call `callback` whenever this process writes an event; returns the undo."""
    _listeners.append(callback)
    return lambda: _listeners.remove(callback)


def notify() -> None:
    for callback in list(_listeners):
        callback()


def new_event_id() -> str:
    return "evt_" + secrets.token_hex(16)


def without_secrets(value: Any) -> Any:
    """`value` with every `secret__` key dropped, at any depth."""
    if isinstance(value, Mapping):
        return {
            key: without_secrets(item) for key, item in value.items() if not is_secret_variable(key)
        }
    if isinstance(value, list | tuple):
        return [without_secrets(item) for item in value]
    return value


def body_of(event_type: str, at: datetime, data: Mapping[str, Any]) -> str:
    body = {
        "type": event_type,
        "timestamp": at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": without_secrets(data),
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=str)


@dataclass(frozen=True)
class Outbox:
    """Where events go (`urls`) and which types are wanted (`types`, empty: all).

    `base_url` (PUBLIC_BASE_URL) makes the audio links in events absolute."""

    urls: tuple[str, ...]
    types: frozenset[str] = frozenset()
    base_url: str = ""
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC), compare=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Outbox | None:
        """None without EVENTS_WEBHOOK_URL: then nothing is queued."""
        if not settings.events_webhook_urls:
            return None
        return cls(
            urls=tuple(settings.events_webhook_urls),
            types=frozenset(settings.events_types),
            base_url=settings.public_base_url.rstrip("/"),
        )

    def wants(self, event_type: str) -> bool:
        return not self.types or event_type in self.types

    async def enqueue(
        self,
        connection: AsyncConnection,
        event_type: str,
        data: Mapping[str, Any],
        *,
        dedupe_key: str,
        call_id: str | None = None,
    ) -> str | None:
        """Write the event in `connection`'s transaction; its id, or None when it is
        not wanted or its `dedupe_key` was already written."""
        if not self.wants(event_type):
            return None
        at = self.now()
        event_id = new_event_id()
        try:
            async with connection.begin_nested():
                await connection.execute(
                    insert(event_outbox).values(
                        id=event_id,
                        type=event_type,
                        dedupe_key=dedupe_key[:255],
                        call_id=call_id,
                        body=body_of(event_type, at, data),
                        created_at=at,
                    )
                )
        except IntegrityError:
            return None
        await connection.execute(
            insert(event_deliveries),
            [
                {
                    "event_id": event_id,
                    "endpoint": url,
                    "status": PENDING,
                    "attempts": 0,
                    "next_attempt_at": at,
                }
                for url in self.urls
            ],
        )
        return event_id


@dataclass(frozen=True, slots=True)
class Delivery:
    """A delivery claimed by a sender: the event's id, type, exact body and endpoint."""

    id: int
    event_id: str
    event_type: str
    endpoint: str
    body: str
    attempts: int
    created_at: datetime


async def disable_gone(connection: AsyncConnection) -> None:
    """Pending deliveries to an endpoint that answered 410 become disabled (events
    are written without looking, so the webhook's path has no extra query)."""
    gone = select(event_endpoints.c.url)
    await connection.execute(
        update(event_deliveries)
        .where(
            and_(
                event_deliveries.c.status == PENDING,
                event_deliveries.c.endpoint.in_(gone),
            )
        )
        .values(status=DISABLED)
    )


async def claim(
    connection: AsyncConnection, *, now: datetime, limit: int, lease_until: datetime
) -> list[Delivery]:
    """Up to `limit` deliveries due at `now`, taken for this sender: their
    `next_attempt_at` moves to `lease_until`, so another sender (or this one after a
    crash) tries them again only then. PostgreSQL skips rows another sender holds."""
    await disable_gone(connection)
    due = (
        select(event_deliveries.c.id)
        .where(
            and_(
                event_deliveries.c.status == PENDING,
                event_deliveries.c.next_attempt_at <= now,
            )
        )
        .order_by(event_deliveries.c.next_attempt_at, event_deliveries.c.id)
        .limit(limit)
    )
    if connection.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    # One statement: on SQLite the UPDATE takes the write lock before it reads, so two
    # processes on one file never pick the same rows either (the second waits).
    taken = await connection.execute(
        update(event_deliveries)
        .where(event_deliveries.c.id.in_(due.scalar_subquery()))
        .values(next_attempt_at=lease_until)
        .returning(event_deliveries.c.id)
    )
    ids = [row for (row,) in taken]
    if not ids:
        return []
    rows = await connection.execute(
        select(
            event_deliveries.c.id,
            event_deliveries.c.event_id,
            event_outbox.c.type,
            event_deliveries.c.endpoint,
            event_outbox.c.body,
            event_deliveries.c.attempts,
            event_outbox.c.created_at,
        )
        .join(event_outbox, event_outbox.c.id == event_deliveries.c.event_id)
        .where(event_deliveries.c.id.in_(ids))
        .order_by(event_deliveries.c.id)
    )
    return [Delivery(*row) for row in rows]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt came to: the delivery's new status and when to try again."""

    delivery_id: int
    status: str
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None


async def settle(
    connection: AsyncConnection, outcomes: Sequence[Outcome], *, gone: Sequence[str] = ()
) -> None:
    """Store attempts' outcomes; `gone` endpoints (410) are disabled."""
    if outcomes:
        # One statement for the batch (executemany); a delivery another sender has
        # settled meanwhile (its lease ran out here) is left as it is.
        await connection.execute(
            update(event_deliveries)
            .where(
                and_(
                    event_deliveries.c.id == bindparam("delivery_id"),
                    event_deliveries.c.status == PENDING,
                )
            )
            .values(
                status=bindparam("new_status"),
                attempts=bindparam("new_attempts"),
                last_status=bindparam("new_last_status"),
                last_error=bindparam("new_last_error"),
                next_attempt_at=bindparam("new_next_attempt_at"),
                delivered_at=bindparam("new_delivered_at"),
            ),
            [
                {
                    "delivery_id": outcome.delivery_id,
                    "new_status": outcome.status,
                    "new_attempts": outcome.attempts,
                    "new_last_status": outcome.last_status,
                    "new_last_error": outcome.last_error,
                    "new_next_attempt_at": outcome.next_attempt_at,
                    "new_delivered_at": outcome.delivered_at,
                }
                for outcome in outcomes
            ],
        )
    for url in sorted(set(gone)):
        known = await connection.execute(
            select(event_endpoints.c.url).where(event_endpoints.c.url == url[:2048])
        )
        if known.first() is None:
            try:
                async with connection.begin_nested():
                    await connection.execute(
                        insert(event_endpoints).values(url=url[:2048], disabled_at=func.now())
                    )
            except IntegrityError:
                pass  # another sender disabled it just now
    if gone:
        await disable_gone(connection)


@dataclass(frozen=True, slots=True)
class Depth:
    pending: int
    oldest: datetime | None


async def depth(connection: AsyncConnection) -> Depth:
    """How many deliveries are pending and when the oldest of their events was made."""
    row = (
        await connection.execute(
            select(func.count(), func.min(event_outbox.c.created_at))
            .select_from(event_deliveries)
            .join(event_outbox, event_outbox.c.id == event_deliveries.c.event_id)
            .where(event_deliveries.c.status == PENDING)
        )
    ).one()
    return Depth(int(row[0]), row[1])


async def redeliver(connection: AsyncConnection, event_id: str, *, now: datetime) -> bool:
    """Every delivery of the event back to pending, due now (its endpoints enabled
    again). False when there is no such event."""
    endpoints = [
        url
        for (url,) in await connection.execute(
            select(event_deliveries.c.endpoint).where(event_deliveries.c.event_id == event_id)
        )
    ]
    if not endpoints:
        return False
    await connection.execute(
        delete(event_endpoints).where(event_endpoints.c.url.in_([u[:2048] for u in endpoints]))
    )
    await connection.execute(
        update(event_deliveries)
        .where(event_deliveries.c.event_id == event_id)
        .values(status=PENDING, attempts=0, next_attempt_at=now, delivered_at=None)
    )
    return True
