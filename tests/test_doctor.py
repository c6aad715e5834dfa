"""`callbridge doctor` against the fake upstreams: every check passing, failing and fixed."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any, get_type_hints

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bridge.doctor import Options, Report, render_json, render_text, run_doctor
from bridge.doctor.environment import SECRET_VARIABLES, read_environment
from bridge.doctor.render import mask_passwords
from bridge.doctor.routes_check import agent_uses
from bridge.fakes import FakeElevenLabs, FakeTwilio
from bridge.routing import parse_routes
from bridge.secret import Secret
from bridge.settings import Settings
from bridge.twilio.numbers import TwilioNumbers
from tests.helpers import (
    ACCOUNT_SID,
    API_TOKEN,
    AUTH_TOKEN,
    ELEVENLABS_KEY,
    OUR_NUMBER,
    PUBLIC,
    Upstreams,
    clear_settings_environment,
    free_port,
    run_cli,
    running_server,
)

WEBHOOK_SECRET = "test-webhook-secret-value"
GOOD_ENV = {
    "ELEVENLABS_API_KEY": ELEVENLABS_KEY,
    "ELEVENLABS_AGENT_ID": "agent_default",
    "ELEVENLABS_API_BASE": "http://elevenlabs.test",
    "ELEVENLABS_WEBHOOK_SECRET": WEBHOOK_SECRET,
    "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
    "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
    "TWILIO_PHONE_NUMBER": OUR_NUMBER,
    "TWILIO_API_BASE": "http://twilio.test",
    "PUBLIC_BASE_URL": PUBLIC,
    "BRIDGE_API_TOKEN": API_TOKEN,
}
SECRETS = (ELEVENLABS_KEY, AUTH_TOKEN, API_TOKEN, WEBHOOK_SECRET)
INBOUND_URL = PUBLIC + "/twilio/inbound"
STATUS_URL = PUBLIC + "/twilio/status"
APP_SID = "AP" + "1" * 32
TRUNK_SID = "TK" + "2" * 32
NETWORK_CHECKS = [
    "elevenlabs.api_key",
    "elevenlabs.agent.agent_default",
    "twilio.credentials",
    "twilio.number",
    "twilio.number.voice",
    "twilio.number.status_callback",
    "public.healthz",
]
TWILIO_CHECKS = NETWORK_CHECKS[2:6]
WIRING_CHECKS = ["twilio.number.voice", "twilio.number.status_callback"]


class Health:
    """The bridge's GET /healthz at PUBLIC, answering whatever a test sets."""

    def __init__(self) -> None:
        self.status = 200
        self.body: Any = {"status": "ok", "problems": [], "routes": {"rules": 0}}
        self.headers: dict[str, str] = {}

    async def healthz(self, request: Request) -> Response:
        if isinstance(self.body, str):
            return Response(self.body, self.status, self.headers, media_type="text/html")
        return JSONResponse(self.body, self.status, self.headers)

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[Route("/healthz", self.healthz)])


class World:
    """Fake ElevenLabs, Twilio and public bridge, all well configured to begin with."""

    def __init__(self) -> None:
        self.upstreams = Upstreams()
        self.health = Health()
        self.upstreams.transport.routes["bridge.example.com"] = httpx.ASGITransport(
            app=self.health.app
        )
        self.env = dict(GOOD_ENV)
        self.elevenlabs.add_agent("agent_default")
        self.number = self.twilio.add_number(
            OUR_NUMBER, voice_url=INBOUND_URL, status_callback=STATUS_URL
        )

    @property
    def elevenlabs(self) -> FakeElevenLabs:
        return self.upstreams.elevenlabs

    @property
    def twilio(self) -> FakeTwilio:
        return self.upstreams.twilio

    def set_host(self, host: str, transport: httpx.AsyncBaseTransport) -> None:
        self.upstreams.transport.routes[host] = transport

    def run(self, **options: Any) -> Report:
        transport = self.upstreams.transport
        return asyncio.run(run_doctor(self.env, Options(**options), lambda: transport))

    def fail_after(self, host: str, method: str, path: str, error: Exception) -> None:
        """Requests to `host` whose path starts with `path` reach the fake, which acts
        on them, but their answer is lost: the client gets `error` (a timeout: the
        change may have been made; a connection error: it surely was not)."""
        upstream = self.upstreams.transport.routes[host]

        async def handle(request: httpx.Request) -> httpx.Response:
            if request.method != method or not request.url.path.startswith(path):
                return await upstream.handle_async_request(request)
            if not isinstance(error, httpx.ConnectError):
                await upstream.handle_async_request(request)
            raise error

        self.set_host(host, httpx.MockTransport(handle))

    def twilio_writes(self) -> list[Any]:
        return [request for request in self.twilio.requests if request.method == "POST"]


@pytest.fixture
def world() -> World:
    return World()


def statuses(report: Report) -> dict[str, str]:
    return {check.name: check.status for check in report.checks}


def check(report: Report, name: str) -> Any:
    (found,) = [c for c in report.checks if c.name == name]
    return found


def assert_no_secrets(report: Report) -> None:
    for text in (render_text(report), render_json(report)):
        for secret in SECRETS:
            assert secret not in text


# --- everything fine -----------------------------------------------------------------


def test_a_good_setup_passes(world: World) -> None:
    report = world.run()
    assert report.ok
    assert set(statuses(report).values()) == {"pass"}
    assert [name for name in statuses(report) if not name.startswith("settings.")] == [
        "routes",
        *NETWORK_CHECKS,
    ]
    text = render_text(report)
    lines = [line for line in text.splitlines() if line and not line.startswith("OK")]
    assert all(line.startswith("PASS  ") for line in lines), text
    assert "PASS  elevenlabs agent agent_default: audio formats ulaw_8000" in text
    assert text.endswith(f"OK: {len(report.checks)} passed, 0 failed\n")
    assert world.elevenlabs.agent_patches == []
    assert world.twilio_writes() == []
    assert_no_secrets(report)


def test_json_report(world: World) -> None:
    world.elevenlabs.agents.clear()
    document = json.loads(render_json(world.run(skip_public=True)))
    assert set(document) == {"ok", "checks"}
    assert document["ok"] is False
    for item in document["checks"]:
        assert set(item) == {"name", "title", "status", "detail", "fix", "fixable", "previous"}
        assert item["status"] in {"pass", "fail", "skip", "fixed"}
        assert isinstance(item["detail"], str) and item["detail"]
        assert (item["fix"] is not None) == (item["status"] == "fail")
    by_name = {item["name"]: item for item in document["checks"]}
    assert by_name["elevenlabs.agent.agent_default"]["status"] == "fail"
    assert by_name["public.healthz"]["status"] == "skip"


