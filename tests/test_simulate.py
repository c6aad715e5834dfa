"""`callbridge simulate inbound`: the form Twilio would send, signed for exactly the URL it
is posted to, and what the answer would do to the call; over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from defusedxml.ElementTree import fromstring
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bridge.app import create_app
from bridge.cli.simulate import inbound_url
from bridge.fakes import FakeElevenLabs
from bridge.simulate import voice_webhook as simulate
from tests.helpers import (
    AUTH_TOKEN,
    clear_settings_environment,
    free_port,
    make_settings,
    run_cli,
    running_server,
    twilio_signature,
)

CALLER = "+14155550123"
OUR_NUMBER = "+14155550100"
ABSENT = object()


@dataclass
class Seen:
    url: str
    form: dict[str, str]
    headers: dict[str, str]


@dataclass
class Recorder:
    """A web server that keeps every request and answers with what it is told."""

    status: int = 200
    body: str = "<Response><Say>Hello</Say></Response>"
    content_type: str = "text/xml"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    seen: list[Seen] = field(default_factory=list)

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self.receive, methods=["POST"])])

    async def receive(self, request: Request) -> Response:
        form = parse_qsl((await request.body()).decode(), keep_blank_values=True)
        self.seen.append(Seen(str(request.url), dict(form), dict(request.headers)))
        await asyncio.sleep(self.delay)
        return Response(self.body, self.status, headers=self.headers, media_type=self.content_type)


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_settings_environment(monkeypatch)
    monkeypatch.delenv("TWILIO_ACCOUNT_SID", raising=False)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)


@pytest.fixture
def recorder() -> Iterator[tuple[Recorder, str]]:
    server = Recorder()
    with running_server(server.app) as base:
        yield server, base


def simulate_cli(capsys: pytest.CaptureFixture[str], url: str, *extra: str) -> tuple[int, str, str]:
    return run_cli(
        capsys, "simulate", "inbound", "--from", CALLER, "--to", OUR_NUMBER, "--url", url, *extra
    )


# --- the form ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("caller", "called", "expected"),
    [
        (
            "+14155550123",
            "+12125550100",
            {
                "From": "+14155550123",
                "Caller": "+14155550123",
                "To": "+12125550100",
                "Called": "+12125550100",
                "FromCity": "SAN FRANCISCO",
                "FromState": "CA",
                "FromZip": "",
                "FromCountry": "US",
                "CallerCity": "SAN FRANCISCO",
                "CallerCountry": "US",
                "ToCity": "NEW YORK",
                "ToState": "NY",
                "CalledState": "NY",
                "ToCountry": "US",
                "StirVerstat": "TN-Validation-Passed-A",
            },
        ),
        (
            "+442079460123",
            "+14155550100",
            {
                "FromCountry": "GB",
                "CallerCountry": "GB",
                "FromCity": "",
                "FromState": "",
                "FromZip": "",
                "ToCountry": "US",
                "StirVerstat": ABSENT,
            },
        ),
        (
            "anonymous",
            "+14155550100",
            {
                "From": "anonymous",
                "Caller": "anonymous",
                "FromCountry": "",
                "FromCity": "",
                "CallerCountry": "",
                "StirVerstat": ABSENT,
            },
        ),
        # Not an assigned number, but its country code still tells the country.
        ("+15551234567", "+15557650000", {"FromCountry": "US", "FromCity": "", "ToState": ""}),
        ("+13055550142", "+14155550100", {"FromCountry": "US", "FromState": "", "FromCity": ""}),
    ],
)
def test_the_form_has_twilios_fields(caller: str, called: str, expected: dict[str, Any]) -> None:
    form = simulate.voice_form(from_number=caller, to_number=called)
    assert re.fullmatch(r"CA[0-9a-f]{32}", form["CallSid"])
    assert form["AccountSid"] == simulate.PLACEHOLDER_ACCOUNT_SID
    assert form["ApiVersion"] == "2010-04-01"
    assert form["CallStatus"] == "ringing" and form["Direction"] == "inbound"
    assert set(json.loads(form["CallToken"])) == {"parentCallInfoToken", "identityHeaderTokens"}
    for who in ("From", "To", "Caller", "Called"):
        assert {f"{who}{part}" for part in ("City", "State", "Zip", "Country")} <= set(form)
    for name, value in expected.items():
        if value is ABSENT:
            assert name not in form
        else:
            assert form[name] == value, name


def test_an_outbound_calls_form_has_no_inbound_only_fields() -> None:
    form = simulate.voice_form(
        from_number=OUR_NUMBER, to_number=CALLER, direction="outbound-api", status="in-progress"
    )
    assert form["Direction"] == "outbound-api" and form["CallStatus"] == "in-progress"
    assert "CallToken" not in form and "StirVerstat" not in form


def test_call_sids_are_new_each_time() -> None:
    sids = {
        simulate.voice_form(from_number=CALLER, to_number=OUR_NUMBER)["CallSid"] for _ in range(50)
    }
    assert len(sids) == 50


def test_the_bridge_receives_every_field_with_params_and_account_sid(
    capsys: pytest.CaptureFixture[str],
    recorder: tuple[Recorder, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, base = recorder
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "7" * 32)
    code, _, _ = simulate_cli(
        capsys,
        f"{base}/twilio/inbound",
        "--param",
        "ForwardedFrom=+14155550142",
        "--param",
        "CallerName=ADA LOVELACE",
        "--param",
        "FromCity=OAKLAND",
        "--call-sid",
        "CA" + "e" * 32,
    )
    assert code == 0
    (seen,) = server.seen
    assert seen.form["ForwardedFrom"] == "+14155550142"
    assert seen.form["CallerName"] == "ADA LOVELACE"
    assert seen.form["FromCity"] == "OAKLAND"
    assert seen.form["CallSid"] == "CA" + "e" * 32
    assert seen.form["AccountSid"] == "AC" + "7" * 32
    assert seen.headers["content-type"] == "application/x-www-form-urlencoded"
    assert seen.headers["user-agent"].startswith("TwilioProxy/")


# --- the signature -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "posted"),
    [
        ("/twilio/inbound", "/twilio/inbound"),
        ("/twilio/inbound?tenant=acme&line=2", "/twilio/inbound?tenant=acme&line=2"),
        ("", "/twilio/inbound"),  # an origin alone gets the webhook's path
        ("/", "/twilio/inbound"),
    ],
)
def test_the_signature_is_for_exactly_the_url_posted_to(
    capsys: pytest.CaptureFixture[str], recorder: tuple[Recorder, str], given: str, posted: str
) -> None:
    server, base = recorder
    code, out, _ = simulate_cli(capsys, base + given)
    assert code == 0
    (seen,) = server.seen
    assert seen.url == base + posted
    assert f"POST {base + posted}" in out
    signature = seen.headers["x-twilio-signature"]
    assert signature == twilio_signature(base + posted, seen.form, AUTH_TOKEN)
    assert signature != twilio_signature(base + posted, seen.form, "another-token")
    assert signature != twilio_signature(base + "/elsewhere", seen.form, AUTH_TOKEN)


@pytest.fixture
def real_bridge(
    fake_elevenlabs: tuple[FakeElevenLabs, str],
) -> Iterator[tuple[FakeElevenLabs, str]]:
    fake, fake_url = fake_elevenlabs
    port = free_port()
    settings = make_settings(
        public_base_url=f"http://127.0.0.1:{port}", elevenlabs_api_base=fake_url
    )
    with running_server(create_app(settings), port=port) as base:
        yield fake, base


def test_the_bridge_accepts_it_and_connects_the_agent(
    capsys: pytest.CaptureFixture[str], real_bridge: tuple[FakeElevenLabs, str]
) -> None:
    fake, base = real_bridge
    code, out, err = run_cli(
        capsys,
        "simulate",
        "inbound",
        "--from",
        "+442079460123",
        "--to",
        OUR_NUMBER,
        "--url",
        base,
    )
    assert code == 0, err
    assert err == ""
    assert "HTTP 200 text/xml" in out
    twiml = out[out.index("<?xml") : out.index("</Response>") + len("</Response>")]
    stream = fromstring(twiml).find("./Connect/Stream")
    assert stream is not None and stream.get("url", "").startswith("wss://")
    assert "Twilio would: Connect Stream wss://" in out
    assert fake.requests == [
        {
            "agent_id": "agent_default",
            "from_number": "+442079460123",
            "to_number": OUR_NUMBER,
            "direction": "inbound",
        }
    ]


def test_a_403_says_which_url_was_signed_and_what_to_set(
    capsys: pytest.CaptureFixture[str], fake_elevenlabs: tuple[FakeElevenLabs, str]
) -> None:
    fake, fake_url = fake_elevenlabs
    # The bridge believes Twilio calls it at another origin.
    settings = make_settings(elevenlabs_api_base=fake_url)
    with running_server(create_app(settings)) as base:
        code, out, err = simulate_cli(capsys, base)
    assert code == 1
    assert "HTTP 403" in out
    assert f"computed for {base}/twilio/inbound" in err
    assert f"PUBLIC_BASE_URL must be {base}" in err
    assert fake.requests == []


def test_unsigned_needs_no_token_and_sends_no_signature(
    capsys: pytest.CaptureFixture[str],
    recorder: tuple[Recorder, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, base = recorder
    monkeypatch.delenv("TWILIO_AUTH_TOKEN")
    code, out, _ = simulate_cli(capsys, base, "--unsigned")
    assert code == 0
    assert "x-twilio-signature" not in server.seen[0].headers
    assert "unsigned" in out
    server.status = 403
    code, _, err = simulate_cli(capsys, base, "--unsigned")
    assert code == 1 and "sent unsigned" in err


def test_no_token_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
    recorder: tuple[Recorder, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, base = recorder
    monkeypatch.delenv("TWILIO_AUTH_TOKEN")
    code, _, err = simulate_cli(capsys, base)
    assert code == 2
    assert "TWILIO_AUTH_TOKEN" in err
    assert server.seen == []


@pytest.mark.parametrize("extra", [(), ("--verbose",), ("--json",)])
@pytest.mark.parametrize("status", [200, 403])
def test_the_auth_token_is_never_printed(
    capsys: pytest.CaptureFixture[str],
    recorder: tuple[Recorder, str],
    extra: tuple[str, ...],
    status: int,
) -> None:
    server, base = recorder
    server.status = status
    code, out, err = simulate_cli(capsys, base, *extra)
    assert code == (0 if status == 200 else 1)
    assert out
    assert AUTH_TOKEN not in out + err


# --- what came back -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "content_type", "headers", "code", "says"),
    [
        (
            200,
            "<Response><Say>Hi there</Say><Hangup/></Response>",
            "text/xml",
            {},
            0,
            "Twilio would: Say 'Hi there' -> Hangup",
        ),
        (
            200,
            '<Response><Reject reason="busy"/></Response>',
            "application/xml",
            {},
            0,
            "Twilio would: Reject (busy)",
        ),
        (
            200,
            "<Response><Dial><Number>+14155550111</Number></Dial></Response>",
            "text/xml",
            {},
            0,
            "Twilio would: Dial +14155550111",
        ),
        (200, "<html><body>Welcome to nginx</body></html>", "text/html", {}, 1, "not TwiML"),
        (200, "", "text/xml", {}, 1, "not TwiML"),
        (200, '{"twiml": "<Response/>"}', "application/json", {}, 1, "not TwiML"),
        (500, "Internal Server Error", "text/plain", {}, 1, "HTTP 500"),
        (404, "Not Found", "text/plain", {}, 1, "HTTP 404"),
        (
            301,
            "",
            "text/plain",
            {"location": "https://elsewhere.example.com/twilio/inbound"},
            1,
            "redirected to https://elsewhere.example.com/twilio/inbound",
        ),
    ],
)
def test_the_answer_is_judged_as_twilio_would(
    capsys: pytest.CaptureFixture[str],
    recorder: tuple[Recorder, str],
    status: int,
    body: str,
    content_type: str,
    headers: dict[str, str],
    code: int,
    says: str,
) -> None:
    server, base = recorder
    server.status, server.body, server.content_type = status, body, content_type
    server.headers = headers
    got, out, err = simulate_cli(capsys, base)
    assert got == code
    assert f"HTTP {status}" in out
    assert says in (out if code == 0 else err)


def test_json_output(capsys: pytest.CaptureFixture[str], recorder: tuple[Recorder, str]) -> None:
    server, base = recorder
    server.body = (
        '<Response><Connect><Stream url="wss://example.com/s">'
        '<Parameter name="conversation_id" value="conv_1"/></Stream></Connect></Response>'
    )
    code, out, _ = simulate_cli(capsys, base, "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["ok"] is True and shown["problem"] is None
    assert shown["status"] == 200 and shown["signed"] is True
    assert shown["url"] == f"{base}/twilio/inbound"
    assert shown["verbs"] == ["Connect"]
    assert shown["stream_url"] == "wss://example.com/s"
    assert shown["conversation_id"] == "conv_1"
    assert shown["form"] == server.seen[0].form


def test_nobody_listening(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = simulate_cli(capsys, f"http://127.0.0.1:{free_port()}")
    assert code == 1
    assert "could not reach" in err


def test_no_answer_within_twilios_time(
    capsys: pytest.CaptureFixture[str],
    recorder: tuple[Recorder, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, base = recorder
    server.delay = 1.0
    monkeypatch.setattr(simulate, "TIMEOUT", httpx.Timeout(0.2))
    code, _, err = simulate_cli(capsys, base)
    assert code == 1
    assert "no answer" in err


# --- the command line ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--from", "4155550123", "--to", OUR_NUMBER], "--from '4155550123'"),
        (["--from", "+1 415 555 0123", "--to", OUR_NUMBER], "--from"),
        (["--from", CALLER, "--to", "anonymous"], "--to 'anonymous'"),
        (["--from", CALLER, "--to", OUR_NUMBER, "--param", "ForwardedFrom"], "--param"),
        (["--from", CALLER, "--to", OUR_NUMBER, "--param", "=x"], "--param"),
        (["--from", CALLER, "--to", OUR_NUMBER, "--url", "ftp://bridge"], "--url"),
        (["--from", CALLER, "--to", OUR_NUMBER, "--call-sid", "CA1"], "--call-sid"),
    ],
)
def test_usage_errors_name_the_option(
    capsys: pytest.CaptureFixture[str],
    recorder: tuple[Recorder, str],
    argv: list[str],
    named: str,
) -> None:
    server, base = recorder
    if "--url" not in argv:
        argv = [*argv, "--url", base]
    code, _, err = run_cli(capsys, "simulate", "inbound", *argv)
    assert code == 2
    assert named in err
    assert server.seen == []


@pytest.mark.parametrize("word", ["anonymous", "Restricted", "unknown"])
def test_withheld_callers_are_accepted(
    capsys: pytest.CaptureFixture[str], recorder: tuple[Recorder, str], word: str
) -> None:
    server, base = recorder
    code, _, _ = run_cli(
        capsys, "simulate", "inbound", "--from", word, "--to", OUR_NUMBER, "--url", base
    )
    assert code == 0
    assert server.seen[0].form["From"] == word.lower()


def test_simulate_alone_shows_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "simulate")
    assert code == 2
    assert "inbound" in err


@pytest.mark.parametrize(
    ("given", "env", "expected"),
    [
        (None, {}, "http://127.0.0.1:8000/twilio/inbound"),
        (None, {"PORT": "5000"}, "http://127.0.0.1:5000/twilio/inbound"),
        (
            None,
            {"PUBLIC_BASE_URL": "https://bridge.example.com/", "PORT": "5000"},
            "https://bridge.example.com/twilio/inbound",
        ),
        ("https://bridge.example.com", {}, "https://bridge.example.com/twilio/inbound"),
        ("https://bridge.example.com/hook?x=1", {}, "https://bridge.example.com/hook?x=1"),
        ("http://127.0.0.1:9/twilio/inbound", {}, "http://127.0.0.1:9/twilio/inbound"),
    ],
)
def test_the_default_url(given: str | None, env: dict[str, str], expected: str) -> None:
    assert inbound_url(given, env) == expected
