"""A campaign worker on its own (`callbridge worker`): the same placement the server's
`POST /calls` uses (dialer, Idempotency-Keys, call log, metrics), built from the
settings, and closed again."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx

from bridge.calllog.records import CallRecords
from bridge.campaigns.pacing import PacedTwilio
from bridge.campaigns.worker import (
    DEFAULT_LEASE,
    DEFAULT_MAX_PLACING,
    DEFAULT_POLL,
    CampaignWorker,
)
from bridge.elevenlabs.api import ElevenLabsAPI
from bridge.events.outbox import Outbox
from bridge.metrics import Metrics
from bridge.outbound.dialer import Dialer
from bridge.outbound.idempotency import IdempotencyKeys, server_key
from bridge.outbound.placement import Placement
from bridge.outbound.sealing import Sealer
from bridge.settings import Settings
from bridge.storage.database import Database
from bridge.storage.migrate import ensure_current
from bridge.transport.factory import make_transport


def worker_for(
    settings: Settings,
    *,
    database: Database,
    dialer: Dialer,
    records: CallRecords,
    metrics: Metrics,
    events: Outbox | None,
    lease: timedelta = DEFAULT_LEASE,
    poll: float = DEFAULT_POLL,
    max_placing: int = DEFAULT_MAX_PLACING,
) -> CampaignWorker:
    """A worker placing calls through `dialer`, its Idempotency-Keys held for `lease`."""
    keys = IdempotencyKeys(
        database, key=server_key(settings.bridge_api_token.reveal()), lease=lease
    )
    placement = Placement(
        dialer=dialer,
        keys=keys,
        # No call.failed event for a campaign call not placed: a slot missed is none,
        # and a refusal is told by campaign.recipient.finished.
        records=CallRecords(database, now=records.now),
        metrics=metrics,
        allowed_countries=settings.allowed_countries(),
        # The do-not-call list is checked again right before dialling (a number listed
        # since the claim); the cap is the worker's own room, below the API's.
        database=database,
    )
    return CampaignWorker(
        database=database,
        placement=placement,
        metrics=metrics,
        events=events,
        max_concurrent_calls=settings.outbound_max_concurrent_calls,
        inbound_reserve=settings.campaign_inbound_reserve,
        lease=lease,
        poll=poll,
        max_placing=max_placing,
    )


def paced_dialer(
    settings: Settings,
    *,
    database: Database,
    transport: httpx.AsyncBaseTransport,
    elevenlabs: ElevenLabsAPI | None,
) -> tuple[Dialer, PacedTwilio | None]:
    """A dialer for campaign calls: its Twilio client sends each call at its slot.
    Close the client (the second item) when done."""
    twilio = (
        PacedTwilio(
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token,
            api_base=settings.twilio_api_base,
            transport=transport,
        )
        if settings.twilio_configured
        else None
    )
    token = settings.bridge_api_token.reveal()
    dialer = Dialer(
        settings=settings,
        database=database,
        elevenlabs=elevenlabs,
        twilio=twilio,
        sealer=Sealer(token) if token else None,
    )
    return dialer, twilio


@contextlib.asynccontextmanager
async def standalone_worker(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    lease: timedelta = DEFAULT_LEASE,
    poll: float = DEFAULT_POLL,
    max_placing: int = DEFAULT_MAX_PLACING,
) -> AsyncIterator[CampaignWorker]:
    """A worker with clients of its own; raises NotMigrated on an old schema."""
    await ensure_current(settings.database_url)
    transport = transport or make_transport(
        settings.upstream_transport, settings.upstream_max_connections
    )
    database = Database(settings.database_url)
    elevenlabs = (
        ElevenLabsAPI(
            api_key=settings.elevenlabs_api_key,
            base_url=settings.elevenlabs_api_base,
            transport=transport,
        )
        if settings.elevenlabs_configured
        else None
    )
    events = Outbox.from_settings(settings)
    dialer, twilio = paced_dialer(
        settings, database=database, transport=transport, elevenlabs=elevenlabs
    )
    try:
        yield worker_for(
            settings,
            database=database,
            dialer=dialer,
            records=CallRecords(database, events=events),
            metrics=Metrics(),
            events=events,
            lease=lease,
            poll=poll,
            max_placing=max_placing,
        )
    finally:
        if elevenlabs is not None:
            await elevenlabs.aclose()
        if twilio is not None:
            await twilio.aclose()
        await transport.aclose()
        await database.dispose()