# --- settings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "name", "words", "skipped"),
    [
        pytest.param(
            {"ELEVENLABS_API_KEY": None},
            "settings.ELEVENLABS_API_KEY",
            "not set",
            ["elevenlabs.api_key", "elevenlabs.agent.agent_default"],
            id="no-elevenlabs-key",
        ),
        pytest.param(
            {"ELEVENLABS_AGENT_ID": None},
            "settings.ELEVENLABS_AGENT_ID",
            "not set",
            ["elevenlabs.api_key"],
            id="no-agent",
        ),
        pytest.param(
            {"ELEVENLABS_API_BASE": "ftp://elevenlabs.test"},
            "settings.ELEVENLABS_API_BASE",
            "http(s) URL",
            ["elevenlabs.api_key", "elevenlabs.agent.agent_default"],
            id="elevenlabs-base",
        ),
        pytest.param(
            {"TWILIO_ACCOUNT_SID": None},
            "settings.TWILIO_ACCOUNT_SID",
            "not set",
            TWILIO_CHECKS,
            id="no-account-sid",
        ),
        pytest.param(
            {"TWILIO_ACCOUNT_SID": "SK" + "a" * 32},
            "settings.TWILIO_ACCOUNT_SID",
            "Account SID",
            TWILIO_CHECKS,
            id="api-key-sid",
        ),
        pytest.param(
            {"TWILIO_AUTH_TOKEN": "  "},
            "settings.TWILIO_AUTH_TOKEN",
            "not set",
            TWILIO_CHECKS,
            id="blank-auth-token",
        ),
        pytest.param(
            {"TWILIO_API_BASE": "http://twilio.test/?edge=x"},
            "settings.TWILIO_API_BASE",
            "query",
            TWILIO_CHECKS,
            id="twilio-base",
        ),
        pytest.param(
            {"TWILIO_PHONE_NUMBER": "4155550100"},
            "settings.TWILIO_PHONE_NUMBER",
            "E.164",
            TWILIO_CHECKS[1:],
            id="number-not-e164",
        ),
        pytest.param(
            {"TWILIO_PHONE_NUMBER": None},
            "settings.TWILIO_PHONE_NUMBER",
            "not set",
            TWILIO_CHECKS[1:],
            id="no-number",
        ),
        pytest.param(
            {"PUBLIC_BASE_URL": None},
            "settings.PUBLIC_BASE_URL",
            "not set",
            [*WIRING_CHECKS, "public.healthz"],
            id="no-public-url",
        ),
        pytest.param(
            {"PUBLIC_BASE_URL": "bridge.example.com"},
            "settings.PUBLIC_BASE_URL",
            "http(s) URL",
            [*WIRING_CHECKS, "public.healthz"],
            id="public-url-no-scheme",
        ),
        pytest.param(
            {"BRIDGE_API_TOKEN": None}, "settings.BRIDGE_API_TOKEN", "503", [], id="no-api-token"
        ),
        pytest.param({"PORT": "eighty"}, "settings.PORT", "whole number", [], id="port"),
        pytest.param({"ROUTES_FILE": ""}, None, None, [], id="no-routes-file-is-fine"),
    ],
)
def test_settings(
    world: World,
    changes: dict[str, str | None],
    name: str | None,
    words: str | None,
    skipped: list[str],
) -> None:
    for variable, value in changes.items():
        if value is None:
            world.env.pop(variable)
        else:
            world.env[variable] = value
    report = world.run()
    found = statuses(report)
    if name is None:
        assert report.ok
        return
    assert not report.ok
    failing = check(report, name)
    assert failing.status == "fail"
    assert words in failing.detail
    assert name.removeprefix("settings.") in failing.fix
    for skip in skipped:
        assert found[skip] == "skip", skip
        assert "skipped: " in check(report, skip).detail
    # Everything that did not depend on the broken setting was still checked.
    others = {n: s for n, s in found.items() if n != name and n not in skipped}
    assert set(others.values()) == {"pass"}, others
    assert_no_secrets(report)


@pytest.mark.parametrize(
    ("url", "detail"),
    [
        pytest.param(
            "http://bridge.example.com",
            "http://bridge.example.com is not https: Twilio should call the bridge over TLS",
            id="http",
        ),
        pytest.param(
            "https://localhost:8443",
            "https://localhost:8443 is not a public address (localhost): Twilio cannot reach it",
            id="localhost",
        ),
        pytest.param(
            "https://127.0.0.1",
            "https://127.0.0.1 is not a public address (127.0.0.1): Twilio cannot reach it",
            id="loopback",
        ),
        pytest.param(
            "https://10.1.2.3:8000",
            "https://10.1.2.3:8000 is not a public address (10.1.2.3): Twilio cannot reach it",
            id="private",
        ),
    ],
)
def test_public_url_twilio_cannot_reach(world: World, url: str, detail: str) -> None:
    world.env["PUBLIC_BASE_URL"] = url
    report = world.run(skip_public=True)
    setting = check(report, "settings.PUBLIC_BASE_URL")
    assert (setting.status, setting.detail) == ("fail", detail)
    assert "public https origin" in setting.fix
    # The number points at the public URL; compared with this one, it differs.
    assert check(report, "twilio.number.voice").status == "fail"


def test_public_url_is_shown_as_the_bridge_uses_it(world: World) -> None:
    world.env["PUBLIC_BASE_URL"] = PUBLIC + "/"  # as Heroku's web_url has it
    report = world.run()
    assert report.ok
    assert f"PASS  settings PUBLIC_BASE_URL: {PUBLIC}\n" in render_text(report)


def test_every_malformed_setting_is_reported(world: World) -> None:
    world.env.update(PORT="0", LOG_LEVEL="LOUD", TWILIO_PHONE_NUMBER="+1 415", RETENTION_DAYS="x")
    report = world.run()
    failing = [c.name for c in report.checks if c.status == "fail"]
    assert failing == [
        "settings.TWILIO_PHONE_NUMBER",
        "settings.PORT",
        "settings.LOG_LEVEL",
        "settings.RETENTION_DAYS",
    ]
    assert check(report, "elevenlabs.agent.agent_default").status == "pass"


def test_read_environment_keeps_the_good_settings() -> None:
    env = read_environment({**GOOD_ENV, "PORT": "x", "ELEVENLABS_API_BASE": "nope"})
    assert set(env.problems) == {"PORT", "ELEVENLABS_API_BASE"}
    assert env.settings.twilio_phone_number == OUR_NUMBER
    assert env.settings.elevenlabs_api_base == "https://api.elevenlabs.io"  # the default
    assert env.blocker("ELEVENLABS_API_KEY", "ELEVENLABS_API_BASE") == (
        "ELEVENLABS_API_BASE is malformed (see above)"
    )
    assert env.blocker("TWILIO_API_BASE") is None  # unset but defaulted


