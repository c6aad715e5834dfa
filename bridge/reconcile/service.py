"""A reconciler built from the settings (the server's and the CLI's), run under the
`reconcile` lease so one process at a time reconciles, across workers and dynos."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

import httpx

from bridge.events.outbox import Outbox
from bridge.metrics import Metrics
from bridge.reconcile.conversations import Conversations
from bridge.reconcile.lease import Lease
from bridge.reconcile.run import Bounds, Outcome, Reconciler
from bridge.reconcile.twilio_calls import TwilioCalls
from bridge.reconcile.upstream import Pacer
from bridge.settings import Settings
from bridge.storage.database import Database

LEASE_NAME = "reconcile"
logger = logging.getLogger("bridge.reconcile")


class Service:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        transport: httpx.AsyncBaseTransport,
        *,
        bounds: Bounds | None = None,
        metrics: Metrics | None = None,
        also: Sequence[Callable[[], Awaitable[object]]] = (),
        lease_ttl: float | None = None,
    ) -> None:
        self.bounds = bounds or Bounds()
        self.pacer = Pacer(self.bounds.per_second)
        self.conversations = (
            Conversations(
                api_key=settings.elevenlabs_api_key,
                base_url=settings.elevenlabs_api_base,
                transport=transport,
                pacer=self.pacer,
            )
            if settings.elevenlabs_api_key
            else None
        )
        self.twilio = (
            TwilioCalls(
                account_sid=settings.twilio_account_sid,
                auth_token=settings.twilio_auth_token,
                base_url=settings.twilio_api_base,
                transport=transport,
                pacer=self.pacer,
            )
            if settings.twilio_configured
            else None
        )
        self.reconciler = Reconciler(
            database,
            conversations=self.conversations,
            twilio=self.twilio,
            default_agent_id=settings.elevenlabs_agent_id,
            bounds=self.bounds,
            metrics=metrics,
            also=also,
            events=Outbox.from_settings(settings),
        )
        # Longer than a run may take, so a live holder never loses it between renewals.
        ttl = lease_ttl or max(60.0, self.bounds.seconds * 2)
        self.lease = Lease(database, LEASE_NAME, ttl=ttl)

    async def run_once(self, *, since: timedelta, grace: float) -> Outcome | None:
        """One run under the lease; None when another process holds it."""
        if not await self.lease.acquire():
            return None
        held = True

        async def renew() -> None:
            nonlocal held
            while held:
                await asyncio.sleep(self.lease.ttl / 3)
                try:
                    held = await self.lease.renew()
                except Exception:  # the database is away: stop before the lease lapses
                    logger.warning("event=reconcile_lease_renewal_failed", exc_info=True)
                    held = False

        renewing = asyncio.create_task(renew())
        try:
            return await self.reconciler.run(
                since=since,
                grace=grace,
                keep_going=lambda: held,
                requests=lambda: self.pacer.sent,
            )
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            if held:
                held = False
                with contextlib.suppress(Exception):
                    await self.lease.release()

    async def aclose(self) -> None:
        for client in (self.conversations, self.twilio):
            if client is not None:
                await client.aclose()
