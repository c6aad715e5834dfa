"""The lookup request: signed per Standard Webhooks, bounded in time and size; every
failure is a result, never an exception."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from bridge.call import Call
from bridge.lookup.client import MAX_RESPONSE_BYTES, LookupClient, LookupResult
from bridge.lookup.request import lookup_body, message_id
from bridge.secret import Secret
from bridge.transport.factory import make_transport
from tests.helpers import answering_upstream, free_port

pytestmark = pytest.mark.anyio

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
URL = "https://crm.example/lookup"
CALL = Call(
    call_sid="CA" + "1" * 32,
    from_number="+14155550123",
    to_number="+14155550100",
    caller_name="ADA L",
    account_sid="AC1",
    geo={"FromState": "CA"},
)


async def ask(
    handler: Any, *, timeout: float = 1.0, secrets: tuple[Secret, ...] = (Secret(SECRET),)
) -> LookupResult:
    client = LookupClient(secrets=secrets, transport=httpx.MockTransport(handler))
    body = lookup_body(CALL, rule="sales", agent_id="agent_1", direction="inbound")
    return await client.lookup(URL, body, message_id=message_id(CALL), timeout=timeout)


async def test_the_request_is_signed_for_a_standard_webhooks_receiver() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"dynamic_variables": {"name": "Ada"}})

    result = await ask(handler)
    assert result.result == "ok" and result.status == 200
    assert result.answer is not None
    assert result.answer.client_data == {"dynamic_variables": {"name": "Ada"}}
    request = seen[0]
    assert str(request.url) == URL and request.method == "POST"
    assert request.headers["webhook-id"] == f"lkp_{CALL.call_sid}"
    # What a receiver does with its own copy of the secret (raises if it does not match).
    verified = Webhook(SECRET).verify(request.content, dict(request.headers))
    assert verified == {
        "caller_id": "+14155550123",
        "called_number": "+14155550100",
        "call_sid": CALL.call_sid,
        "agent_id": "agent_1",
        "rule": "sales",
        "direction": "inbound",
        "caller_name": "ADA L",
        "caller_country": "US",
        "forwarded_from": None,
        "account_sid": "AC1",
        "geo": {"FromState": "CA"},
    }
    assert request.headers["content-type"] == "application/json"


async def test_a_rotation_signs_with_every_secret() -> None:
    other = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    await ask(handler, secrets=(Secret(SECRET), Secret(other)))
    for secret in (SECRET, other):
        Webhook(secret).verify(seen[0].content, dict(seen[0].headers))


def answering(status: int, body: bytes) -> Any:
    return lambda request: httpx.Response(status, content=body)


@pytest.mark.parametrize(
    ("handler", "result", "status"),
    [
        pytest.param(answering(500, b"{}"), "http_error", 500, id="500"),
        pytest.param(answering(404, b""), "http_error", 404, id="404"),
        pytest.param(answering(302, b""), "http_error", 302, id="redirect"),
        pytest.param(answering(200, b"<html>"), "invalid", 200, id="not-json"),
        pytest.param(
            answering(200, b'{"action": {"action": "forward", "to": ["x"]}}'),
            "invalid",
            200,
            id="invalid-action",
        ),
        pytest.param(answering(200, b'{"agent_id": 7}'), "invalid", 200, id="agent-id-type"),
        pytest.param(answering(204, b"{}"), "ok", 204, id="204-empty-object"),
    ],
)
async def test_outcomes(handler: Any, result: str, status: int) -> None:
    got = await ask(handler)
    assert (got.result, got.status) == (result, status)
    assert (got.answer is not None) == (result == "ok")


async def test_a_hanging_endpoint_times_out_on_time() -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(10)
        raise AssertionError("not reached")

    started = time.monotonic()
    got = await ask(hang, timeout=0.2)
    assert got.result == "timeout" and "0.2 s" in got.detail
    assert 0.2 <= time.monotonic() - started < 0.5
    assert 0.2 <= got.latency < 0.5


async def test_no_time_left_asks_nothing() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("asked")

    assert (await ask(handler, timeout=0)).result == "timeout"


async def test_connection_refused_is_an_error() -> None:
    port = free_port()
    transport = make_transport("pooled", 10)
    client = LookupClient(secrets=(Secret(SECRET),), transport=transport)
    try:
        got = await client.lookup(
            f"http://127.0.0.1:{port}/lookup", {}, message_id="lkp_x", timeout=1.0
        )
    finally:
        await transport.aclose()
    assert got.result == "error" and got.detail == "ConnectError"


async def test_transport_timeouts_are_timeouts() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    assert (await ask(handler)).result == "timeout"


@pytest.mark.parametrize("kind", ["pooled", "aiohttp"])
async def test_a_huge_answer_is_not_read(kind: str) -> None:
    body = json.dumps({"user_id": "x" * (MAX_RESPONSE_BYTES * 2)}).encode()
    transport = make_transport(kind, 10)
    client = LookupClient(secrets=(Secret(SECRET),), transport=transport)
    try:
        async with answering_upstream(body, "application/json") as url:
            got = await client.lookup(url, {}, message_id="lkp_x", timeout=2.0)
    finally:
        await transport.aclose()
    assert got.result == "invalid" and "larger than" in got.detail


async def test_without_a_secret_nothing_is_sent() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("sent unsigned")

    got = await ask(handler, secrets=())
    assert got.result == "error" and "LOOKUP_SECRET" in got.detail


def test_the_timestamp_is_the_clocks() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    client = LookupClient(
        secrets=(Secret(SECRET),), transport=httpx.MockTransport(handler), now=lambda: at
    )
    asyncio.run(client.lookup(URL, {}, message_id="lkp_1", timeout=1))
    assert seen[0].headers["webhook-timestamp"] == str(int(at.timestamp()))
