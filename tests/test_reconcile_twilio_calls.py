"""bridge.reconcile.twilio_calls against the fake Twilio over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from bridge.fakes import FakeTwilio
from bridge.reconcile.twilio_calls import TwilioCalls
from bridge.reconcile.upstream import Fault, Missing, Pacer
from bridge.secret import Secret
from tests.helpers import ACCOUNT_SID, AUTH_TOKEN, running_server

pytestmark = pytest.mark.anyio


@pytest.fixture
def twilio() -> Iterator[tuple[FakeTwilio, str]]:
    fake = FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
    with running_server(fake.app) as base:
        yield fake, base


def client(base: str, token: str = AUTH_TOKEN) -> TwilioCalls:
    return TwilioCalls(
        account_sid=ACCOUNT_SID,
        auth_token=Secret(token),
        base_url=base,
        transport=httpx.AsyncHTTPTransport(),
        pacer=Pacer(0),
        timeout=1,
    )


async def test_a_call_is_read_back_with_basic_auth(twilio: tuple[FakeTwilio, str]) -> None:
    fake, base = twilio
    sid = fake.add_call(status="in-progress").sid
    fake.end_call(sid, "completed", duration=61)
    calls = client(base)
    try:
        resource = await calls.fetch(sid)
        with pytest.raises(Missing):
            await calls.fetch("CA" + "0" * 32)
    finally:
        await calls.aclose()
    assert (resource["status"], resource["duration"], resource["sid"]) == ("completed", "61", sid)
    assert resource["end_time"]


@pytest.mark.parametrize("step", ["status:500", "status:429", "hang", "empty"])
async def test_faults(twilio: tuple[FakeTwilio, str], step: str) -> None:
    fake, base = twilio
    sid = fake.add_call().sid
    fake.script = [step]
    calls = client(base)
    try:
        with pytest.raises(Fault):
            await calls.fetch(sid)
    finally:
        await calls.aclose()


async def test_a_wrong_token_is_a_fault(twilio: tuple[FakeTwilio, str]) -> None:
    fake, base = twilio
    calls = client(base, token="wrong")
    try:
        with pytest.raises(Fault) as raised:
            await calls.fetch(fake.add_call().sid)
    finally:
        await calls.aclose()
    assert raised.value.status == 401
