"""GET /events (filters, cursor pages, 400 naming the field) and
POST /events/{id}/redeliver on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, insert, select, update

import bridge.app
from bridge.events.listing import encode_cursor, shown_endpoint
from bridge.events.outbox import Outbox
from bridge.secret import Secret
from bridge.storage.database import Database
from bridge.storage.tables import event_deliveries, event_endpoints, event_outbox
from tests.helpers import API_TOKEN, BEARER, make_settings

pytestmark = pytest.mark.anyio
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOOK = "https://crm.example/hook?token=abc"


async def empty_outbox(database: Database) -> None:
    """The PostgreSQL database is shared by this process's tests: start from nothing."""
    engine = await database.engine()
    async with engine.begin() as connection:
        await connection.execute(delete(event_endpoints))
        await connection.execute(delete(event_deliveries))
        await connection.execute(delete(event_outbox))


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[tuple[Database, httpx.AsyncClient]]:
    settings = make_settings(bridge_api_token=Secret(API_TOKEN), database_url=database_url)
    app = bridge.app.create_app(settings)
    database: Database = app.state.database
    await empty_outbox(database)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bridge.test", headers=BEARER
    ) as client:
        yield database, client
    await database.dispose()


async def add(database: Database, event_type: str, minute: int, **data: Any) -> str:
    box = Outbox((HOOK,), now=lambda: T0 + timedelta(minutes=minute))
    engine = await database.engine()
    async with engine.begin() as connection:
        found = await box.enqueue(connection, event_type, data, dedupe_key=uuid.uuid4().hex)
    assert found is not None
    return found


async def set_status(database: Database, event_id: str, status: str) -> None:
    engine = await database.engine()
    async with engine.begin() as connection:
        await connection.execute(
            update(event_deliveries)
            .where(event_deliveries.c.event_id == event_id)
            .values(status=status, attempts=3, last_error="HTTP 500", last_status=500)
        )


async def test_events_are_listed_newest_first_with_filters_and_pages(
    api: tuple[Database, httpx.AsyncClient],
) -> None:
    database, client = api
    a = await add(database, "call.completed", 0, call_sid="CA1")
    b = await add(database, "call.failed", 1, call_sid="CA2")
    c = await add(database, "call.completed", 2, call_sid="CA3")
    await set_status(database, b, "failed")

    async def ids(**params: str) -> list[str]:
        response = await client.get("/events", params=params)
        assert response.status_code == 200, response.text
        return [event["id"] for event in response.json()["events"]]

    assert await ids() == [c, b, a]
    assert await ids(type="call.completed") == [c, a]
    assert await ids(status="failed") == [b]
    assert await ids(status="pending") == [c, a]
    first = (await client.get("/events", params={"limit": "2"})).json()
    assert [event["id"] for event in first["events"]] == [c, b]
    assert await ids(cursor=first["next_cursor"]) == [a]
    event = first["events"][1]
    assert event["type"] == "call.failed"
    assert event["body"]["data"] == {"call_sid": "CA2"}
    assert event["created_at"] == "2026-03-01T12:01:00+00:00"
    assert event["deliveries"] == [
        {
            "endpoint": "https://crm.example/hook",  # without its query (a token)
            "status": "failed",
            "attempts": 3,
            "last_status": 500,
            "last_error": "HTTP 500",
            "next_attempt_at": None,
            "delivered_at": None,
        }
    ]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "lost"}, "status"),
        ({"type": "call.exploded"}, "type"),
        ({"limit": "0"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"cursor": "not-ours"}, "cursor"),
        ({"cursor": encode_cursor(T0, "evt_1")[:-2] + "!!"}, "cursor"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_a_bad_filter_is_400_naming_the_field(
    api: tuple[Database, httpx.AsyncClient], params: dict[str, str], field: str
) -> None:
    _, client = api
    response = await client.get("/events", params=params)
    assert response.status_code == 400
    assert response.json()["field"] == field


async def test_a_cursor_of_another_shape_is_400(api: tuple[Database, httpx.AsyncClient]) -> None:
    import base64

    _, client = api
    odd = base64.urlsafe_b64encode(b'{"t":"2026-01-01T00:00:00","id":5}').decode()
    response = await client.get("/events", params={"cursor": odd})
    assert (response.status_code, response.json()["field"]) == (400, "cursor")


async def test_events_need_the_token(api: tuple[Database, httpx.AsyncClient]) -> None:
    _, client = api
    assert (await client.get("/events", headers={"authorization": ""})).status_code == 401
    response = await client.post("/events/evt_1/redeliver", headers={"authorization": ""})
    assert response.status_code == 401


async def test_redeliver_puts_an_event_back_to_pending_now(
    api: tuple[Database, httpx.AsyncClient],
) -> None:
    database, client = api
    event_id = await add(database, "call.fallback", 0)
    await set_status(database, event_id, "failed")
    response = await client.post(f"/events/{event_id}/redeliver")
    assert (response.status_code, response.json()) == (
        202,
        {"id": event_id, "status": "pending"},
    )
    engine = await database.engine()
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                select(event_deliveries).where(event_deliveries.c.event_id == event_id)
            )
        ).one()
    assert (row.status, row.attempts) == ("pending", 0)
    assert row.next_attempt_at.replace(tzinfo=UTC) <= datetime.now(UTC)


@pytest.mark.parametrize("event_id", ["evt_nothing", "x" * 41])
async def test_redeliver_of_an_unknown_event_is_404(
    api: tuple[Database, httpx.AsyncClient], event_id: str
) -> None:
    _, client = api
    response = await client.post(f"/events/{event_id}/redeliver")
    assert response.status_code == 404
    assert "No event" in response.json()["error"]


def test_an_endpoint_is_shown_without_credentials_or_query() -> None:
    assert shown_endpoint("https://user:pw@crm.example/h?k=v#f") == "https://crm.example/h"


async def test_the_outbox_summary_shows_pending_and_disabled_endpoints(
    api: tuple[Database, httpx.AsyncClient],
) -> None:
    database, client = api
    first = await add(database, "call.completed", 0)
    await add(database, "call.fallback", 5)
    await set_status(database, first, "delivered")
    engine = await database.engine()
    async with engine.begin() as connection:
        await connection.execute(insert(event_endpoints).values(url=HOOK, disabled_at=T0))
    outbox = (await client.get("/events")).json()["outbox"]
    assert outbox["pending"] == 1
    # The oldest pending event was made at T0 + 5 min, long before now.
    expected_age = (datetime.now(UTC) - (T0 + timedelta(minutes=5))).total_seconds()
    assert abs(outbox["oldest_pending_seconds"] - expected_age) < 60
    assert outbox["disabled_endpoints"] == [
        {"endpoint": shown_endpoint(HOOK), "disabled_at": T0.isoformat()}
    ]
    assert "token=abc" not in str(outbox)


async def test_healthz_shows_the_outbox_to_the_token_holder_only(database_url: str) -> None:
    settings = make_settings(
        bridge_api_token=Secret(API_TOKEN),
        database_url=database_url,
        events_webhook_urls=(HOOK,),
        events_webhook_secrets=(Secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),),
    )
    app = bridge.app.create_app(settings)
    database: Database = app.state.database
    await empty_outbox(database)
    await add(database, "call.fallback", 0)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bridge.test"
        ) as client:
            anonymous = (await client.get("/healthz")).json()
            holder = (await client.get("/healthz", headers=BEARER)).json()
    finally:
        await database.dispose()
    assert "events" not in anonymous
    assert holder["events"]["pending"] == 1
    assert holder["events"]["disabled_endpoints"] == []
