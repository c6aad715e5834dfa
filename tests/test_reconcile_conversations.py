"""bridge.reconcile.conversations against the fake ElevenLabs over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from bridge.fakes import FakeElevenLabs
from bridge.reconcile.conversations import Conversations
from bridge.reconcile.upstream import Fault, Missing, Pacer
from bridge.secret import Secret
from tests.helpers import ELEVENLABS_KEY

pytestmark = pytest.mark.anyio


@pytest.fixture
async def api(
    fake_elevenlabs: tuple[FakeElevenLabs, str],
) -> AsyncIterator[tuple[FakeElevenLabs, Conversations]]:
    fake, base = fake_elevenlabs
    conversations = Conversations(
        api_key=Secret(ELEVENLABS_KEY),
        base_url=base,
        transport=httpx.AsyncHTTPTransport(),
        pacer=Pacer(0),
        timeout=1,
    )
    yield fake, conversations
    await conversations.aclose()


async def test_get_and_missing(api: tuple[FakeElevenLabs, Conversations]) -> None:
    fake, conversations = api
    document = fake.add_conversation(call_sid="CA" + "1" * 32)
    assert await conversations.get(document["conversation_id"]) == document
    with pytest.raises(Missing):
        await conversations.get("conv_unknown/../x")


async def test_pages_follow_the_cursor_newest_first(
    api: tuple[FakeElevenLabs, Conversations],
) -> None:
    fake, conversations = api
    for start in range(1000, 1250):
        fake.add_conversation(start_time_unix_secs=start)
    fake.add_conversation(agent_id="agent_other", start_time_unix_secs=2000)
    fake.add_conversation(start_time_unix_secs=999)  # not after 999
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        page = await conversations.page("agent_default", after_unix=999, cursor=cursor)
        pages += 1
        seen += [item["start_time_unix_secs"] for item in page.conversations]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == 3
    assert seen == list(range(1249, 999, -1))


@pytest.mark.parametrize("key", ["wrong-key", ELEVENLABS_KEY])
async def test_a_refused_or_odd_list_is_a_fault(
    fake_elevenlabs: tuple[FakeElevenLabs, str], key: str
) -> None:
    fake, base = fake_elevenlabs
    fake.script = ["json"]  # a JSON object without `conversations`
    conversations = Conversations(
        api_key=Secret(key), base_url=base, transport=httpx.AsyncHTTPTransport(), pacer=Pacer(0)
    )
    try:
        with pytest.raises(Fault):
            await conversations.page("agent_default", after_unix=0, cursor=None)
    finally:
        await conversations.aclose()


async def test_a_hung_upstream_times_out(api: tuple[FakeElevenLabs, Conversations]) -> None:
    fake, conversations = api
    fake.script = ["hang"]
    with pytest.raises(Fault, match="timed out"):
        await conversations.get("conv_1")


@pytest.mark.parametrize(
    "query",
    ["page_size=0", "page_size=101", "page_size=x", "cursor=%%%", "call_start_after_unix=soon"],
)
def test_the_fake_refuses_bad_list_queries(
    fake_elevenlabs: tuple[FakeElevenLabs, str], query: str
) -> None:
    _, base = fake_elevenlabs
    response = httpx.get(
        f"{base}/v1/convai/conversations?{query}", headers={"xi-api-key": ELEVENLABS_KEY}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "query"