# --- ElevenLabs ----------------------------------------------------------------------


def test_bad_elevenlabs_key(world: World) -> None:
    world.env["ELEVENLABS_API_KEY"] = "not-the-key"
    report = world.run()
    key = check(report, "elevenlabs.api_key")
    assert key.status == "fail"
    assert "rejected (401)" in key.detail and "Invalid API key" in key.detail
    assert "ELEVENLABS_API_KEY" in key.fix
    assert check(report, "elevenlabs.agent.agent_default").status == "skip"
    assert "not-the-key" not in render_text(report)


def test_agent_not_found(world: World) -> None:
    world.elevenlabs.agents.clear()
    report = world.run(fix=True)
    assert check(report, "elevenlabs.api_key").status == "pass"
    agent = check(report, "elevenlabs.agent.agent_default")
    assert agent.status == "fail" and not agent.fixable
    assert agent.detail.startswith("not found (used by ELEVENLABS_AGENT_ID)")
    assert "agent id" in agent.fix
    assert world.elevenlabs.agent_patches == []


FORMAT_CASES = [
    pytest.param(
        "pcm_16000", "ulaw_8000", {"asr.user_input_audio_format": "pcm_16000"}, id="input"
    ),
    pytest.param(
        "ulaw_8000", "pcm_44100", {"tts.agent_output_audio_format": "pcm_44100"}, id="output"
    ),
    pytest.param(
        "pcm_16000",
        "pcm_16000",
        {"asr.user_input_audio_format": "pcm_16000", "tts.agent_output_audio_format": "pcm_16000"},
        id="both",
    ),
]


@pytest.mark.parametrize(("input_format", "output_format", "wrong"), FORMAT_CASES)
def test_agent_with_wrong_formats(
    world: World, input_format: str, output_format: str, wrong: dict[str, str]
) -> None:
    world.elevenlabs.add_agent(
        "agent_default", input_format=input_format, output_format=output_format
    )
    report = world.run()
    agent = check(report, "elevenlabs.agent.agent_default")
    assert (agent.status, agent.fixable) == ("fail", True)
    for field, value in wrong.items():
        assert f"{field}={value}" in agent.detail
    assert "31951" in agent.detail
    assert "callbridge doctor --fix" in agent.fix
    assert "run `callbridge doctor --fix`" in render_text(report)
    assert world.elevenlabs.agent_patches == []  # not without --fix


@pytest.mark.parametrize(("input_format", "output_format", "wrong"), FORMAT_CASES)
def test_fix_agent_formats(
    world: World, input_format: str, output_format: str, wrong: dict[str, str]
) -> None:
    world.elevenlabs.add_agent(
        "agent_default", input_format=input_format, output_format=output_format
    )
    report = world.run(fix=True)
    assert report.ok
    agent = check(report, "elevenlabs.agent.agent_default")
    assert agent.status == "fixed"
    assert agent.previous == wrong
    assert "confirmed by reading back" in agent.detail
    # Only what was wrong is sent.
    [patch] = world.elevenlabs.agent_patches
    sent = {
        f"{section}.{field}": value
        for section, fields in patch["body"]["conversation_config"].items()
        for field, value in fields.items()
    }
    assert sent == dict.fromkeys(wrong, "ulaw_8000")
    config = world.elevenlabs.agents["agent_default"]["conversation_config"]
    assert config["asr"]["user_input_audio_format"] == "ulaw_8000"
    assert config["tts"]["agent_output_audio_format"] == "ulaw_8000"
    text = render_text(report)
    assert "FIXED elevenlabs agent agent_default: audio formats set to ulaw_8000" in text
    assert "was: " + ", ".join(f"{f}={v}" for f, v in wrong.items()) in text
    # Fixed for good: the next run passes without changing anything.
    again = world.run(fix=True)
    assert check(again, "elevenlabs.agent.agent_default").status == "pass"
    assert len(world.elevenlabs.agent_patches) == 1


def test_fix_that_does_not_stick_fails(world: World) -> None:
    world.elevenlabs.add_agent("agent_default", input_format="pcm_16000")
    world.elevenlabs.apply_agent_patches = False  # 200, but nothing changes
    report = world.run(fix=True)
    agent = check(report, "elevenlabs.agent.agent_default")
    assert agent.status == "fail"
    assert "accepted but the agent still reports asr.user_input_audio_format=pcm_16000" in (
        agent.detail
    )
    # The PATCH was accepted: what it was sent to replace is kept, whatever happened.
    assert agent.previous == {"asr.user_input_audio_format": "pcm_16000"}
    assert not report.ok


AGENT_WAS = {"tts.agent_output_audio_format": "pcm_16000"}
# (scripted answers of the fake: the GET, the PATCH, the GET that reads it back;
# or a fault of the PATCH's own), what the line says, and what it keeps for undoing.
AGENT_FIX_FAILURES = [
    pytest.param(
        ["ok", "status:400"],
        None,
        "; the fix failed: ElevenLabs API error (400): fake error 400",
        None,
        id="patch-refused",
    ),
    pytest.param(
        [],
        httpx.ConnectError("refused"),
        "; the fix failed: could not reach ElevenLabs: refused",
        None,
        id="patch-not-sent",
    ),
    pytest.param(
        ["ok", "status:500"],
        None,
        "; the change may have been applied, but could not confirm: "
        "ElevenLabs API error (500): fake error 500",
        AGENT_WAS,
        id="patch-500",
    ),
    pytest.param(
        [],
        httpx.ReadTimeout("slow"),
        "; the change may have been applied, but could not confirm: "
        "no answer from ElevenLabs: timed out waiting for a response",
        AGENT_WAS,
        id="patch-timeout",
    ),
    pytest.param(
        ["ok", "ok", "status:503"],
        None,
        "; applied, but could not confirm: ElevenLabs API error (503): fake error 503",
        AGENT_WAS,
        id="read-back-503",
    ),
]


@pytest.mark.parametrize(("steps", "fault", "words", "previous"), AGENT_FIX_FAILURES)
def test_fix_agent_fails(
    world: World,
    steps: list[str],
    fault: Exception | None,
    words: str,
    previous: dict[str, str] | None,
) -> None:
    world.elevenlabs.add_agent("agent_default", output_format="pcm_16000")
    world.elevenlabs.script.extend(steps)
    if fault is not None:
        world.fail_after("elevenlabs.test", "PATCH", "/v1/convai/agents/", fault)
    report = world.run(fix=True)
    agent = check(report, "elevenlabs.agent.agent_default")
    assert agent.status == "fail"
    assert agent.detail == "tts.agent_output_audio_format=pcm_16000" + words
    assert agent.previous == previous
    text = render_text(report)
    assert ("      was: tts.agent_output_audio_format=pcm_16000\n" in text) is bool(previous)
    if previous:
        assert "run `callbridge doctor` again" in agent.fix
    by_name = {item["name"]: item for item in json.loads(render_json(report))["checks"]}
    assert by_name["elevenlabs.agent.agent_default"]["previous"] == previous
    assert not report.ok


