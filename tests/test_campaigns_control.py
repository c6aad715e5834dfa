"""Pause, resume and cancel with a clock: states, events in the outbox, pacing after a
resume, what cancel leaves to finish, conflicts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import select, update

from bridge.campaigns import control, queries, store
from bridge.campaigns.options import CampaignOptions
from bridge.events.outbox import Outbox
from bridge.storage.database import Database
from bridge.storage.tables import campaign_recipients, campaigns, event_outbox

T0 = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
HOOK = ("https://crm.example/hook",)
Result = TypeVar("Result")


def with_database(database_url: str, work: Callable[[Database], Awaitable[Result]]) -> Result:
    async def go() -> Result:
        database = Database(database_url)
        try:
            return await work(database)
        finally:
            await database.dispose()

    return asyncio.run(go())


async def new_campaign(database: Database, phones: list[str], **options: Any) -> str:
    engine = await database.engine()
    async with engine.begin() as connection:
        return await store.create_campaign(
            connection,
            name="ctl",
            agent_id=None,
            options=CampaignOptions.model_validate(options),
            recipients=[
                store.NewRecipient(line=i + 1, phone=p, time_zones=("America/Los_Angeles",))
                for i, p in enumerate(phones)
            ],
            now=T0,
        )


async def execute(database: Database, statement: Any) -> list[Any]:
    engine = await database.engine()
    async with engine.begin() as connection:
        result = await connection.execute(statement)
        return list(result) if result.returns_rows else []


def test_pause_resume_cancel_write_their_events(database_url: str) -> None:
    async def work(database: Database) -> None:
        campaign_id = await new_campaign(database, ["+14155550101", "+14155550102"])
        box = Outbox(HOOK, now=lambda: T0)
        later = T0 + timedelta(minutes=5)
        paused = await control.control(database, campaign_id, "pause", events=box, now=later)
        assert paused["state"] == "paused"
        resumed = await control.control(
            database, campaign_id, "resume", events=box, now=later + timedelta(hours=1)
        )
        assert resumed["state"] == "active"
        (row,) = await execute(database, select(campaigns).where(campaigns.c.id == campaign_id))
        # Pacing starts again from the resume: no burst for the hour paused.
        assert queries._utc(row.next_dial_at) == later + timedelta(hours=1)
        cancelled = await control.control(
            database, campaign_id, "cancel", events=box, now=later + timedelta(hours=2)
        )
        assert cancelled["state"] == "cancelled"
        assert cancelled["counts"]["cancelled"] == 2
        # Nothing was in progress: finished at once.
        assert cancelled["finished_at"] == "2026-03-02T19:05:00Z"
        bodies = [
            json.loads(body)
            for (body,) in await execute(
                database,
                select(event_outbox.c.body)
                .where(event_outbox.c.body.contains(campaign_id))
                .order_by(event_outbox.c.created_at, event_outbox.c.id),
            )
        ]
        assert sorted(body["type"] for body in bodies) == [
            "campaign.cancelled",
            "campaign.paused",
            "campaign.resumed",
        ]
        cancel = next(body for body in bodies if body["type"] == "campaign.cancelled")
        assert cancel["data"] == {
            "campaign_id": campaign_id,
            "name": "ctl",
            "state": "cancelled",
            "recipients_cancelled": 2,
        }

    with_database(database_url, work)


def test_cancel_lets_calls_in_progress_finish(database_url: str) -> None:
    async def work(database: Database) -> None:
        campaign_id = await new_campaign(database, ["+14155550101", "+14155550102"])
        await execute(
            database,
            update(campaign_recipients)
            .where(campaign_recipients.c.campaign_id == campaign_id)
            .where(campaign_recipients.c.phone == "+14155550101")
            .values(state="dialing", claimed_by="w1"),
        )
        shown = await control.control(database, campaign_id, "cancel", events=None, now=T0)
        assert shown["counts"]["dialing"] == 1 and shown["counts"]["cancelled"] == 1
        assert shown["finished_at"] is None and shown["remaining"] == 1

    with_database(database_url, work)


@pytest.mark.parametrize(
    ("first", "then", "state"),
    [
        (None, "resume", "active"),
        ("pause", "pause", "paused"),
        ("cancel", "resume", "cancelled"),
        ("cancel", "cancel", "cancelled"),
    ],
)
def test_transitions_the_state_forbids(
    database_url: str, first: control.Action | None, then: control.Action, state: str
) -> None:
    async def work(database: Database) -> None:
        campaign_id = await new_campaign(database, ["+14155550101"])
        if first:
            await control.control(database, campaign_id, first, events=None, now=T0)
        with pytest.raises(control.Conflict) as raised:
            await control.control(database, campaign_id, then, events=None, now=T0)
        assert raised.value.state == state
        assert f"it is {state}" in raised.value.message

    with_database(database_url, work)


def test_two_pauses_at_once_one_wins(database_url: str) -> None:
    async def work(database: Database) -> None:
        campaign_id = await new_campaign(database, ["+14155550101"])
        results = await asyncio.gather(
            *(
                control.control(database, campaign_id, "pause", events=None, now=T0)
                for _ in range(2)
            ),
            return_exceptions=True,
        )
        assert sorted(type(result).__name__ for result in results) == ["Conflict", "dict"]

    with_database(database_url, work)


def test_eta_is_the_waiting_recipients_at_the_rate(database_url: str) -> None:
    async def work(database: Database) -> None:
        campaign_id = await new_campaign(
            database, [f"+1415555{n:04d}" for n in range(10)], rate=2.0
        )
        shown = await queries.find_campaign(database, campaign_id, T0)
        assert shown is not None
        assert shown["eta"] == "2026-03-02T17:00:05Z"
        later = await queries.find_campaign(database, campaign_id, T0 + timedelta(minutes=1))
        assert later is not None and later["eta"] == "2026-03-02T17:01:05Z"

    with_database(database_url, work)
