"""The recording client: URLs built from TWILIO_API_BASE and a checked SID only,
Basic auth, and errors that never carry the token."""

from __future__ import annotations

import base64

import httpx
import pytest

from bridge.secret import Secret
from bridge.twilio.recordings import RecordingFetchError, TwilioRecordings, is_recording_sid

pytestmark = pytest.mark.anyio

ACCOUNT = "AC" + "b" * 32
TOKEN = "the-auth-token-never-shown"
SID = "RE" + "c" * 32


def client(respond: httpx.MockTransport | None = None, account: str = ACCOUNT) -> TwilioRecordings:
    return TwilioRecordings(
        account_sid=account,
        auth_token=Secret(TOKEN),
        api_base="https://twilio.example/",
        transport=respond or httpx.MockTransport(lambda request: httpx.Response(200, content=b"x")),
    )


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (SID, True),
        ("RE" + "C" * 32, False),
        ("RE" + "c" * 31, False),
        ("CA" + "c" * 32, False),
        (SID + "/../x", False),
        ("", False),
    ],
)
def test_recording_sids(value: str, ok: bool) -> None:
    assert is_recording_sid(value) is ok


async def test_audio_with_basic_auth() -> None:
    seen: list[httpx.Request] = []

    def respond(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"mp3 bytes")

    assert await client(httpx.MockTransport(respond)).audio(SID) == b"mp3 bytes"
    (request,) = seen
    assert str(request.url) == (
        f"https://twilio.example/2010-04-01/Accounts/{ACCOUNT}/Recordings/{SID}.mp3"
    )
    expected = base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected}"


@pytest.mark.parametrize(("sid", "account"), [("RE../../x", ACCOUNT), (SID, "AC123"), (SID, "")])
async def test_nothing_is_sent_for_a_bad_sid(sid: str, account: str) -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        raise AssertionError("sent")

    with pytest.raises(ValueError):
        await client(httpx.MockTransport(respond), account=account).audio(sid)


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (httpx.Response(404), "404"),
        (httpx.Response(500, text=TOKEN), "500"),
        (httpx.Response(200, content=b""), "no audio"),
    ],
)
async def test_audio_errors(response: httpx.Response, message: str) -> None:
    with pytest.raises(RecordingFetchError, match=message) as raised:
        await client(httpx.MockTransport(lambda request: response)).audio(SID)
    assert TOKEN not in str(raised.value)


async def test_transport_errors_never_show_the_token() -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"refused with {TOKEN}")

    with pytest.raises(RecordingFetchError) as raised:
        await client(httpx.MockTransport(respond)).audio(SID)
    assert TOKEN not in str(raised.value) and "**********" in str(raised.value)


@pytest.mark.parametrize(("status", "ok"), [(204, True), (404, True), (401, False), (503, False)])
async def test_delete(status: int, ok: bool) -> None:
    seen: list[httpx.Request] = []

    def respond(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status)

    recordings = client(httpx.MockTransport(respond))
    if ok:
        await recordings.delete(SID)
    else:
        with pytest.raises(RecordingFetchError, match=str(status)):
            await recordings.delete(SID)
    assert seen[0].method == "DELETE" and seen[0].url.path.endswith(f"/Recordings/{SID}.json")
    await recordings.aclose()