ROUTES = """
[[rules]]
name = "vip"
when = { callers = ["+15551230000"] }
action = "agent"
agent_id = "agent_vip"

[[rules]]
name = "spanish"
when = { caller_countries = ["ES", "MX"] }
action = "agent"
agent_id = "agent_es"

[[rules]]
name = "busy"
when = { anonymous = true }
action = "forward"
to = ["+15557650001"]
on_no_answer = { action = "agent", agent_id = "agent_overflow" }

[[rules]]
name = "also-vip"
when = { caller_prefixes = ["+4420"] }
action = "agent"
agent_id = "agent_vip"

[[rules]]
name = "everyone"
action = "agent"
"""


def test_routing_file_agents_are_checked(world: World, tmp_path: Path) -> None:
    routes = tmp_path / "routes.toml"
    routes.write_text(ROUTES)
    world.env["ROUTES_FILE"] = str(routes)
    world.elevenlabs.add_agent("agent_vip")
    world.elevenlabs.add_agent("agent_es", input_format="pcm_8000")
    report = world.run(skip_public=True)
    assert check(report, "routes").detail == f"{routes}: 5 rule(s), 0 schedule(s)"
    agents = {c.name: c for c in report.checks if c.name.startswith("elevenlabs.agent.")}
    assert list(agents) == [
        "elevenlabs.agent.agent_default",
        "elevenlabs.agent.agent_vip",
        "elevenlabs.agent.agent_es",
        "elevenlabs.agent.agent_overflow",
    ]
    assert agents["elevenlabs.agent.agent_vip"].status == "pass"
    assert "used by rule 'vip', rule 'also-vip'" in agents["elevenlabs.agent.agent_vip"].detail
    assert agents["elevenlabs.agent.agent_es"].status == "fail"
    assert "used by rule 'spanish'" in agents["elevenlabs.agent.agent_es"].detail
    overflow = agents["elevenlabs.agent.agent_overflow"]
    assert overflow.status == "fail" and "not found (used by rule 'busy')" in overflow.detail

    fixed = world.run(skip_public=True, fix=True)
    assert check(fixed, "elevenlabs.agent.agent_es").status == "fixed"
    assert check(fixed, "elevenlabs.agent.agent_overflow").status == "fail"
    assert [p["agent_id"] for p in world.elevenlabs.agent_patches] == ["agent_es"]


def test_agent_uses_covers_every_way_to_an_agent() -> None:
    table = parse_routes(
        ROUTES
        + """
[fallback]
action = "forward"
to = ["+15557650002"]
on_no_answer = { action = "agent", agent_id = "agent_night" }
"""
    )
    assert agent_uses(table, "agent_vip") == {
        "agent_vip": ["ELEVENLABS_AGENT_ID", "rule 'vip'", "rule 'also-vip'"],
        "agent_es": ["rule 'spanish'"],
        "agent_overflow": ["rule 'busy'"],
        "agent_night": ["fallback"],
    }
    assert agent_uses(None, "") == {}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        pytest.param("[[rules]\n", "invalid TOML", id="toml"),
        pytest.param('[[rules]]\nname = "x"\naction = "teleport"\n', "unknown action", id="action"),
        pytest.param(None, "cannot read routing file", id="missing"),
    ],
)
def test_bad_routing_file(world: World, tmp_path: Path, text: str | None, words: str) -> None:
    routes = tmp_path / "routes.toml"
    if text is not None:
        routes.write_text(text)
    world.env["ROUTES_FILE"] = str(routes)
    report = world.run()
    result = check(report, "routes")
    assert result.status == "fail" and words in result.detail
    assert f"callbridge routes check {routes}" in result.fix
    # The default agent is still checked.
    assert check(report, "elevenlabs.agent.agent_default").status == "pass"
    assert not report.ok


def test_routes_option_overrides_routes_file(world: World, tmp_path: Path) -> None:
    world.env["ROUTES_FILE"] = str(tmp_path / "missing.toml")
    routes = tmp_path / "other.toml"
    routes.write_text('[[rules]]\nname = "all"\naction = "say"\nmessage = "Closed."\n')
    report = world.run(routes_file=routes)
    assert check(report, "routes").status == "pass"
    assert report.ok


# --- Twilio --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        pytest.param({"TWILIO_AUTH_TOKEN": "wrong-token"}, "code 20003", id="token"),
        pytest.param({"TWILIO_ACCOUNT_SID": "AC" + "b" * 32}, "code 20003", id="account"),
    ],
)
def test_bad_twilio_credentials(world: World, changes: dict[str, str], words: str) -> None:
    world.env.update(changes)
    report = world.run()
    credentials = check(report, "twilio.credentials")
    assert credentials.status == "fail" and words in credentials.detail
    assert "TWILIO_AUTH_TOKEN" in credentials.fix
    for name in TWILIO_CHECKS[1:]:
        assert check(report, name).status == "skip"
    assert "wrong-token" not in render_text(report)


def test_suspended_account(world: World) -> None:
    world.twilio.account_status = "suspended"
    credentials = check(world.run(), "twilio.credentials")
    assert credentials.status == "fail" and "is suspended" in credentials.detail


def test_number_not_on_the_account(world: World) -> None:
    world.twilio.numbers.clear()
    world.twilio.add_number("+14155550199", voice_url=INBOUND_URL)
    report = world.run(fix=True)
    number = check(report, "twilio.number")
    assert number.status == "fail"
    assert number.detail == f"not on account {ACCOUNT_SID}"
    assert "TWILIO_PHONE_NUMBER" in number.fix
    assert [check(report, name).status for name in WIRING_CHECKS] == ["skip", "skip"]
    assert world.twilio_writes() == []


