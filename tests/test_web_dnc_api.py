"""POST /dnc, GET /dnc (pages), GET and DELETE /dnc/{number}, POST /dnc/import, on
SQLite and PostgreSQL; adding a number stops its waiting campaign calls."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select

import bridge.app
from bridge.campaigns.options import CampaignOptions
from bridge.campaigns.store import NewRecipient, create_campaign
from bridge.secret import Secret
from bridge.storage.database import Database
from bridge.storage.tables import (
    campaign_attempts,
    campaign_recipients,
    campaigns,
    do_not_call,
    event_deliveries,
    event_outbox,
)
from tests.helpers import API_TOKEN, BEARER, make_settings

pytestmark = pytest.mark.anyio
T0 = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)
A, B, C = "+14155550121", "+14155550122", "+14155550123"


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[tuple[Database, httpx.AsyncClient]]:
    settings = make_settings(bridge_api_token=Secret(API_TOKEN), database_url=database_url)
    app = bridge.app.create_app(settings)
    database: Database = app.state.database
    engine = await database.engine()
    async with engine.begin() as connection:  # PostgreSQL is shared: start empty
        for table in (do_not_call, campaign_attempts, campaign_recipients, campaigns):
            await connection.execute(delete(table))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bridge.test", headers=BEARER
    ) as client:
        yield database, client
    await database.dispose()


async def waiting_campaign(database: Database, *numbers: str) -> None:
    engine = await database.engine()
    async with engine.begin() as connection:
        await create_campaign(
            connection,
            name="reminders",
            agent_id=None,
            options=CampaignOptions(),
            recipients=[
                NewRecipient(line=line, phone=number) for line, number in enumerate(numbers, 2)
            ],
            now=T0,
        )


async def recipient_states(database: Database) -> dict[str, str]:
    engine = await database.engine()
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(campaign_recipients.c.phone, campaign_recipients.c.state)
        )
        return {phone: state for phone, state in rows}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/dnc"),
        ("GET", "/dnc"),
        ("GET", f"/dnc/{A}"),
        ("DELETE", f"/dnc/{A}"),
        ("POST", "/dnc/import"),
    ],
)
async def test_every_route_needs_the_bearer_token(
    api: tuple[Database, httpx.AsyncClient], method: str, path: str
) -> None:
    _, client = api
    response = await client.request(method, path, headers={"authorization": "Bearer wrong"})
    assert response.status_code == 401
    assert response.json() == {"error": "Missing or invalid bearer token."}


async def test_add_show_list_and_remove(api: tuple[Database, httpx.AsyncClient]) -> None:
    database, client = api
    await waiting_campaign(database, A, B)
    response = await client.post("/dnc", json={"number": "+1 (415) 555-0121", "reason": "email"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["created_at"].endswith("+00:00")
    assert {k: v for k, v in body.items() if k != "created_at"} == {
        "number": A,
        "reason": "email",
        "source": "api",
        "added": True,
        "stopped_campaign_calls": 1,
    }
    assert await recipient_states(database) == {A: "do_not_call", B: "pending"}
    again = await client.post("/dnc", json={"number": A, "reason": "other", "source": "cli"})
    assert again.status_code == 200
    assert (again.json()["added"], again.json()["reason"]) == (False, "email")

    shown = await client.get(f"/dnc/{A}")
    assert (shown.status_code, shown.json()["reason"]) == (200, "email")
    listed = (await client.get("/dnc")).json()
    assert [item["number"] for item in listed["numbers"]] == [A]
    assert listed["next_cursor"] is None

    removed = await client.delete("/dnc/+1%20415%20555%200121")
    assert removed.json() == {"number": A, "removed": True}
    gone = await client.delete(f"/dnc/{A}")
    assert gone.status_code == 404
    assert gone.json() == {"error": f"{A} is not on the do-not-call list."}
    assert (await client.get(f"/dnc/{A}")).status_code == 404
    assert (await client.get("/dnc/nonsense")).status_code == 404
    # Off the list, the recipient already stopped stays stopped (a final state).
    assert (await recipient_states(database))[A] == "do_not_call"


@pytest.mark.parametrize(
    ("body", "fields", "words"),
    [
        ({}, ["number"], "number: required"),
        ({"number": "14155550121"}, ["number"], "did you mean +14155550121?"),
        ({"number": A, "reason": "x" * 501}, ["reason"], "at most 500"),
        ({"number": A, "source": "opt_out"}, ["source"], "'api' or 'cli'"),
        ({"number": A, "colour": "red"}, ["colour"], "unknown field"),
    ],
)
async def test_a_bad_entry_is_422_naming_the_field(
    api: tuple[Database, httpx.AsyncClient], body: dict[str, Any], fields: list[str], words: str
) -> None:
    _, client = api
    response = await client.post("/dnc", json=body)
    assert response.status_code == 422
    found = response.json()
    assert [item["field"] for item in found["problems"]] == fields
    assert words in found["error"]


async def test_not_json_is_400(api: tuple[Database, httpx.AsyncClient]) -> None:
    _, client = api
    response = await client.post("/dnc", content=b"number=+14155550121")
    assert response.status_code == 400


async def test_pages_with_a_cursor_and_filters(api: tuple[Database, httpx.AsyncClient]) -> None:
    _, client = api
    numbers = [f"+1415555{n:04d}" for n in range(5)]
    for number in numbers:
        await client.post("/dnc", json={"number": number, "source": "cli"})
    await client.post("/dnc", json={"number": "+14155559999"})
    first = (await client.get("/dnc", params={"limit": "2", "source": "cli"})).json()
    second = (
        await client.get(
            "/dnc", params={"limit": "2", "source": "cli", "cursor": first["next_cursor"]}
        )
    ).json()
    third = (
        await client.get(
            "/dnc", params={"limit": "2", "source": "cli", "cursor": second["next_cursor"]}
        )
    ).json()
    listed = [item["number"] for page in (first, second, third) for item in page["numbers"]]
    assert listed == numbers
    assert third["next_cursor"] is None
    assert len((await client.get("/dnc")).json()["numbers"]) == 6


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"source": "fax"}, "source"),
        ({"cursor": "not-ours"}, "cursor"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_a_bad_filter_is_400_naming_the_field(
    api: tuple[Database, httpx.AsyncClient], params: dict[str, str], field: str
) -> None:
    _, client = api
    response = await client.get("/dnc", params=params)
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert response.json()["error"].startswith(f"{field}: ")


async def test_import_a_csv_body(api: tuple[Database, httpx.AsyncClient]) -> None:
    database, client = api
    await waiting_campaign(database, B, C)
    await client.post("/dnc", json={"number": A})
    csv = (
        "number,reason\n+14155550121,again\n+1 415 555 0122,by letter\n555-0199,\n\n+14155550123,\n"
    )
    response = await client.post(
        "/dnc/import", content=csv.encode(), headers={"content-type": "text/csv"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "added": 2,
        "already_listed": 1,
        "invalid": 1,
        "stopped_campaign_calls": 2,
        "problems": [
            {
                "line": 4,
                "number": "555-0199",
                "problem": "'555-0199' is not an E.164 number like +14155550123",
            }
        ],
    }
    assert await recipient_states(database) == {B: "do_not_call", C: "do_not_call"}
    shown = (await client.get("/dnc/+14155550122")).json()
    assert (shown["reason"], shown["source"]) == ("by letter", "import")


async def test_import_a_file_that_cannot_be_used_is_422(
    api: tuple[Database, httpx.AsyncClient],
) -> None:
    _, client = api
    response = await client.post(
        "/dnc/import", content=b"name\nSam\n", headers={"content-type": "text/csv"}
    )
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "file"
    assert "no 'number' (or 'phone') column" in response.json()["error"]


async def test_import_as_a_form_upload(api: tuple[Database, httpx.AsyncClient]) -> None:
    _, client = api
    response = await client.post(
        "/dnc/import", files={"file": ("dnc.csv", b"phone\n+14155550121\n", "text/csv")}
    )
    if not any(importlib.util.find_spec(name) for name in ("python_multipart", "multipart")):
        # Starlette reads forms only with python-multipart: the answer says what to do.
        assert response.status_code == 415
        assert "Content-Type: text/csv" in response.json()["error"]
        return
    assert response.status_code == 200, response.text
    assert response.json()["added"] == 1


async def test_stopped_recipients_are_announced_as_the_worker_does(database_url: str) -> None:
    settings = make_settings(
        bridge_api_token=Secret(API_TOKEN),
        database_url=database_url,
        events_webhook_urls=("https://crm.example/hook",),
    )
    app = bridge.app.create_app(settings)
    database: Database = app.state.database
    engine = await database.engine()
    async with engine.begin() as connection:
        for table in (
            event_deliveries,
            event_outbox,
            do_not_call,
            campaign_attempts,
            campaign_recipients,
            campaigns,
        ):
            await connection.execute(delete(table))
    await waiting_campaign(database, A, B)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bridge.test", headers=BEARER
    ) as client:
        assert (await client.post("/dnc", json={"number": A, "reason": "email"})).status_code == 201
        await client.post(
            "/dnc/import",
            content=f"number\n{A}\n{B}\n".encode(),
            headers={"content-type": "text/csv"},
        )
    async with engine.connect() as connection:
        rows = list(
            await connection.execute(
                select(
                    event_outbox.c.type, event_outbox.c.dedupe_key, event_outbox.c.body
                ).order_by(event_outbox.c.created_at)
            )
        )
        ids = dict(
            (phone, recipient_id)
            for recipient_id, phone in await connection.execute(
                select(campaign_recipients.c.id, campaign_recipients.c.phone)
            )
        )
    await database.dispose()
    assert [(kind, key) for kind, key, _ in rows] == [
        ("campaign.recipient.finished", f"campaign.recipient.finished:{ids[A]}"),
        ("campaign.recipient.finished", f"campaign.recipient.finished:{ids[B]}"),
    ]
    data = json.loads(rows[0].body)["data"]
    assert data == {
        "campaign_id": data["campaign_id"],
        "recipient_id": ids[A],
        "external_id": None,
        "phone": A,
        "state": "do_not_call",
        "attempts": 0,
        "call_sid": None,
        "call_successful": None,
        "error": "on the do-not-call list: email",
    }
