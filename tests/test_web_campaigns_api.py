"""The campaigns API in process (Starlette TestClient), on SQLite and PostgreSQL:
POST /campaigns from JSON, text/csv and multipart, bad rows and options, the
Idempotency-Key, reading campaigns and recipients, results.csv, pause/resume/cancel."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update
from starlette.testclient import TestClient

from bridge.app import create_app
from bridge.campaigns.store import opened_variables
from bridge.secret import Secret
from bridge.storage.tables import calls, campaign_recipients, do_not_call, idempotency_keys
from tests.helpers import (
    API_TOKEN,
    BEARER,
    SECRET_PIN,
    california,
    make_settings,
    without_campaign_worker,
)

AGENT = "agent_campaign"


def number(n: int) -> str:
    """A distinct California number per call, so tests sharing PostgreSQL never collide."""
    return california() if n < 0 else f"+14155550{n:03d}"


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    settings = make_settings(
        bridge_api_token=Secret(API_TOKEN), database_url=database_url, **without_campaign_worker()
    )
    with TestClient(create_app(settings), headers=BEARER) as test_client:
        yield test_client


def run(client: TestClient, statement: Any) -> None:
    async def go() -> None:
        engine = await client.app.state.database.engine()  # type: ignore[attr-defined]
        async with engine.begin() as connection:
            await connection.execute(statement)

    client.portal.call(go)  # type: ignore[union-attr]


def unique_numbers(count: int) -> list[str]:
    return [number(-1) for _ in range(count)]


def post_json(client: TestClient, body: dict[str, Any], **kwargs: Any) -> Any:
    return client.post("/campaigns", json=body, **kwargs)


def test_a_json_campaign_reports_bad_rows_duplicates_and_listed_numbers(
    client: TestClient,
) -> None:
    good, listed, again = unique_numbers(3)
    run(
        client,
        insert(do_not_call).values(
            number=listed, reason="asked", source="api", created_at=datetime.now(UTC)
        ),
    )
    recipients = [
        {"phone": good, "variables": {"name": "Ada", "secret__pin": SECRET_PIN}, "id": "crm-1"},
        {"phone": "4155550100"},
        {"phone": listed},
        {"phone": good},
        {"phone": again, "variables": {"n": [1]}},
        "+14155550199",
        {"phone": again, "colour": "blue"},
    ]
    answer = post_json(client, {"name": "march", "agent_id": AGENT, "recipients": recipients})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["id"].startswith("cmp_") and body["state"] == "active"
    assert (body["accepted"], body["do_not_call"]) == (2, 1)
    assert body["counts"]["pending"] == 1 and body["counts"]["do_not_call"] == 1
    invalid = {item["index"]: item["error"] for item in body["invalid"]}
    assert set(invalid) == {1, 4, 5, 6}
    assert invalid[1].startswith("phone: phone '4155550100' is not an E.164 number")
    assert invalid[4] == "variables.n: must be a string, a finite number, a boolean or null"
    assert invalid[5].startswith("must be an object")
    assert invalid[6] == "unknown field(s): colour"
    assert body["duplicates"] == [{"index": 3, "phone": good, "error": "duplicate of index 0"}]

    recipients_page = client.get(f"/campaigns/{body['id']}/recipients").json()["recipients"]
    assert [(r["phone"], r["state"]) for r in recipients_page] == [
        (good, "pending"),
        (listed, "do_not_call"),
    ]
    first = recipients_page[0]
    assert first["variables"] == {"name": "Ada", "secret__pin": "***"}
    assert first["external_id"] == "crm-1" and first["time_zones"] == ["America/Los_Angeles"]
    assert recipients_page[1]["error"] == "on the do-not-call list: asked"
    assert SECRET_PIN not in client.get(f"/campaigns/{body['id']}").text


def test_a_csv_campaign_as_text_csv_and_as_multipart(client: TestClient) -> None:
    a, b = unique_numbers(2)
    data = f"phone,name\n{a},Ada\nnope,Bad\n\n{b},Grace\n{a},Again\n".encode()
    options = json.dumps({"rate": 2, "timezone": "Europe/Paris"})
    answer = client.post(
        "/campaigns",
        params={"name": "csv", "options": options, "mode": "elevenlabs"},
        content=data,
        headers={"content-type": "text/csv"},
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["accepted"] == 2 and body["mode"] == "elevenlabs"
    assert [item["line"] for item in body["invalid"]] == [3]
    assert body["duplicates"] == [{"line": 6, "phone": a, "error": "duplicate of line 2"}]
    shown = client.get(f"/campaigns/{body['id']}").json()
    assert shown["options"]["rate"] == 2 and shown["options"]["mode"] == "elevenlabs"
    page = client.get(f"/campaigns/{body['id']}/recipients").json()["recipients"]
    assert [(r["line"], r["variables"], r["time_zones"]) for r in page] == [
        (2, {"name": "Ada"}, ["Europe/Paris"]),
        (5, {"name": "Grace"}, ["Europe/Paris"]),
    ]

    answer = client.post(
        "/campaigns",
        data={"name": "upload", "options": json.dumps({"max_in_flight": 3})},
        files={"file": ("contacts.csv", data, "text/csv")},
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["accepted"] == 2 and answer.json()["name"] == "upload"


@pytest.mark.parametrize(
    ("send", "status", "fields"),
    [
        ({"json": {"name": "x", "recipients": [{"phone": "nope"}]}}, 422, ["recipients"]),
        ({"json": {"name": "x", "recipients": []}}, 422, ["recipients"]),
        ({"json": {"recipients": [{"phone": "+14155550100"}]}}, 422, ["name"]),
        (
            {
                "json": {
                    "name": "x",
                    "recipients": [{"phone": "+14155550100"}],
                    "options": {"calling_hours": {"open": "07:00"}, "rate": 0},
                }
            },
            422,
            ["options.rate"],
        ),
        (
            {
                "json": {
                    "name": "x",
                    "mode": "sip",
                    "options": {"mode": "twilio"},
                    "recipients": [{"phone": "+14155550100"}],
                }
            },
            422,
            ["mode"],
        ),
        (
            {
                "content": b"name,number\nAda,+1\n",
                "headers": {"content-type": "text/csv"},
                "params": {"name": "x"},
            },
            422,
            ["file"],
        ),
        (
            {
                "content": b"phone\n+14155550100\n",
                "headers": {"content-type": "text/csv"},
                "params": {"name": "x", "rate": "2"},
            },
            422,
            ["rate"],
        ),
        (
            {"files": {"other": ("a.csv", b"phone\n", "text/csv")}, "data": {"name": "x"}},
            422,
            ["file"],
        ),
        ({"content": b"<xml/>", "headers": {"content-type": "application/xml"}}, 415, None),
        ({"content": b"[1]", "headers": {"content-type": "application/json"}}, 400, None),
    ],
)
def test_bad_campaigns_are_refused_naming_the_field(
    client: TestClient, send: dict[str, Any], status: int, fields: list[str] | None
) -> None:
    answer = client.post("/campaigns", **send)
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["error"]
    if fields is not None:
        assert [problem["field"] for problem in body["problems"]][: len(fields)] == fields
        assert body["error"].startswith("Invalid request: ")


def test_the_legal_hours_rule_is_named(client: TestClient) -> None:
    answer = post_json(
        client,
        {
            "name": "x",
            "recipients": [{"phone": "+14155550100"}],
            "options": {"calling_hours": {"open": "07:00"}},
        },
    )
    assert answer.status_code == 422
    assert "08:00-21:00" in answer.json()["error"]


def test_a_campaign_with_no_valid_row_reports_its_rows(client: TestClient) -> None:
    data = b"phone\n12\n\n+999\n"
    answer = client.post(
        "/campaigns", params={"name": "x"}, content=data, headers={"content-type": "text/csv"}
    )
    assert answer.status_code == 422
    body = answer.json()
    assert body["problems"] == [{"field": "recipients", "problem": "no valid recipient"}]
    assert [item["line"] for item in body["invalid"]] == [2, 4]


def test_every_route_wants_the_token(client: TestClient) -> None:
    for method, path in [
        ("POST", "/campaigns"),
        ("GET", "/campaigns"),
        ("GET", "/campaigns/cmp_x"),
        ("GET", "/campaigns/cmp_x/recipients"),
        ("GET", "/campaigns/cmp_x/results.csv"),
        ("POST", "/campaigns/cmp_x/pause"),
        ("POST", "/campaigns/cmp_x/resume"),
        ("POST", "/campaigns/cmp_x/cancel"),
    ]:
        answer = client.request(method, path, headers={"authorization": "Bearer wrong"})
        assert answer.status_code == 401, (method, path)


def test_unknown_campaigns_are_404(client: TestClient) -> None:
    for odd in ("cmp_%00x", "cmp_" + "x" * 40):
        assert client.get(f"/campaigns/{odd}").status_code == 404
        assert client.post(f"/campaigns/{odd}/cancel").status_code == 404
    for method, path in [
        ("GET", "/campaigns/cmp_nope"),
        ("GET", "/campaigns/cmp_nope/recipients"),
        ("GET", "/campaigns/cmp_nope/results.csv"),
        ("POST", "/campaigns/cmp_nope/pause"),
        ("POST", "/campaigns/cmp_nope/cancel"),
    ]:
        answer = client.request(method, path)
        assert answer.status_code == 404, (method, path)
        assert answer.json() == {"error": "No campaign 'cmp_nope'."}


def test_idempotency_key_replays_and_refuses_another_body(client: TestClient) -> None:
    key = {"idempotency-key": uuid.uuid4().hex}
    body = {"name": "once", "recipients": [{"phone": number(-1)}]}
    first = post_json(client, body, headers=key)
    again = post_json(client, body, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    other = post_json(client, {**body, "name": "twice"}, headers=key)
    assert other.status_code == 422
    assert "different request" in other.json()["error"]
    # A refused campaign leaves its key free.
    refused_key = {"idempotency-key": uuid.uuid4().hex}
    bad = {"name": "bad", "recipients": [{"phone": "x"}]}
    assert post_json(client, bad, headers=refused_key).status_code == 422
    good = {"name": "bad", "recipients": [{"phone": number(-1)}]}
    assert post_json(client, good, headers=refused_key).status_code == 201
    # And a CSV upload is keyed by its bytes.
    csv_key = {"idempotency-key": uuid.uuid4().hex, "content-type": "text/csv"}
    data = f"phone\n{number(-1)}\n".encode()
    one = client.post("/campaigns", params={"name": "c"}, content=data, headers=csv_key)
    two = client.post("/campaigns", params={"name": "c"}, content=data, headers=csv_key)
    assert one.json()["id"] == two.json()["id"]
    three = client.post(
        "/campaigns", params={"name": "c"}, content=data + b"+14155550100\n", headers=csv_key
    )
    assert three.status_code == 422


def test_recipients_filter_by_state_and_page_with_a_cursor(client: TestClient) -> None:
    numbers = unique_numbers(5)
    made = post_json(client, {"name": "pages", "recipients": [{"phone": n} for n in numbers]})
    campaign_id = made.json()["id"]
    run(
        client,
        update(campaign_recipients)
        .where(campaign_recipients.c.phone.in_(numbers[:2]))
        .where(campaign_recipients.c.campaign_id == campaign_id)
        .values(state="busy", attempts=1, outcome="busy"),
    )
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = client.get(f"/campaigns/{campaign_id}/recipients", params=params).json()
        seen += [item["phone"] for item in page["recipients"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == numbers
    busy = client.get(f"/campaigns/{campaign_id}/recipients", params={"state": "busy"}).json()
    assert [item["phone"] for item in busy["recipients"]] == numbers[:2]
    shown = client.get(f"/campaigns/{campaign_id}").json()
    assert shown["counts"]["busy"] == 2 and shown["counts"]["pending"] == 3
    assert shown["remaining"] == 3 and shown["eta"] is not None
    for params, field in [
        ({"state": "nope"}, "state"),
        ({"limit": "0"}, "limit"),
        ({"cursor": "!!"}, "cursor"),
        ({"cursor": "Im5vIg"}, "cursor"),
    ]:
        answer = client.get(f"/campaigns/{campaign_id}/recipients", params=params)
        assert answer.status_code == 400 and answer.json()["field"] == field


def test_list_campaigns_newest_first_by_state_with_a_cursor(client: TestClient) -> None:
    ids = [
        post_json(client, {"name": f"list {i}", "recipients": [{"phone": number(-1)}]}).json()["id"]
        for i in range(3)
    ]
    client.post(f"/campaigns/{ids[1]}/pause")
    found: list[str] = []
    cursor = None
    for _ in range(100):
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = client.get("/campaigns", params=params).json()
        found += [item["id"] for item in page["campaigns"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    mine = [campaign_id for campaign_id in found if campaign_id in ids]
    assert mine == ids[::-1]
    paused = client.get("/campaigns", params={"state": "paused", "limit": "500"}).json()
    assert ids[1] in [item["id"] for item in paused["campaigns"]]
    assert not {ids[0], ids[2]} & {item["id"] for item in paused["campaigns"]}
    assert client.get("/campaigns", params={"state": "x"}).status_code == 400


def test_pause_resume_cancel_and_conflicts(client: TestClient) -> None:
    numbers = unique_numbers(3)
    campaign_id = post_json(
        client, {"name": "ctl", "recipients": [{"phone": n} for n in numbers]}
    ).json()["id"]
    run(
        client,
        update(campaign_recipients)
        .where(campaign_recipients.c.campaign_id == campaign_id)
        .where(campaign_recipients.c.phone == numbers[0])
        .values(state="in_progress", attempts=1, call_sid="CA" + uuid.uuid4().hex),
    )
    assert client.post(f"/campaigns/{campaign_id}/resume").status_code == 409
    paused = client.post(f"/campaigns/{campaign_id}/pause")
    assert paused.status_code == 200 and paused.json()["state"] == "paused"
    again = client.post(f"/campaigns/{campaign_id}/pause")
    assert again.status_code == 409
    assert again.json() == {
        "error": f"Cannot pause campaign {campaign_id!r}: it is paused (only a campaign that "
        "is active can be paused).",
        "state": "paused",
    }
    assert client.post(f"/campaigns/{campaign_id}/resume").json()["state"] == "active"
    cancelled = client.post(f"/campaigns/{campaign_id}/cancel").json()
    assert cancelled["state"] == "cancelled"
    assert cancelled["counts"]["cancelled"] == 2 and cancelled["counts"]["in_progress"] == 1
    assert cancelled["finished_at"] is None  # the call in progress finishes first
    assert cancelled["eta"] is None
    for action in ("pause", "resume", "cancel"):
        assert client.post(f"/campaigns/{campaign_id}/{action}").status_code == 409


def test_results_csv_has_every_recipient_with_call_successful(client: TestClient) -> None:
    numbers = unique_numbers(2)
    recipients = [{"phone": numbers[0], "id": "=cmd()"}, {"phone": numbers[1]}, {"phone": "x"}]
    campaign_id = post_json(client, {"name": "res", "recipients": recipients}).json()["id"]
    sid = "CA" + uuid.uuid4().hex
    now = datetime.now(UTC)
    run(
        client,
        insert(calls).values(
            id=uuid.uuid4().hex,
            call_sid=sid,
            direction="outbound",
            created_at=now,
            status="completed",
            status_rank=4,
            call_successful="success",
        ),
    )
    run(
        client,
        update(campaign_recipients)
        .where(campaign_recipients.c.campaign_id == campaign_id)
        .where(campaign_recipients.c.phone == numbers[0])
        .values(state="completed", attempts=1, outcome="completed", call_sid=sid, finished_at=now),
    )
    answer = client.get(f"/campaigns/{campaign_id}/results.csv")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["cache-control"] == "no-store"
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [(r["line"], r["id"], r["phone"], r["state"], r["call_successful"]) for r in rows] == [
        ("1", "'=cmd()", numbers[0], "completed", "success"),
        ("2", "", numbers[1], "pending", ""),
    ]
    assert rows[0]["call_sid"] == sid and rows[0]["attempts"] == "1"


def test_times_follow_the_clock_the_app_is_given(client: TestClient) -> None:
    now = [datetime(2026, 3, 2, 16, 0, tzinfo=UTC)]
    client.app.state.campaign_clock = lambda: now[0]  # type: ignore[attr-defined]
    later = "2026-03-03T17:00:00Z"
    body = {
        "name": "clocked",
        "recipients": [{"phone": p} for p in unique_numbers(4)],
        "options": {"rate": 0.5, "start_at": later},
    }
    made = post_json(client, body).json()
    assert made["created_at"] == "2026-03-02T16:00:00Z" and made["start_at"] == later
    # Four numbers at one every two seconds, from the start.
    assert made["eta"] == "2026-03-03T17:00:08Z"
    now[0] = datetime(2026, 3, 3, 18, 0, tzinfo=UTC)
    shown = client.get(f"/campaigns/{made['id']}").json()
    assert shown["eta"] == "2026-03-03T18:00:08Z"
    paused = client.post(f"/campaigns/{made['id']}/pause").json()
    assert paused["updated_at"] == "2026-03-03T18:00:00Z" and paused["eta"] is None
    page = client.get(f"/campaigns/{made['id']}/recipients").json()["recipients"]
    assert {item["next_attempt_at"] for item in page} == {later}


def test_a_retry_after_a_lost_answer_finds_the_campaign_not_a_twin(client: TestClient) -> None:
    key = uuid.uuid4().hex
    body = {"name": "lost", "recipients": [{"phone": number(-1)}, {"phone": "bad"}]}
    first = post_json(client, body, headers={"idempotency-key": key})
    assert first.status_code == 201
    # The bridge stopped after writing the campaign, before it kept the answer: the key
    # is free again, as after an interruption.
    run(client, delete(idempotency_keys).where(idempotency_keys.c.key == key))
    again = post_json(client, body, headers={"idempotency-key": key})
    assert again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["invalid_count"] == 1
    page = client.get(f"/campaigns/{first.json()['id']}/recipients").json()["recipients"]
    assert len(page) == 1


def test_secret_variables_are_stored_sealed(client: TestClient) -> None:
    (phone,) = unique_numbers(1)
    body = {
        "name": "sealed",
        "agent_id": AGENT,
        "recipients": [{"phone": phone, "variables": {"name": "Ada", "secret__pin": SECRET_PIN}}],
    }
    answer = post_json(client, body)
    assert answer.status_code == 201, answer.text

    async def stored() -> Any:
        engine = await client.app.state.database.engine()  # type: ignore[attr-defined]
        async with engine.connect() as connection:
            return await connection.scalar(
                select(campaign_recipients.c.variables).where(
                    campaign_recipients.c.campaign_id == answer.json()["id"]
                )
            )

    variables = client.portal.call(stored)  # type: ignore[union-attr]
    assert variables["name"] == "Ada"
    assert SECRET_PIN not in json.dumps(variables)
    sealer = client.app.state.sealer  # type: ignore[attr-defined]
    assert opened_variables(variables, sealer) == {"name": "Ada", "secret__pin": SECRET_PIN}
