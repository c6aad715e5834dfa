"""bridge.reconcile.lease: one holder at a time, taken over once expired, on SQLite
and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bridge.reconcile.lease import Lease, holder_name
from bridge.storage.database import Database

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def pair(database: Database, clock: Clock, ttl: float = 30) -> tuple[Lease, Lease]:
    name = f"test-{uuid.uuid4().hex[:12]}"
    return (
        Lease(database, name, ttl=ttl, holder="a", now=clock),
        Lease(database, name, ttl=ttl, holder="b", now=clock),
    )


@pytest.mark.anyio
async def test_one_holder_at_a_time(database: Database) -> None:
    clock = Clock()
    a, b = pair(database, clock)
    assert await a.acquire()
    assert not await b.acquire()
    assert await a.acquire()  # kept: it is a's already


@pytest.mark.anyio
async def test_an_expired_lease_is_taken_over_and_the_old_holder_knows(
    database: Database,
) -> None:
    clock = Clock()
    a, b = pair(database, clock)
    assert await a.acquire()
    clock.now = T0 + timedelta(seconds=29)
    assert not await b.acquire()
    clock.now = T0 + timedelta(seconds=31)
    assert await b.acquire()
    assert not await a.renew()
    assert not await a.acquire()


@pytest.mark.anyio
async def test_renewing_keeps_it_and_releasing_frees_it(database: Database) -> None:
    clock = Clock()
    a, b = pair(database, clock)
    assert await a.acquire()
    for step in range(1, 5):
        clock.now = T0 + timedelta(seconds=20 * step)
        assert await a.renew()
        assert not await b.acquire()
    await b.release()  # not b's: nothing happens
    assert not await b.acquire()
    await a.release()
    assert await b.acquire()


def test_holder_names_differ_per_lease_holder() -> None:
    assert holder_name() != holder_name()
