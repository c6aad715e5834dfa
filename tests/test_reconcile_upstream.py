"""bridge.reconcile.upstream: answers sorted into data, Missing and Fault; pacing."""

from __future__ import annotations

import time

import httpx
import pytest

from bridge.reconcile.upstream import Fault, Missing, Pacer, get_json

pytestmark = pytest.mark.anyio


def client(response: httpx.Response | Exception) -> httpx.AsyncClient:
    def answer(request: httpx.Request) -> httpx.Response:
        if isinstance(response, Exception):
            raise response
        return response

    return httpx.AsyncClient(base_url="http://up.test", transport=httpx.MockTransport(answer))


@pytest.mark.parametrize(
    ("response", "error", "status"),
    [
        (httpx.Response(404, json={"detail": "nope"}), Missing, None),
        (httpx.Response(500, json={}), Fault, 500),
        (httpx.Response(429, json={}), Fault, 429),
        (httpx.Response(401, json={}), Fault, 401),
        (httpx.Response(200, text="<html>"), Fault, 200),
        (httpx.Response(200, json=[1, 2]), Fault, 200),
        (httpx.ConnectError("refused"), Fault, None),
        (httpx.ReadTimeout("slow"), Fault, None),
        (httpx.RemoteProtocolError(""), Fault, None),
    ],
)
async def test_what_is_not_an_answer(
    response: httpx.Response | Exception, error: type[Exception], status: int | None
) -> None:
    async with client(response) as http:
        with pytest.raises(error) as raised:
            await get_json(http, "/x", pacer=Pacer(0))
    if isinstance(raised.value, Fault):
        assert raised.value.status == status
        assert str(raised.value)


async def test_a_json_object_is_the_answer() -> None:
    async with client(httpx.Response(200, json={"ok": True})) as http:
        pacer = Pacer(0)
        assert await get_json(http, "/x", pacer=pacer) == {"ok": True}
    assert pacer.sent == 1


async def test_the_pacer_spaces_requests() -> None:
    pacer = Pacer(50)
    started = time.monotonic()
    for _ in range(11):
        await pacer.wait()
    assert time.monotonic() - started >= 0.19
    assert pacer.sent == 11