OLD = "https://old.example.com/voice"
WIRING_CASES = [
    pytest.param(
        {"voice_url": OLD}, {"twilio.number.voice": {"voice_url": OLD}}, id="voice-url-elsewhere"
    ),
    pytest.param({"voice_url": ""}, {"twilio.number.voice": {"voice_url": ""}}, id="no-voice-url"),
    pytest.param(
        {"voice_method": "GET"}, {"twilio.number.voice": {"voice_method": "GET"}}, id="get"
    ),
    pytest.param(
        {"voice_application_sid": APP_SID},
        {"twilio.number.voice": {"voice_application_sid": APP_SID}},
        id="twiml-app",
    ),
    pytest.param(
        {"trunk_sid": TRUNK_SID}, {"twilio.number.voice": {"trunk_sid": TRUNK_SID}}, id="trunk"
    ),
    pytest.param(
        {"status_callback": "https://old.example.com/status"},
        {"twilio.number.status_callback": {"status_callback": "https://old.example.com/status"}},
        id="status-callback-elsewhere",
    ),
    pytest.param(
        {"status_callback_method": "GET"},
        {"twilio.number.status_callback": {"status_callback_method": "GET"}},
        id="status-callback-get",
    ),
    pytest.param(
        {"voice_url": OLD, "voice_method": "GET", "status_callback": ""},
        {
            "twilio.number.voice": {"voice_url": OLD, "voice_method": "GET"},
            "twilio.number.status_callback": {"status_callback": ""},
        },
        id="all-wrong",
    ),
]


def misconfigure(world: World, changes: dict[str, str]) -> None:
    world.twilio.numbers.clear()
    wiring = {"voice_url": INBOUND_URL, "status_callback": STATUS_URL, **changes}
    world.number = world.twilio.add_number(OUR_NUMBER, **wiring)


@pytest.mark.parametrize(("changes", "wrong"), WIRING_CASES)
def test_number_wiring(
    world: World, changes: dict[str, str], wrong: dict[str, dict[str, str]]
) -> None:
    misconfigure(world, changes)
    report = world.run()
    assert not report.ok
    for name in WIRING_CHECKS:
        result = check(report, name)
        if name not in wrong:
            assert result.status == "pass"
            continue
        assert (result.status, result.fixable) == ("fail", True)
        for field, value in wrong[name].items():
            assert f"{field}={value or '(none)'} (wanted " in result.detail
        assert "callbridge doctor --fix" in result.fix
        assert "Twilio console" in result.fix
    assert world.twilio_writes() == []


@pytest.mark.parametrize(("changes", "wrong"), WIRING_CASES)
def test_fix_number_wiring(
    world: World, changes: dict[str, str], wrong: dict[str, dict[str, str]]
) -> None:
    misconfigure(world, changes)
    report = world.run(fix=True)
    assert report.ok
    for name in WIRING_CHECKS:
        result = check(report, name)
        if name not in wrong:
            assert (result.status, result.previous) == ("pass", None)
            continue
        assert result.status == "fixed"
        assert result.previous == wrong[name]
        assert "confirmed by reading back" in result.detail
    number = world.twilio.numbers[world.number["sid"]]
    assert (number["voice_url"], number["voice_method"]) == (INBOUND_URL, "POST")
    assert (number["status_callback"], number["status_callback_method"]) == (STATUS_URL, "POST")
    assert (number["voice_application_sid"], number["trunk_sid"]) == (None, None)
    # One update, with only what was wrong in it.
    [update] = world.twilio_writes()
    expected = {
        "voice_url": ("VoiceUrl", INBOUND_URL),
        "voice_method": ("VoiceMethod", "POST"),
        "voice_application_sid": ("VoiceApplicationSid", ""),
        "trunk_sid": ("TrunkSid", ""),
        "status_callback": ("StatusCallback", STATUS_URL),
        "status_callback_method": ("StatusCallbackMethod", "POST"),
    }
    fields = {field for previous in wrong.values() for field in previous}
    assert update.form == {expected[f][0]: [expected[f][1]] for f in fields}
    # The previous values are in the output, so that the change can be undone.
    text = render_text(report)
    for previous in wrong.values():
        was = ", ".join(f"{field}={value or '(none)'}" for field, value in previous.items())
        assert f"      was: {was}\n" in text
    assert json.loads(render_json(report))["ok"] is True
    # And it stays fixed.
    assert set(statuses(world.run(fix=True)).values()) == {"pass"}
    assert len(world.twilio_writes()) == 1


NUMBER_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/IncomingPhoneNumbers/PN"
# (scripted answers of the fake: the account, the list, the update, the read-back; or
# a fault of the update's own), what the line says, and whether it keeps the old value.
NUMBER_FIX_FAILURES = [
    pytest.param(
        ["ok", "ok", "status:400"],
        None,
        "; the fix failed: Twilio API error (400, code 20400): "
        "Unable to update record: Bad Request",
        False,
        id="update-refused",
    ),
    pytest.param(
        [],
        httpx.ConnectError("refused"),
        "; the fix failed: could not reach Twilio: refused",
        False,
        id="update-not-sent",
    ),
    pytest.param(
        ["ok", "ok", "status:500"],
        None,
        "; the update may have been applied, but could not confirm: "
        "Twilio API error (500, code 20500): Unable to update record: Internal Server Error",
        True,
        id="update-500",
    ),
    pytest.param(
        [],
        httpx.ReadTimeout("slow"),
        "; the update may have been applied, but could not confirm: "
        "no answer from Twilio: timed out waiting for a response",
        True,
        id="update-timeout",
    ),
    pytest.param(
        ["ok", "ok", "ok", "status:503"],
        None,
        "; applied, but could not confirm: "
        "Twilio API error (503, code 20503): Unable to fetch record: Service Unavailable",
        True,
        id="read-back-503",
    ),
]


@pytest.mark.parametrize(("steps", "fault", "words", "kept"), NUMBER_FIX_FAILURES)
def test_fix_number_fails(
    world: World, steps: list[str], fault: Exception | None, words: str, kept: bool
) -> None:
    misconfigure(world, {"voice_url": OLD})
    world.twilio.script.extend(steps)
    if fault is not None:
        world.fail_after("twilio.test", "POST", NUMBER_PATH, fault)
    report = world.run(fix=True)
    voice = check(report, "twilio.number.voice")
    assert voice.status == "fail"
    assert voice.detail == f"voice_url={OLD} (wanted {INBOUND_URL})" + words
    # A refused update changed nothing; any other failure may have changed the number.
    assert voice.previous == ({"voice_url": OLD} if kept else None)
    assert (f"      was: voice_url={OLD}\n" in render_text(report)) is kept
    by_name = {item["name"]: item for item in json.loads(render_json(report))["checks"]}
    assert by_name["twilio.number.voice"]["previous"] == voice.previous
    if kept:
        assert "run `callbridge doctor` again" in voice.fix
    assert check(report, "twilio.number.status_callback").status == "pass"
    assert not report.ok


def test_fix_number_that_does_not_stick_fails(world: World) -> None:
    misconfigure(world, {"voice_method": "GET", "status_callback_method": "GET"})
    world.twilio.apply_number_updates = False  # 200, but nothing changes
    report = world.run(fix=True)
    for name, field in [
        ("twilio.number.voice", "voice_method"),
        ("twilio.number.status_callback", "status_callback_method"),
    ]:
        result = check(report, name)
        assert (result.status, result.previous) == ("fail", {field: "GET"})
        assert f"updated, but the number still shows {field}=GET" in result.detail
    assert len(world.twilio_writes()) == 1
    assert not report.ok


