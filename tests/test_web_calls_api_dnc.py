"""POST /calls refuses a number on the do-not-call list (403 naming the reason) and,
at OUTBOUND_MAX_CONCURRENT_CALLS, answers 429; POST /calls/opt-out (the agent's
server tool) lists the callee and stops their waiting campaign calls. Against the
fake Twilio and ElevenLabs APIs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, update
from starlette.testclient import TestClient

from bridge.app import create_app
from bridge.campaigns.options import CampaignOptions
from bridge.campaigns.store import NewRecipient, create_campaign
from bridge.storage.tables import calls, campaign_recipients, do_not_call
from tests.helpers import BEARER, Upstreams, outbound_settings

CALLEE = "+14155550123"
OTHER = "+14155550124"


def run(client: TestClient, query: Any) -> list[Any]:
    """`query` on the app's database, in the app's event loop."""

    async def go() -> list[Any]:
        engine = await client.app.state.database.engine()  # type: ignore[attr-defined]
        async with engine.begin() as connection:
            result = await connection.execute(query)
            return list(result) if result.returns_rows else []

    return list(client.portal.call(go))  # type: ignore[union-attr]


def campaign_of(client: TestClient, *numbers: str) -> None:
    async def go() -> None:
        engine = await client.app.state.database.engine()  # type: ignore[attr-defined]
        async with engine.begin() as connection:
            await create_campaign(
                connection,
                name="survey",
                agent_id=None,
                options=CampaignOptions(),
                recipients=[NewRecipient(line=2, phone=number) for number in numbers],
                now=datetime.now(UTC),
            )

    client.portal.call(go)  # type: ignore[union-attr]


def listed(client: TestClient, number: str, reason: str | None = "asked by email") -> None:
    run(
        client,
        insert(do_not_call).values(
            number=number, reason=reason, source="api", created_at=datetime.now(UTC)
        ),
    )


def test_a_listed_number_is_refused_with_its_reason(
    outbound_client: TestClient, upstreams: Upstreams
) -> None:
    listed(outbound_client, CALLEE)
    response = outbound_client.post(
        "/calls", json={"to": CALLEE}, headers={**BEARER, "idempotency-key": "k-1"}
    )
    assert response.status_code == 403
    assert response.json() == {
        "error": f"{CALLEE} is on the do-not-call list: asked by email",
        "placed": False,
        "do_not_call": True,
    }
    assert upstreams.dialled() == {}
    # Nothing was dialled, so the key was released: once off the list, it dials.
    run(outbound_client, do_not_call.delete())
    again = outbound_client.post(
        "/calls", json={"to": CALLEE}, headers={**BEARER, "idempotency-key": "k-1"}
    )
    assert again.status_code == 201, again.text
    assert upstreams.dialled() == {CALLEE: 1}


def test_a_listed_number_without_a_reason(
    outbound_client: TestClient, upstreams: Upstreams
) -> None:
    listed(outbound_client, CALLEE, reason=None)
    response = outbound_client.post("/calls", json={"to": CALLEE}, headers=BEARER)
    assert response.json()["error"] == f"{CALLEE} is on the do-not-call list"


def test_a_call_placed_before_its_number_was_listed_still_replays(
    outbound_client: TestClient, upstreams: Upstreams
) -> None:
    headers = {**BEARER, "idempotency-key": "k-2"}
    first = outbound_client.post("/calls", json={"to": CALLEE}, headers=headers)
    assert first.status_code == 201
    listed(outbound_client, CALLEE)
    replay = outbound_client.post("/calls", json={"to": CALLEE}, headers=headers)
    assert (replay.status_code, replay.headers.get("idempotent-replayed")) == (201, "true")
    assert replay.json() == first.json()
    assert upstreams.dialled() == {CALLEE: 1}


def test_at_the_concurrency_cap_calls_wait(tmp_path: Path, upstreams: Upstreams) -> None:
    settings = outbound_settings(tmp_path, outbound_max_concurrent_calls=1)
    with TestClient(create_app(settings, transport=upstreams.transport)) as client:
        first = client.post("/calls", json={"to": CALLEE}, headers=BEARER)
        assert first.status_code == 201
        refused = client.post("/calls", json={"to": OTHER}, headers=BEARER)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "10"
        assert refused.json() == {
            "error": (
                "The bridge has 1 calls in progress and OUTBOUND_MAX_CONCURRENT_CALLS is 1: "
                "try again when one has ended."
            ),
            "placed": False,
            "calls_in_progress": 1,
        }
        # Inbound calls with an agent count too; ended ones do not.
        run(
            client,
            update(calls)
            .where(calls.c.call_sid == first.json()["call_sid"])
            .values(status="completed", status_rank=4),
        )
        run(
            client,
            insert(calls).values(
                id=uuid.uuid4().hex,
                call_sid="CA" + "9" * 32,
                direction="inbound",
                outcome="agent",
                status="in-progress",
                status_rank=3,
                created_at=datetime.now(UTC),
            ),
        )
        assert client.post("/calls", json={"to": OTHER}, headers=BEARER).status_code == 429
        run(client, update(calls).values(status="completed", status_rank=4))
        assert client.post("/calls", json={"to": OTHER}, headers=BEARER).status_code == 201
    assert upstreams.dialled() == {CALLEE: 1, OTHER: 1}


def test_the_agent_opts_the_callee_out(outbound_client: TestClient, upstreams: Upstreams) -> None:
    campaign_of(outbound_client, CALLEE)
    call_sid = outbound_client.post("/calls", json={"to": CALLEE}, headers=BEARER).json()[
        "call_sid"
    ]
    response = outbound_client.post("/calls/opt-out", json={"call_sid": call_sid}, headers=BEARER)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "listed": True,
        "added": True,
        "number": CALLEE,
        "stopped_campaign_calls": 1,
        "message": (
            "The callee's number is on the do-not-call list and 1 scheduled campaign call(s) to "
            "it were cancelled; they will not be called again."
        ),
    }
    (entry,) = run(outbound_client, select(do_not_call))
    assert (entry.number, entry.source) == (CALLEE, "opt_out")
    assert entry.reason == f"asked not to be called again during call {call_sid}"
    (state,) = run(outbound_client, select(campaign_recipients.c.state))
    assert state == ("do_not_call",)
    shown = outbound_client.get(f"/calls/{call_sid}", headers=BEARER).json()
    assert "opted out: added to the do-not-call list" in [
        step["text"] for step in shown["timeline"]
    ]
    refused = outbound_client.post("/calls", json={"to": CALLEE}, headers=BEARER)
    assert refused.status_code == 403
    # Twice is fine: the number is listed already.
    again = outbound_client.post(
        "/calls/opt-out", json={"call_sid": call_sid, "reason": "said stop"}, headers=BEARER
    )
    assert (again.status_code, again.json()["added"]) == (200, False)
    assert "The callee's number is on the do-not-call list; they" in again.json()["message"]
    assert upstreams.dialled() == {CALLEE: 1}


def test_an_inbound_caller_opts_out_with_their_words(outbound_client: TestClient) -> None:
    call_sid = "CA" + "7" * 32
    run(
        outbound_client,
        insert(calls).values(
            id=uuid.uuid4().hex,
            call_sid=call_sid,
            direction="inbound",
            from_number=OTHER,
            to_number="+14155550100",
            created_at=datetime.now(UTC),
        ),
    )
    response = outbound_client.post(
        "/calls/opt-out",
        json={"call_sid": call_sid, "reason": "  please stop calling  "},
        headers=BEARER,
    )
    assert response.status_code == 200
    assert response.json()["number"] == OTHER
    assert response.json()["message"].startswith("The caller's number")
    (entry,) = run(outbound_client, select(do_not_call))
    assert (entry.number, entry.reason) == (OTHER, "please stop calling")


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"call_sid": "CA" + "0" * 32}, 404, "No call 'CA000"),
        ({}, 422, "call_sid: required"),
        ({"call_sid": ""}, 422, "call_sid"),
        ({"call_sid": "CA1", "colour": "red"}, 422, "colour: unknown field"),
    ],
)
def test_opt_out_refusals(
    outbound_client: TestClient, body: dict[str, Any], status: int, words: str
) -> None:
    response = outbound_client.post("/calls/opt-out", json=body, headers=BEARER)
    assert response.status_code == status
    assert words in response.json()["error"]
    assert run(outbound_client, select(do_not_call)) == []


def test_opt_out_of_an_anonymous_caller_is_422(outbound_client: TestClient) -> None:
    call_sid = "CA" + "6" * 32
    run(
        outbound_client,
        insert(calls).values(
            id=uuid.uuid4().hex,
            call_sid=call_sid,
            direction="inbound",
            from_number="anonymous",
            created_at=datetime.now(UTC),
        ),
    )
    response = outbound_client.post("/calls/opt-out", json={"call_sid": call_sid}, headers=BEARER)
    assert response.status_code == 422
    assert response.json() == {
        "error": f"Cannot opt out: the caller of call {call_sid} has no phone number.",
        "listed": False,
    }


def test_opt_out_needs_the_bearer_token(outbound_client: TestClient) -> None:
    response = outbound_client.post("/calls/opt-out", json={"call_sid": "CA1"})
    assert response.status_code == 401
