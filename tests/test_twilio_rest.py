"""TwilioREST: the SDK over httpx, against the fake Twilio and against transport faults."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from bridge.fakes import FakeTwilio
from bridge.secret import Secret
from bridge.transport.factory import make_transport
from bridge.twilio.rest import (
    MAX_TWIML_CHARS,
    CreatedCall,
    HttpxTwilioClient,
    TwilioError,
    TwilioREST,
)
from tests.helpers import answering_upstream, running_server

pytestmark = pytest.mark.anyio

ACCOUNT = "AC" + "a" * 32
TOKEN = "twilio-secret-token-0123456789"
FAKE_BASE = "https://twilio.fake"
CALL_SID = "CA" + "1" * 32
TWIML = "<Response><Dial>+15550001111</Dial></Response>"


@pytest.fixture
def fake() -> FakeTwilio:
    return FakeTwilio(account_sid=ACCOUNT, auth_token=TOKEN)


@pytest.fixture
async def twilio(fake: FakeTwilio) -> AsyncIterator[TwilioREST]:
    client = rest(httpx.ASGITransport(app=fake.app))
    yield client
    await client.aclose()


def rest(transport: httpx.AsyncBaseTransport, *, api_base: str = FAKE_BASE) -> TwilioREST:
    return TwilioREST(
        account_sid=ACCOUNT, auth_token=Secret(TOKEN), api_base=api_base, transport=transport
    )


def recording(
    respond: Callable[[httpx.Request], httpx.Response],
) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return respond(request)

    return httpx.MockTransport(handler), seen


def created(request: httpx.Request) -> httpx.Response:
    return httpx.Response(201, json={"sid": CALL_SID, "status": "queued"})


async def call(twilio: TwilioREST, **changes: Any) -> CreatedCall:
    arguments: dict[str, Any] = {
        "to": "+15551234567",
        "from_": "+15557654321",
        "url": "https://bridge.example.com/twilio/outbound",
    }
    arguments.update(changes)
    return await twilio.create_call(**arguments)


def assert_safe(error: TwilioError) -> None:
    basic = base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
    for text in (str(error), repr(error), error.message):
        assert TOKEN not in text
        assert basic not in text


# --- creating calls ------------------------------------------------------------------


async def test_create_call_sends_every_option(fake: FakeTwilio, twilio: TwilioREST) -> None:
    events = ["initiated", "ringing", "answered", "completed"]
    result = await call(
        twilio,
        status_callback="https://bridge.example.com/twilio/status",
        status_callback_event=events,
        machine_detection="DetectMessageEnd",
        timeout=25,
        record=True,
    )

    assert result.status == "queued"
    assert result.raw == fake.calls[result.sid].resource
    assert result.raw["direction"] == "outbound-api"
    assert fake.calls[result.sid].params == {
        "To": ["+15551234567"],
        "From": ["+15557654321"],
        "Url": ["https://bridge.example.com/twilio/outbound"],
        "Method": ["POST"],
        "StatusCallback": ["https://bridge.example.com/twilio/status"],
        "StatusCallbackMethod": ["POST"],
        "StatusCallbackEvent": events,  # the key repeated, once per event
        "MachineDetection": ["DetectMessageEnd"],
        "Timeout": ["25"],
        "Record": ["true"],
    }


async def test_create_call_asks_for_the_recording_status(
    fake: FakeTwilio, twilio: TwilioREST
) -> None:
    url = "https://bridge.example.com/twilio/recording-status?kind=recording"
    result = await call(
        twilio,
        record=True,
        recording_status_callback=url,
        recording_status_callback_event=["completed", "absent"],
    )
    params = fake.calls[result.sid].params
    assert params["Record"] == ["true"]
    assert params["RecordingStatusCallback"] == [url]
    assert params["RecordingStatusCallbackMethod"] == ["POST"]
    assert params["RecordingStatusCallbackEvent"] == ["completed", "absent"]


async def test_create_call_sends_only_what_is_given(fake: FakeTwilio, twilio: TwilioREST) -> None:
    result = await call(twilio)
    assert result.sid.startswith("CA") and len(result.sid) == 34
    assert set(fake.calls[result.sid].params) == {"To", "From", "Url", "Method"}


async def test_concurrent_calls_each_get_their_own_response(
    fake: FakeTwilio, twilio: TwilioREST
) -> None:
    numbers = [f"+1555000{i:04d}" for i in range(8)]
    results = await asyncio.gather(*(call(twilio, to=number) for number in numbers))
    assert [result.raw["to"] for result in results] == numbers
    assert len({result.sid for result in results}) == len(numbers)


@pytest.mark.parametrize(
    ("changes", "script", "status", "code", "message"),
    [
        pytest.param({"to": "555-1234"}, [], 400, 21211, "'To' number 555-1234", id="bad-to"),
        pytest.param({"from_": "bridge"}, [], 400, 21212, "'From' number bridge", id="bad-from"),
        pytest.param({"url": "ftp://x/y"}, [], 400, 21205, "Url is not a valid URL", id="bad-url"),
        pytest.param({}, ["status:500"], 500, 20500, "Internal Server Error", id="500"),
        pytest.param({}, ["status:429"], 429, 20429, "Too Many Requests", id="429"),
        pytest.param({}, ["status:503"], 503, 20503, "Service Unavailable", id="503"),
    ],
)
async def test_twilio_errors_keep_status_code_and_message(
    fake: FakeTwilio,
    twilio: TwilioREST,
    changes: dict[str, Any],
    script: list[str],
    status: int,
    code: int,
    message: str,
) -> None:
    fake.script.extend(script)
    with pytest.raises(TwilioError) as caught:
        await call(twilio, **changes)
    assert (caught.value.status, caught.value.code) == (status, code)
    assert message in caught.value.message
    assert str(caught.value).startswith(f"Twilio API error ({status}, code {code}): ")
    assert_safe(caught.value)
    assert fake.calls == {}


async def test_a_wrong_auth_token_is_a_401_without_the_token(fake: FakeTwilio) -> None:
    fake.auth_token = "the-right-token"
    twilio = rest(httpx.ASGITransport(app=fake.app))
    with pytest.raises(TwilioError) as caught:
        await call(twilio)
    assert (caught.value.status, caught.value.code) == (401, 20003)
    assert "Authenticate" in caught.value.message
    assert_safe(caught.value)


def problem_details(request: httpx.Request) -> httpx.Response:
    body = {
        "type": "https://www.twilio.com/docs/errors/21211",
        "title": "Invalid 'To' Phone Number",
        "status": 400,
        "code": 21211,
        "detail": "The 'To' number is not valid.",
    }
    return httpx.Response(400, json=body)


def raises(error: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def respond(request: httpx.Request) -> httpx.Response:
        raise error

    return respond


@pytest.mark.parametrize(
    ("respond", "status", "code", "message"),
    [
        pytest.param(
            raises(httpx.ConnectError("connection refused")),
            None,
            None,
            "connection refused",
            id="connect-error",
        ),
        pytest.param(
            raises(httpx.ReadTimeout("read timed out")), None, None, "timed out", id="timeout"
        ),
        pytest.param(
            raises(httpx.ConnectTimeout("no")), None, None, "timed out", id="connect-timeout"
        ),
        pytest.param(
            raises(httpx.RemoteProtocolError(f"echoed {TOKEN}")),
            None,
            None,
            "echoed **********",
            id="token-in-error-scrubbed",
        ),
        pytest.param(
            lambda request: httpx.Response(502, text="<html>Bad Gateway</html>"),
            502,
            None,
            "Unable to create record",
            id="html-502",
        ),
        pytest.param(
            lambda request: httpx.Response(500, json={"message": "boom"}),
            500,
            None,
            "boom",
            id="500-without-code",
        ),
        pytest.param(problem_details, 400, 21211, "The 'To' number is not valid.", id="rfc9457"),
        pytest.param(
            lambda request: httpx.Response(201, text="not json"),
            201,
            None,
            "not a JSON object",
            id="201-not-json",
        ),
        pytest.param(
            lambda request: httpx.Response(201, json=["a", "list"]),
            201,
            None,
            "not a JSON object",
            id="201-a-list",
        ),
        pytest.param(
            lambda request: httpx.Response(201, json={"status": "queued"}),
            201,
            None,
            "no call sid",
            id="201-without-sid",
        ),
    ],
)
async def test_faults_become_twilio_errors(
    respond: Callable[[httpx.Request], httpx.Response],
    status: int | None,
    code: int | None,
    message: str,
) -> None:
    transport, _ = recording(respond)
    with pytest.raises(TwilioError) as caught:
        await call(rest(transport))
    assert (caught.value.status, caught.value.code) == (status, code)
    assert message in caught.value.message
    if status is None:
        assert str(caught.value).startswith("Could not reach Twilio: ")
    assert_safe(caught.value)


async def test_over_real_http_and_a_hanging_twilio_times_out(fake: FakeTwilio) -> None:
    transport = make_transport("pooled")
    with running_server(fake.app) as base_url:
        twilio = TwilioREST(
            account_sid=ACCOUNT,
            auth_token=Secret(TOKEN),
            api_base=base_url,
            transport=transport,
            timeout=0.3,
        )
        assert (await call(twilio)).status == "queued"
        fake.script.append("hang")
        with pytest.raises(TwilioError) as caught:
            await call(twilio)
        await transport.aclose()
    assert caught.value.status is None
    assert "timed out" in str(caught.value)


@pytest.mark.parametrize("kind", ["pooled", "aiohttp"])
@pytest.mark.parametrize(("padding", "read"), [(1_000, True), (100_000, False)])
async def test_a_created_calls_answer_is_read_up_to_64_kib(
    kind: str, padding: int, read: bool
) -> None:
    body = json.dumps({"sid": CALL_SID, "status": "queued", "padding": "x" * padding})
    transport = make_transport(kind)
    async with answering_upstream(body.encode(), "application/json") as base_url:
        twilio = rest(transport, api_base=base_url)
        try:
            if read:
                assert (await call(twilio)).sid == CALL_SID
            else:
                with pytest.raises(TwilioError) as caught:
                    await call(twilio)
                # Not read, so not known: the call may well have been created.
                assert caught.value.status is None and not caught.value.not_sent
        finally:
            await transport.aclose()


# --- moving a live call --------------------------------------------------------------


async def test_redirect_call_sends_the_twiml(fake: FakeTwilio, twilio: TwilioREST) -> None:
    created_call = await call(twilio)
    await twilio.redirect_call(created_call.sid, twiml=TWIML)
    assert fake.calls[created_call.sid].updates == [{"Twiml": [TWIML]}]


@pytest.mark.parametrize(
    ("status", "expected_status", "code"),
    [
        pytest.param(None, 404, 20404, id="unknown-call"),
        pytest.param("completed", 400, 21220, id="call-ended"),
    ],
)
async def test_redirect_call_errors(
    fake: FakeTwilio, twilio: TwilioREST, status: str | None, expected_status: int, code: int
) -> None:
    sid = CALL_SID
    if status is not None:
        sid = (await call(twilio)).sid
        fake.calls[sid].resource["status"] = status
    with pytest.raises(TwilioError) as caught:
        await twilio.redirect_call(sid, twiml=TWIML)
    assert (caught.value.status, caught.value.code) == (expected_status, code)
    assert_safe(caught.value)


@pytest.mark.parametrize(
    ("twiml", "allowed"),
    [
        pytest.param("x" * MAX_TWIML_CHARS, True, id="at-the-limit"),
        pytest.param("x" * (MAX_TWIML_CHARS + 1), False, id="over-the-limit"),
        pytest.param("é" * MAX_TWIML_CHARS, True, id="characters-not-bytes"),
    ],
)
async def test_redirect_call_twiml_limit(twiml: str, allowed: bool) -> None:
    transport, seen = recording(lambda request: httpx.Response(200, json={"sid": CALL_SID}))
    twilio = rest(transport)
    if allowed:
        await twilio.redirect_call(CALL_SID, twiml=twiml)
        assert len(seen) == 1
    else:
        with pytest.raises(ValueError, match="4000"):
            await twilio.redirect_call(CALL_SID, twiml=twiml)
        assert seen == []


@pytest.mark.parametrize("sid", ["", "CA123", "../Calls", "CA" + "1" * 31 + "/", "AC" + "1" * 32])
async def test_redirect_call_refuses_what_is_not_a_call_sid(sid: str) -> None:
    transport, seen = recording(created)
    with pytest.raises(ValueError, match="not a Twilio call SID"):
        await rest(transport).redirect_call(sid, twiml=TWIML)
    assert seen == []


# --- where requests go and what they carry -------------------------------------------


@pytest.mark.parametrize(
    ("api_base", "expected"),
    [
        pytest.param("https://api.twilio.com", "https://api.twilio.com", id="default"),
        pytest.param("http://127.0.0.1:8099", "http://127.0.0.1:8099", id="local-fake"),
        pytest.param("http://fake.test/twilio/", "http://fake.test/twilio", id="with-a-path"),
    ],
)
async def test_api_base_replaces_the_twilio_origin(api_base: str, expected: str) -> None:
    transport, seen = recording(created)
    await call(rest(transport, api_base=api_base))
    assert str(seen[0].url) == f"{expected}/2010-04-01/Accounts/{ACCOUNT}/Calls.json"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("https://api.twilio.com/2010-04-01/x.json", "http://fake/2010-04-01/x.json"),
        ("https://api.twilio.com", "http://fake"),
        ("https://api.twilio.com.evil.example/x", "https://api.twilio.com.evil.example/x"),
        ("https://voice.twilio.com/v1/x", "https://voice.twilio.com/v1/x"),
    ],
)
def test_only_the_api_origin_is_rewritten(uri: str, expected: str) -> None:
    client = HttpxTwilioClient(httpx.AsyncClient(), api_base="http://fake/")
    assert client.url_for(uri) == expected


async def test_twilio_region_in_the_environment_does_not_bypass_api_base(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TWILIO_REGION", "au1")
    monkeypatch.setenv("TWILIO_EDGE", "sydney")
    transport, seen = recording(created)
    await call(rest(transport))
    assert seen[0].url.host == "twilio.fake"


async def test_requests_carry_basic_auth_and_a_user_agent() -> None:
    transport, seen = recording(created)
    await call(rest(transport))
    request = seen[0]
    expected = base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    assert "callbridge/" in request.headers["user-agent"]
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"


async def test_the_auth_token_is_never_logged(
    fake: FakeTwilio, twilio: TwilioREST, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    created_call = await call(twilio)
    await twilio.redirect_call(created_call.sid, twiml=TWIML)
    with pytest.raises(TwilioError):
        await call(twilio, to="bad")
    assert "Calls.json" in caplog.text  # something was logged
    basic = base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
    assert TOKEN not in caplog.text
    assert basic not in caplog.text


async def test_aclose_leaves_the_shared_transport_open() -> None:
    closed: list[bool] = []

    class Shared(httpx.MockTransport):
        async def aclose(self) -> None:
            closed.append(True)

    twilio = rest(Shared(created))
    await call(twilio)
    await twilio.aclose()
    assert closed == []


async def test_created_call_raw_is_plain_json(fake: FakeTwilio, twilio: TwilioREST) -> None:
    result = await call(twilio)
    assert json.loads(json.dumps(result.raw)) == result.raw
    assert TOKEN not in json.dumps(result.raw)