def test_account_is_read_without_its_auth_token(world: World) -> None:
    async def read() -> dict[str, Any]:
        twilio = TwilioNumbers(
            account_sid=ACCOUNT_SID,
            auth_token=Secret(AUTH_TOKEN),
            api_base="http://twilio.test",
            transport=world.upstreams.transport,
        )
        try:
            return await twilio.account()
        finally:
            await twilio.aclose()

    account = asyncio.run(read())
    assert account["sid"] == ACCOUNT_SID
    assert "auth_token" not in account
    assert AUTH_TOKEN not in json.dumps(account)


@pytest.mark.parametrize("skip_public", [True, False], ids=["skip-public", "healthz-answers"])
@pytest.mark.parametrize(
    ("url", "reason"),
    [
        pytest.param("http://bridge.example.com", "is not https", id="http"),
        pytest.param("https://localhost:8443", "is not a public address (localhost)", id="local"),
        pytest.param("https://127.0.0.1", "is not a public address (127.0.0.1)", id="loopback"),
        pytest.param("https://192.168.1.20", "is not a public address (192.168", id="private"),
    ],
)
def test_fix_number_needs_a_url_twilio_can_reach(
    world: World, url: str, reason: str, skip_public: bool
) -> None:
    misconfigure(world, {"voice_url": OLD})
    world.env["PUBLIC_BASE_URL"] = url
    # Even a bridge that answers there (the doctor run next to it) is not enough.
    world.set_host(httpx.URL(url).host, httpx.ASGITransport(app=world.health.app))
    report = world.run(fix=True, skip_public=skip_public)
    assert check(report, "public.healthz").status == ("skip" if skip_public else "pass")
    for name in WIRING_CHECKS:
        result = check(report, name)
        assert (result.status, result.previous, result.fixable) == ("fail", None, False)
        assert f"; not fixed: PUBLIC_BASE_URL {url} {reason}" in result.detail
        assert "set PUBLIC_BASE_URL to the public https origin" in result.fix
    assert world.twilio_writes() == []
    assert world.twilio.numbers[world.number["sid"]]["voice_url"] == OLD


HEALTH_FAILURES = [
    pytest.param(503, {"detail": "down"}, None, "answered 503", id="503"),
    pytest.param(200, "<h1>Welcome to nginx</h1>", None, "not as the bridge does", id="other"),
    pytest.param(200, {"status": "starting"}, None, "not as the bridge does", id="not-ok"),
    pytest.param(200, ["ok"], None, "not as the bridge does", id="not-an-object"),
    pytest.param(
        None, None, httpx.ConnectError("connection refused"), "connection refused", id="down"
    ),
    pytest.param(None, None, httpx.ReadTimeout("slow"), "no answer in time", id="timeout"),
]


@pytest.mark.parametrize(("status", "body", "error", "words"), HEALTH_FAILURES)
def test_fix_number_waits_for_the_bridge_to_answer(
    world: World, status: int | None, body: Any, error: Exception | None, words: str
) -> None:
    misconfigure(world, {"voice_url": OLD, "status_callback": ""})
    world.elevenlabs.add_agent("agent_default", output_format="pcm_16000")
    if error is not None:
        world.set_host("bridge.example.com", raising(error))
    else:
        assert status is not None
        world.health.status, world.health.body = status, body
    report = world.run(fix=True)
    healthz = check(report, "public.healthz")
    assert healthz.status == "fail" and words in healthz.detail
    for name in WIRING_CHECKS:
        result = check(report, name)
        assert (result.status, result.previous, result.fixable) == ("fail", None, False)
        assert (
            "; not fixed: the bridge does not answer at PUBLIC_BASE_URL "
            f"({healthz.detail}), so Twilio's calls would fail there"
        ) in result.detail
        assert f"so that {PUBLIC}/healthz answers" in result.fix
    assert world.twilio_writes() == []
    # The agent does not depend on the public URL: it is still fixed.
    assert check(report, "elevenlabs.agent.agent_default").status == "fixed"
    text = render_text(report)
    assert "Some failures can be fixed for you" not in text


def test_fix_number_with_skip_public_says_healthz_was_not_checked(world: World) -> None:
    misconfigure(world, {"voice_url": OLD})
    world.set_host("bridge.example.com", raising(httpx.ConnectError("not deployed yet")))
    report = world.run(fix=True, skip_public=True)
    voice = check(report, "twilio.number.voice")
    assert (voice.status, voice.previous) == ("fixed", {"voice_url": OLD})
    assert voice.detail == (
        f"now voice_url={INBOUND_URL}, voice_method=POST, confirmed by reading back; "
        f"{PUBLIC}/healthz was not checked (--skip-public): make sure the bridge answers there"
    )
    assert len(world.twilio_writes()) == 1
    assert report.ok


def test_a_password_in_a_replaced_url_is_masked_in_the_text_only(world: World) -> None:
    old = "https://olduser:old-pass-word@old.example.com/voice"
    misconfigure(world, {"voice_url": old})
    unfixed = render_text(world.run())
    assert "voice_url=https://olduser:***@old.example.com/voice (wanted " in unfixed
    report = world.run(fix=True)
    text = render_text(report)
    assert "      was: voice_url=https://olduser:***@old.example.com/voice\n" in text
    assert "old-pass-word" not in unfixed + text
    # The JSON keeps it: that is what puts the number back as it was.
    by_name = {item["name"]: item for item in json.loads(render_json(report))["checks"]}
    assert by_name["twilio.number.voice"]["previous"] == {"voice_url": old}


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        pytest.param("https://u:p@h/x", "https://u:***@h/x", id="path"),
        pytest.param("a=http://u:p@h, b=GET", "a=http://u:***@h, b=GET", id="no-path"),
        pytest.param("https://u:p@ss@h/x", "https://u:***@h/x", id="at-in-password"),
        pytest.param("https://:token@h", "https://:***@h", id="no-user"),
        pytest.param("https://u@h/x", "https://u@h/x", id="no-password"),
        pytest.param("https://h/x?u=a:b@c", "https://h/x?u=a:b@c", id="in-query"),
    ],
)
def test_mask_passwords(text: str, masked: str) -> None:
    assert mask_passwords(text) == masked


# --- the public URL ------------------------------------------------------------------


