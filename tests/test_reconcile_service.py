"""bridge.reconcile.service: runs under the `reconcile` lease, one process at a time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import delete

from bridge.reconcile.lease import Lease
from bridge.reconcile.service import LEASE_NAME, Service
from bridge.secret import Secret
from bridge.storage.database import Database
from bridge.storage.tables import leases
from tests.helpers import make_settings

pytestmark = pytest.mark.anyio
NOWHERE = httpx.MockTransport(lambda request: httpx.Response(500))


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    engine = await database.engine()
    async with engine.begin() as connection:
        await connection.execute(delete(leases).where(leases.c.name == LEASE_NAME))
    yield database
    await database.dispose()


def service(database: Database, **changes: object) -> Service:
    settings = make_settings(
        elevenlabs_api_key=Secret(""), twilio_account_sid="", twilio_auth_token=Secret("")
    )
    return Service(settings, database, NOWHERE, **changes)  # type: ignore[arg-type]


async def test_one_run_at_a_time_and_the_lease_is_released(database: Database) -> None:
    other = Lease(database, LEASE_NAME, ttl=60)
    assert await other.acquire()
    first = service(database)
    assert await first.run_once(since=timedelta(hours=1), grace=0) is None
    await other.release()
    outcome = await first.run_once(since=timedelta(hours=1), grace=0)
    assert outcome is not None and outcome.result == "complete"
    assert await other.acquire()  # released at the end of the run
    await other.release()
    await first.aclose()


async def test_a_run_that_loses_its_lease_stops(database: Database) -> None:
    ran: list[str] = []

    async def steal() -> None:
        engine = await database.engine()
        async with engine.begin() as connection:
            await connection.execute(delete(leases).where(leases.c.name == LEASE_NAME))
        await Lease(database, LEASE_NAME, ttl=60, holder="thief").acquire()
        await asyncio.sleep(0.3)  # the renewal (every ttl / 3) finds it gone

    async def after() -> None:
        ran.append("after")

    runner = service(database, also=[steal, after], lease_ttl=0.3)
    outcome = await runner.run_once(since=timedelta(hours=1), grace=0)
    assert outcome is not None and outcome.stopped == "lease"
    assert ran == []
    assert not await Lease(database, LEASE_NAME, ttl=60, holder="third").acquire()  # thief's
    await runner.aclose()


def test_upstreams_are_used_only_when_configured(tmp_path: object) -> None:
    database = Database("sqlite://")
    bare = service(database)
    assert (bare.conversations, bare.twilio) == (None, None)
    full = Service(make_settings(twilio_account_sid="AC" + "1" * 32), database, NOWHERE)
    assert full.conversations is not None and full.twilio is not None
    assert full.lease.ttl >= 2 * full.bounds.seconds


async def test_a_renewal_that_fails_stops_the_run(database: Database) -> None:
    ran: list[str] = []

    async def slow() -> None:
        await asyncio.sleep(0.3)

    async def after() -> None:
        ran.append("after")

    runner = service(database, also=[slow, after], lease_ttl=0.3)

    async def broken() -> bool:
        raise ConnectionError("the database is away")

    runner.lease.renew = broken  # type: ignore[method-assign]
    outcome = await runner.run_once(since=timedelta(hours=1), grace=0)
    assert outcome is not None and outcome.stopped == "lease" and ran == []
    await runner.aclose()
