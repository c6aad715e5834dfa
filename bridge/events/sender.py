"""The background sender: claims due deliveries from the outbox, POSTs each event's
stored body signed per Standard Webhooks (bridge.webhook_signing), and records the
outcome. 2xx is delivered; 410 disables the endpoint; anything else (another answer,
a timeout, a connection error) is retried on the schedule (bridge.events.schedule).

Every server process runs one; on PostgreSQL they share the work (`FOR UPDATE SKIP
LOCKED`; a claimed delivery is leased for `LEASE` so a sender that dies mid-way
leaves it to the others), on SQLite one process writes at a time anyway. It wakes at
once when this process writes an event, and polls every `poll` seconds otherwise, so
events written by other processes (or left by a restart) are delivered too. It never
runs on a webhook's path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

from bridge.events import outbox, schedule
from bridge.events.outbox import DELIVERED, FAILED, PENDING, Delivery, Outcome
from bridge.metrics import Metrics
from bridge.settings import Settings
from bridge.storage.database import Database
from bridge.transport.factory import make_transport
from bridge.webhook_signing import WebhookSigner

logger = logging.getLogger("bridge.events")
TIMEOUT = 10.0
LEASE = timedelta(seconds=60)
BATCH = 100
CONCURRENCY = 32
POLL = 2.0
# How long a stopping sender lets its batch in flight finish.
STOP_GRACE = 5.0
MEASURE_EVERY = 1.0


@dataclass
class SenderCounts:
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    disabled: int = 0


class EventSender:
    def __init__(
        self,
        database: Database,
        signer: WebhookSigner,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        metrics: Metrics | None = None,
        poll: float = POLL,
        timeout: float = TIMEOUT,
        batch: int = BATCH,
        concurrency: int = CONCURRENCY,
        measure_every: float = MEASURE_EVERY,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.database = database
        self.signer = signer
        self.metrics = metrics
        self.poll = poll
        self.batch = batch
        self.now = now
        self.counts = SenderCounts()
        # The bridge's own keep-alive transport by default: httpx's pool is several
        # times slower with many requests in flight (benchmarks/events_drain.py).
        self._client = httpx.AsyncClient(
            transport=transport or make_transport("pooled", concurrency),
            timeout=timeout,
            limits=httpx.Limits(max_connections=concurrency),
        )
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unlisten: Callable[[], None] | None = None
        self.measure_every = measure_every
        self._measured = -measure_every
        self._stopping = False

    def start(self) -> None:
        self._unlisten = outbox.listen(self._wake.set)
        self._task = asyncio.create_task(self._loop(), name="event-sender")

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """Let the batch in flight finish (for up to `grace` seconds), so what it sent
        is stored as sent and not sent again after a restart; then stop."""
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        if self._task is not None:
            self._stopping = True
            self._wake.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), grace)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        await self._client.aclose()

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                busy = await self.run_once()
            except Exception:
                logger.exception("event=events_send_failed")
                busy = 0
            if busy < self.batch and not self._stopping:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll)

    async def run_once(self) -> int:
        """Deliver one batch of due deliveries; how many were tried."""
        engine = await self.database.engine()
        now = self.now()
        async with engine.begin() as connection:
            claimed = await outbox.claim(
                connection, now=now, limit=self.batch, lease_until=now + LEASE
            )
        if claimed:
            outcomes = await asyncio.gather(*(self._attempt(item) for item in claimed))
            gone = [
                item.endpoint
                for item, (_, is_gone) in zip(claimed, outcomes, strict=True)
                if is_gone
            ]
            async with engine.begin() as connection:
                await outbox.settle(connection, [o for o, _ in outcomes], gone=gone)
        await self._measure()
        return len(claimed)

    async def _attempt(self, item: Delivery) -> tuple[Outcome, bool]:
        body = item.body.encode()
        attempts = item.attempts + 1
        status: int | None = None
        error: str | None = None
        async with self._slots:
            headers = self.signer.headers(item.event_id, self.now(), body)
            headers["content-type"] = "application/json"
            try:
                response = await self._client.post(item.endpoint, content=body, headers=headers)
                status = response.status_code
            except httpx.TimeoutException:
                error = "timeout"
            except httpx.HTTPError as exc:
                error = type(exc).__name__
        now = self.now()
        if status is not None and 200 <= status < 300:
            self._count("delivered")
            return Outcome(item.id, DELIVERED, attempts, status, None, None, now), False
        if status == 410:
            self._count("disabled")
            logger.warning("event=events_endpoint_gone endpoint=%s", _host(item.endpoint))
            return Outcome(item.id, outbox.DISABLED, attempts, status, None, None, None), True
        error = error or f"HTTP {status}"
        retry_at = schedule.next_attempt(attempts, now)
        if retry_at is None:
            self._count("failed")
            logger.warning(
                "event=events_delivery_failed event_id=%s endpoint=%s error=%s",
                item.event_id,
                _host(item.endpoint),
                error,
            )
            return Outcome(item.id, FAILED, attempts, status, error, None, None), False
        self._count("retried")
        return Outcome(item.id, PENDING, attempts, status, error, retry_at, None), False

    def _count(self, result: str) -> None:
        setattr(self.counts, result, getattr(self.counts, result) + 1)
        if self.metrics is not None:
            self.metrics.events.labels(result).inc()

    async def _measure(self) -> None:
        """The queue's depth and age for /metrics, at most once a second."""
        if self.metrics is None or time.monotonic() - self._measured < self.measure_every:
            return
        self._measured = time.monotonic()
        engine = await self.database.engine()
        async with engine.connect() as connection:
            found = await outbox.depth(connection)
        self.metrics.events_queue_depth.set(found.pending)
        oldest = found.oldest
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)  # SQLite keeps no zone
        age = (self.now() - oldest).total_seconds() if oldest else 0.0
        self.metrics.events_oldest_pending_seconds.set(max(age, 0.0))


def _host(url: str) -> str:
    """The endpoint without its path and query (they may carry a token)."""
    return httpx.URL(url).host


def sender_for(
    settings: Settings,
    database: Database,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    metrics: Metrics | None = None,
) -> EventSender | None:
    """The server's sender, or None without EVENTS_WEBHOOK_URL."""
    if not settings.events_webhook_urls or not settings.events_webhook_secrets:
        return None
    return EventSender(
        database,
        WebhookSigner(settings.events_webhook_secrets),
        transport=transport or make_transport(settings.upstream_transport, CONCURRENCY),
        metrics=metrics,
    )