def raising(error: Exception) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    ("status", "body", "headers", "words"),
    [
        pytest.param(503, {"detail": "down"}, {}, "answered 503", id="503"),
        pytest.param(404, "<h1>Not found</h1>", {}, "answered 404", id="404"),
        pytest.param(200, "<h1>Welcome to nginx</h1>", {}, "not as the bridge does", id="other"),
        pytest.param(200, {"status": "starting"}, {}, "not as the bridge does", id="not-ok"),
        pytest.param(
            301, "", {"location": "https://elsewhere.example/"}, "redirects (301) to", id="moved"
        ),
    ],
)
def test_public_healthz_fails(
    world: World, status: int, body: Any, headers: dict[str, str], words: str
) -> None:
    world.health.status, world.health.body, world.health.headers = status, body, headers
    report = world.run()
    result = check(report, "public.healthz")
    assert result.status == "fail" and words in result.detail
    assert "--skip-public" in result.fix
    assert not report.ok


@pytest.mark.parametrize(
    ("error", "words"),
    [
        pytest.param(httpx.ConnectError("connection refused"), "connection refused", id="refused"),
        pytest.param(httpx.ReadTimeout("slow"), "no answer in time", id="timeout"),
    ],
)
def test_public_healthz_unreachable(world: World, error: Exception, words: str) -> None:
    world.set_host("bridge.example.com", raising(error))
    result = check(world.run(), "public.healthz")
    assert result.status == "fail" and words in result.detail


def test_skip_public(world: World) -> None:
    world.set_host("bridge.example.com", raising(httpx.ConnectError("down")))
    report = world.run(skip_public=True)
    assert check(report, "public.healthz").status == "skip"
    assert report.ok
    assert "SKIP  public url /healthz: skipped (--skip-public)" in render_text(report)


# --- upstream faults -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "error", "name", "words"),
    [
        pytest.param(
            "elevenlabs.test",
            httpx.ConnectError("refused"),
            "elevenlabs.api_key",
            "could not reach ElevenLabs",
            id="elevenlabs-refused",
        ),
        pytest.param(
            "elevenlabs.test",
            httpx.ReadTimeout("slow"),
            "elevenlabs.api_key",
            "no answer from ElevenLabs at http://elevenlabs.test: timed out waiting",
            id="elevenlabs-timeout",
        ),
        pytest.param(
            "twilio.test",
            httpx.ConnectError("refused"),
            "twilio.credentials",
            "could not reach Twilio",
            id="twilio-refused",
        ),
        pytest.param(
            "twilio.test",
            httpx.ConnectTimeout("slow"),
            "twilio.credentials",
            "could not reach Twilio at http://twilio.test: timed out connecting",
            id="twilio-timeout",
        ),
    ],
)
def test_unreachable_upstream_is_a_failing_line(
    world: World, host: str, error: Exception, name: str, words: str
) -> None:
    world.set_host(host, raising(error))
    report = world.run()
    result = check(report, name)
    assert result.status == "fail" and words in result.detail
    assert result.fix
    # The other upstream is unaffected.
    other = "twilio.credentials" if host == "elevenlabs.test" else "elevenlabs.api_key"
    assert check(report, other).status == "pass"


@pytest.mark.parametrize(
    ("step", "name", "words"),
    [
        pytest.param("status:503", "elevenlabs.agent.agent_default", "(503)", id="agent-503"),
        pytest.param("html", "elevenlabs.agent.agent_default", "not JSON", id="agent-html"),
    ],
)
def test_elevenlabs_faults(world: World, step: str, name: str, words: str) -> None:
    world.elevenlabs.script.append(step)
    report = world.run()
    assert check(report, "elevenlabs.api_key").status == "pass"
    result = check(report, name)
    assert result.status == "fail" and words in result.detail
    assert result.fix


@pytest.mark.parametrize(
    ("steps", "name", "words"),
    [
        pytest.param(["status:500"], "twilio.credentials", "(500", id="account-500"),
        pytest.param(["html"], "twilio.credentials", "not a JSON object", id="account-html"),
        pytest.param(["ok", "status:503"], "twilio.number", "could not list", id="list-503"),
        pytest.param(["ok", "json"], "twilio.number", "could not list", id="list-garbage"),
    ],
)
def test_twilio_faults(world: World, steps: list[str], name: str, words: str) -> None:
    world.twilio.script.extend(steps)
    report = world.run()
    result = check(report, name)
    assert result.status == "fail" and words in result.detail
    assert result.fix
    assert not report.ok


def test_secrets_echoed_by_an_upstream_are_hidden(world: World) -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        key = request.headers["xi-api-key"]
        return httpx.Response(401, json={"detail": {"message": f"Invalid API key {key}"}})

    world.set_host("elevenlabs.test", httpx.MockTransport(echo))
    report = world.run()
    assert "Invalid API key **********" in check(report, "elevenlabs.api_key").detail
    assert_no_secrets(report)


def test_every_secret_setting_is_kept_out_of_the_report() -> None:
    # Long enough for the bridge's own tokens (32 characters at least).
    environ = {name: f"value-of-{name.lower()}-{'x' * 32}" for name in SECRET_VARIABLES}
    settings = read_environment(environ).settings
    secret_fields = [f.name for f in fields(Settings) if get_type_hints(Settings)[f.name] is Secret]
    # Each Secret field is read from the variable the doctor hides.
    assert {f: getattr(settings, f).reveal() for f in secret_fields} == {
        f: f"value-of-{f}-{'x' * 32}" for f in secret_fields
    }
    assert {"METRICS_TOKEN", "SESSION_SECRET"} <= set(SECRET_VARIABLES)


METRICS = "metrics-token-value-" + "m" * 20
SESSION = "session-secret-value-" + "s" * 20


@pytest.mark.parametrize(
    ("variable", "value", "echoed"),
    [
        pytest.param("METRICS_TOKEN", METRICS, METRICS, id="metrics"),
        pytest.param(
            "SESSION_SECRET",
            SESSION,
            SESSION,
            id="session",
        ),
        pytest.param(
            "ELEVENLABS_WEBHOOK_SECRET",
            "new-webhook-secret,old-webhook-secret",
            "old-webhook-secret",
            id="rotated-webhook-secret",
        ),
        pytest.param(
            "ELEVENLABS_WEBHOOK_SECRET",
            "new-webhook-secret, old-webhook-secret",
            "new-webhook-secret",
            id="rotated-webhook-secret-spaced",
        ),
        pytest.param(
            "DATABASE_URL", "postgresql://u:database-password@db/x", "database-password", id="db"
        ),
    ],
)
def test_every_secret_echoed_by_an_upstream_is_hidden(
    world: World, variable: str, value: str, echoed: str
) -> None:
    world.env[variable] = value

    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"detail": {"message": f"Invalid API key {echoed}"}})

    world.set_host("elevenlabs.test", httpx.MockTransport(echo))
    report = world.run()
    assert "Invalid API key **********" in check(report, "elevenlabs.api_key").detail
    for text in (render_text(report), render_json(report)):
        assert echoed not in text


# --- the command ---------------------------------------------------------------------


@pytest.fixture
def servers() -> Iterator[tuple[FakeElevenLabs, FakeTwilio, dict[str, str]]]:
    """The fakes on real loopback ports, and the environment that points at them."""
    elevenlabs = FakeElevenLabs(api_key=ELEVENLABS_KEY)
    elevenlabs.add_agent("agent_default")
    twilio = FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
    twilio.add_number(OUR_NUMBER, voice_url=INBOUND_URL, status_callback=STATUS_URL)
    with running_server(elevenlabs.app) as eleven_url, running_server(twilio.app) as twilio_url:
        env = {**GOOD_ENV, "ELEVENLABS_API_BASE": eleven_url, "TWILIO_API_BASE": twilio_url}
        yield elevenlabs, twilio, env


def set_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    clear_settings_environment(monkeypatch)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def test_cli_passes_with_exit_0(
    servers: tuple[FakeElevenLabs, FakeTwilio, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    set_env(monkeypatch, servers[2])
    code, out, err = run_cli(capsys, "doctor", "--skip-public")
    assert (code, err) == (0, ""), out
    assert "FAIL" not in out and out.rstrip().endswith("failed, 1 skipped")
    code, out, _ = run_cli(capsys, "doctor", "--skip-public", "--json")
    document = json.loads(out)
    assert (code, document["ok"]) == (0, True)
    for secret in SECRETS:
        assert secret not in out


def test_cli_fix_with_exit_0(
    servers: tuple[FakeElevenLabs, FakeTwilio, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    elevenlabs, twilio, env = servers
    elevenlabs.add_agent("agent_default", output_format="pcm_16000")
    (number,) = twilio.numbers.values()
    number.update(voice_url=OLD, voice_method="GET")
    set_env(monkeypatch, env)
    code, out, _ = run_cli(capsys, "doctor", "--skip-public")
    assert code == 1 and out.count("FAIL  ") == 2
    code, out, _ = run_cli(capsys, "doctor", "--skip-public", "--fix", "--json")
    assert code == 0
    fixed = {c["name"]: c for c in json.loads(out)["checks"] if c["status"] == "fixed"}
    assert fixed["twilio.number.voice"]["previous"] == {"voice_url": OLD, "voice_method": "GET"}
    assert fixed["elevenlabs.agent.agent_default"]["previous"] == {
        "tts.agent_output_audio_format": "pcm_16000"
    }


def test_cli_unreachable_upstreams(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    set_env(
        monkeypatch,
        {
            **GOOD_ENV,
            "ELEVENLABS_API_BASE": closed,
            "TWILIO_API_BASE": closed,
            "PUBLIC_BASE_URL": closed,
        },
    )
    code, out, err = run_cli(capsys, "doctor")
    assert code == 1
    assert "Traceback" not in out + err
    assert "FAIL  elevenlabs api key: could not reach ElevenLabs" in out
    assert "FAIL  twilio credentials: could not reach Twilio" in out
    assert f"FAIL  public url /healthz: {closed}/healthz:" in out


def test_cli_timeouts(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    elevenlabs = FakeElevenLabs(api_key=ELEVENLABS_KEY, script=["hang"])
    elevenlabs.add_agent("agent_default")
    twilio = FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, script=["hang"])

    async def hang(request: Request) -> Response:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    slow = Starlette(routes=[Route("/healthz", hang)])
    with (
        running_server(elevenlabs.app) as eleven_url,
        running_server(twilio.app) as twilio_url,
        running_server(slow) as public_url,
    ):
        env = {
            **GOOD_ENV,
            "ELEVENLABS_API_BASE": eleven_url,
            "TWILIO_API_BASE": twilio_url,
            "PUBLIC_BASE_URL": public_url,
        }
        set_env(monkeypatch, env)
        started = time.monotonic()
        code, out, err = run_cli(capsys, "doctor", "--timeout", "0.3")
        elapsed = time.monotonic() - started
    assert code == 1 and "Traceback" not in out + err
    assert elapsed < 3
    assert (
        f"FAIL  elevenlabs api key: no answer from ElevenLabs at {eleven_url}: "
        "timed out waiting for a response\n"
    ) in out
    assert (
        f"FAIL  twilio credentials: no answer from Twilio at {twilio_url}: "
        "timed out waiting for a response\n"
    ) in out
    assert "public url /healthz: " + public_url + "/healthz: no answer in time" in out


@pytest.mark.parametrize("timeout", ["0", "-1", "500"])
def test_cli_bad_timeout(capsys: pytest.CaptureFixture[str], timeout: str) -> None:
    code, _, err = run_cli(capsys, "doctor", "--timeout", timeout)
    assert code == 2 and "--timeout" in err


def test_cli_without_any_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clear_settings_environment(monkeypatch)
    code, out, err = run_cli(capsys, "doctor", "--json")
    assert code == 1 and err == ""
    document = json.loads(out)
    by_status: dict[str, list[str]] = {}
    for item in document["checks"]:
        by_status.setdefault(item["status"], []).append(item["name"])
    assert "settings.ELEVENLABS_API_KEY" in by_status["fail"]
    assert set(NETWORK_CHECKS) - {"elevenlabs.agent.agent_default"} <= set(by_status["skip"])


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TWILIO_AUTH_TOKEN", "a"),
        ("ELEVENLABS_API_KEY", "sk_1234567890ab"),
        ("ELEVENLABS_WEBHOOK_SECRET", "wsec_short"),
        ("ELEVENLABS_WEBHOOK_SECRET", f"{WEBHOOK_SECRET},wsec_old"),
        ("TWILIO_PREVIOUS_AUTH_TOKEN", "prev-token"),
    ],
)
def test_implausibly_short_upstream_secrets_are_flagged(
    world: World, variable: str, value: str
) -> None:
    world.env[variable] = value
    report = world.run()
    result = check(report, f"settings.{variable}")
    assert result.status == "fail"
    assert "shorter than 16 characters" in result.detail
    assert variable in result.fix
    for part in value.split(","):
        if len(part) >= 4:  # shorter ones are not searched for (results.MIN_SECRET_LENGTH)
            assert part not in render_text(report) and part not in render_json(report)


def test_upstream_secrets_of_a_plausible_length_pass(world: World) -> None:
    world.env["TWILIO_PREVIOUS_AUTH_TOKEN"] = "p" * 32
    report = world.run()
    assert check(report, "settings.TWILIO_AUTH_TOKEN").status == "pass"
    assert check(report, "settings.ELEVENLABS_API_KEY").status == "pass"
    assert "settings.TWILIO_PREVIOUS_AUTH_TOKEN" not in statuses(report)
    assert "settings.ELEVENLABS_WEBHOOK_SECRET" not in statuses(report)
