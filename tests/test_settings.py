from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from bridge.app import create_app
from bridge.secret import Secret
from bridge.settings import Settings, SettingsError

ELEVENLABS_KEY = "el-key-5d2a8b41c9"
AUTH_TOKEN = "tw-auth-9f3c1e77aa"
API_TOKEN = "api-token-0b6e2f55dd-4c1a9e7b3f2d8a60"
WEBHOOK_SECRET = "wsec-7a1d93c0ee"
SECRETS = (ELEVENLABS_KEY, AUTH_TOKEN, API_TOKEN, WEBHOOK_SECRET)

FULL_ENV = {
    "ELEVENLABS_API_KEY": ELEVENLABS_KEY,
    "ELEVENLABS_AGENT_ID": "agent_123",
    "ELEVENLABS_AGENT_PHONE_NUMBER_ID": "phnum_456",
    "ELEVENLABS_API_BASE": "https://eu.api.elevenlabs.io/",
    "ELEVENLABS_WEBHOOK_SECRET": WEBHOOK_SECRET,
    "TWILIO_ACCOUNT_SID": "AC0123456789abcdef0123456789abcdef",
    "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
    "TWILIO_PHONE_NUMBER": "+14155550100",
    "TWILIO_API_BASE": "http://127.0.0.1:9999",
    "PUBLIC_BASE_URL": "https://bridge.example.com/",
    "BRIDGE_API_TOKEN": API_TOKEN,
    "ROUTES_FILE": "routes.toml",
    "DATABASE_URL": "postgresql://127.0.0.1:5432/test",
    "PORT": "5000",
    "INBOUND_DEADLINE_SECONDS": "3.5",
    "TRUST_FORWARDED_HEADERS": "true",
    # Not "yes": refused with a public https PUBLIC_BASE_URL (see below).
    "BRIDGE_INSECURE_SKIP_TWILIO_SIGNATURE": "no",
    "UPSTREAM_MAX_CONNECTIONS": "50",
    "LOG_LEVEL": "debug",
}


def full_settings() -> Settings:
    return Settings.from_env(FULL_ENV)


def problems_for(env: dict[str, str]) -> list[str]:
    with pytest.raises(SettingsError) as excinfo:
        Settings.from_env(env)
    return excinfo.value.problems


# --- reading the environment ------------------------------------------------------


def test_defaults_from_an_empty_environment() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.elevenlabs_api_base == "https://api.elevenlabs.io"
    assert settings.twilio_api_base == "https://api.twilio.com"
    assert settings.public_base_url == ""
    assert settings.database_url == "sqlite:///./callbridge.sqlite3"
    assert settings.port == 8000
    assert settings.inbound_deadline == 5.0
    assert settings.trust_forwarded_headers is False
    assert settings.skip_twilio_signature is False
    assert settings.routes_file is None
    assert settings.log_level == "INFO"
    assert not settings.elevenlabs_api_key
    assert not settings.twilio_auth_token
    assert not settings.elevenlabs_configured


def test_every_variable_is_read() -> None:
    settings = full_settings()
    assert settings.elevenlabs_api_key == Secret(ELEVENLABS_KEY)
    assert settings.elevenlabs_api_key.reveal() == ELEVENLABS_KEY
    assert settings.elevenlabs_agent_id == "agent_123"
    assert settings.elevenlabs_agent_phone_number_id == "phnum_456"
    assert settings.elevenlabs_api_base == "https://eu.api.elevenlabs.io"
    assert settings.elevenlabs_webhook_secret.reveal() == WEBHOOK_SECRET
    assert settings.twilio_account_sid == "AC0123456789abcdef0123456789abcdef"
    assert settings.twilio_auth_token.reveal() == AUTH_TOKEN
    assert settings.twilio_phone_number == "+14155550100"
    assert settings.twilio_api_base == "http://127.0.0.1:9999"
    assert settings.public_base_url == "https://bridge.example.com"
    assert settings.bridge_api_token.reveal() == API_TOKEN
    assert settings.routes_file == Path("routes.toml")
    assert settings.database_url == "postgresql://127.0.0.1:5432/test"
    assert settings.port == 5000
    assert settings.inbound_deadline == 3.5
    assert settings.trust_forwarded_headers is True
    assert settings.skip_twilio_signature is False
    assert settings.upstream_max_connections == 50
    assert settings.log_level == "DEBUG"
    assert settings.elevenlabs_configured


def test_values_are_stripped() -> None:
    settings = Settings.from_env(
        {"TWILIO_AUTH_TOKEN": f"  {AUTH_TOKEN}\n", "PORT": " 8080 ", "ELEVENLABS_AGENT_ID": " a "}
    )
    assert settings.twilio_auth_token.reveal() == AUTH_TOKEN
    assert settings.port == 8080
    assert settings.elevenlabs_agent_id == "a"


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("INBOUND_DEADLINE_SECONDS", "0.5", 0.5),
        ("INBOUND_DEADLINE_SECONDS", "12", 12.0),
        ("PORT", "1", 1),
        ("PORT", "65535", 65535),
        ("TRUST_FORWARDED_HEADERS", "0", False),
        ("TRUST_FORWARDED_HEADERS", "off", False),
        ("TRUST_FORWARDED_HEADERS", "No", False),
        ("TRUST_FORWARDED_HEADERS", "TRUE", True),
        ("BRIDGE_INSECURE_SKIP_TWILIO_SIGNATURE", "1", True),
        ("BRIDGE_INSECURE_SKIP_TWILIO_SIGNATURE", "on", True),
        ("BRIDGE_INSECURE_SKIP_TWILIO_SIGNATURE", "false", False),
        ("LOG_LEVEL", "warning", "WARNING"),
        ("PUBLIC_BASE_URL", "http://localhost:8000", "http://localhost:8000"),
        # A trailing slash, as `heroku apps:info` prints the web URL, is dropped.
        ("PUBLIC_BASE_URL", "https://example.com/", "https://example.com"),
        # As Twilio writes the URL it signs: lowercase, IDNA, no default port.
        ("PUBLIC_BASE_URL", "HTTPS://Bridge.Example.COM", "https://bridge.example.com"),
        ("PUBLIC_BASE_URL", "https://example.com:443", "https://example.com"),
        ("PUBLIC_BASE_URL", "https://example.com:8443/", "https://example.com:8443"),
        ("PUBLIC_BASE_URL", "https://bücher.example", "https://xn--bcher-kva.example"),
        ("PUBLIC_BASE_URL", "http://[::1]:8000", "http://[::1]:8000"),
        ("TWILIO_PHONE_NUMBER", "+442071234567", "+442071234567"),
        ("TWILIO_ALLOWED_HOSTS", "", ()),
        (
            "TWILIO_ALLOWED_HOSTS",
            " Bridge.Example.COM., b.example.com:8443 c.example.com",
            ("bridge.example.com", "b.example.com:8443", "c.example.com"),
        ),
    ],
)
def test_accepted_values(name: str, value: str, expected: object) -> None:
    attribute = {
        "INBOUND_DEADLINE_SECONDS": "inbound_deadline",
        "PORT": "port",
        "TRUST_FORWARDED_HEADERS": "trust_forwarded_headers",
        "BRIDGE_INSECURE_SKIP_TWILIO_SIGNATURE": "skip_twilio_signature",
        "LOG_LEVEL": "log_level",
        "PUBLIC_BASE_URL": "public_base_url",
        "TWILIO_PHONE_NUMBER": "twilio_phone_number",
        "TWILIO_ALLOWED_HOSTS": "twilio_allowed_hosts",
    }[name]
    assert getattr(Settings.from_env({name: value}), attribute) == expected


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PUBLIC_BASE_URL", "bridge.example.com"),
        ("PUBLIC_BASE_URL", "ftp://bridge.example.com"),
        ("PUBLIC_BASE_URL", "https://"),
        ("PUBLIC_BASE_URL", "https://bridge.example.com/?token=1"),
        ("PUBLIC_BASE_URL", "https://bridge.example.com/#top"),
        # The webhook URL pasted whole: the bridge would be told to call /twilio/inbound/twilio/...
        ("PUBLIC_BASE_URL", "https://bridge.example.com/twilio/inbound"),
        ("PUBLIC_BASE_URL", "https://bridge.example.com/bridge/"),
        ("PUBLIC_BASE_URL", "https://user:secret@bridge.example.com"),
        ("PUBLIC_BASE_URL", "https://bridge.example.com?"),
        ("PUBLIC_BASE_URL", "https://bridge.example.com#"),
        ("PUBLIC_BASE_URL", "https://bridge.example.com:abc"),
        ("PUBLIC_BASE_URL", "https://bridge.example.com:99999"),
        ("ELEVENLABS_API_BASE", "api.elevenlabs.io"),
        ("TWILIO_API_BASE", "https://api.twilio.com?x=1"),
        ("TWILIO_PHONE_NUMBER", "5551234567"),
        ("TWILIO_PHONE_NUMBER", "+1 555 123 4567"),
        ("TWILIO_PHONE_NUMBER", "+05551234567"),
        ("TWILIO_PHONE_NUMBER", "+1555"),
        ("INBOUND_DEADLINE_SECONDS", "fast"),
        ("INBOUND_DEADLINE_SECONDS", "5s"),
        ("INBOUND_DEADLINE_SECONDS", "0.4"),
        ("INBOUND_DEADLINE_SECONDS", "0"),
        ("INBOUND_DEADLINE_SECONDS", "-1"),
        ("INBOUND_DEADLINE_SECONDS", "12.5"),
        ("INBOUND_DEADLINE_SECONDS", "15"),
        ("INBOUND_DEADLINE_SECONDS", "nan"),
        ("INBOUND_DEADLINE_SECONDS", "inf"),
        ("PORT", "0"),
        ("PORT", "65536"),
        ("PORT", "-80"),
        ("PORT", "http"),
        ("PORT", "80.5"),
        ("UPSTREAM_MAX_CONNECTIONS", "0"),
        ("TRUST_FORWARDED_HEADERS", "maybe"),
        ("BRIDGE_INSECURE_SKIP_TWILIO_SIGNATURE", "2"),
        ("LOG_LEVEL", "verbose"),
        ("LOG_LEVEL", "CRITICAL"),
        ("TWILIO_ALLOWED_HOSTS", "https://bridge.example.com"),
        ("TWILIO_ALLOWED_HOSTS", "user@bridge.example.com"),
    ],
)
def test_malformed_value_names_the_variable(name: str, value: str) -> None:
    problems = problems_for({name: value})
    assert len(problems) == 1
    assert problems[0].startswith(f"{name}:")


def test_settings_error_message_lists_every_problem() -> None:
    env = {
        "PUBLIC_BASE_URL": "bridge.example.com",
        "TWILIO_PHONE_NUMBER": "555-1234",
        "INBOUND_DEADLINE_SECONDS": "30",
        "PORT": "99999",
        "TRUST_FORWARDED_HEADERS": "sometimes",
        "LOG_LEVEL": "loud",
    }
    with pytest.raises(SettingsError) as excinfo:
        Settings.from_env(env)
    problems = excinfo.value.problems
    assert len(problems) == len(env)
    assert {problem.split(":")[0] for problem in problems} == set(env)
    message = str(excinfo.value)
    for name in env:
        assert name in message
    assert isinstance(excinfo.value, ValueError)


def test_settings_error_does_not_echo_secret_values() -> None:
    env = {**FULL_ENV, "PORT": "not-a-port"}
    with pytest.raises(SettingsError) as excinfo:
        Settings.from_env(env)
    for secret in SECRETS:
        assert secret not in str(excinfo.value)


# --- secrets stay hidden -----------------------------------------------------------


@pytest.mark.parametrize("render", [repr, str, format, lambda s: f"{s!r}", lambda s: f"{[s]}"])
def test_settings_text_never_contains_secrets(render: Callable[[Settings], str]) -> None:
    text = render(full_settings())
    for secret in SECRETS:
        assert secret not in text
    assert "Secret('**********')" in text


def test_secret_hides_itself() -> None:
    secret = Secret(AUTH_TOKEN)
    for text in (repr(secret), str(secret), f"{secret}", f"{[secret]}"):
        assert AUTH_TOKEN not in text
    assert secret.reveal() == AUTH_TOKEN
    assert secret == Secret(AUTH_TOKEN)
    assert secret != Secret("other")
    assert secret != AUTH_TOKEN
    assert bool(secret)
    assert not Secret("")


def test_missing_lists_what_is_not_configured() -> None:
    notes = Settings().missing()
    names = [note.split(" ")[0] for note in notes]
    assert names == [
        "ELEVENLABS_API_KEY",
        "ELEVENLABS_AGENT_ID",
        "TWILIO_AUTH_TOKEN",
        "PUBLIC_BASE_URL",
        "BRIDGE_API_TOKEN",
    ]
    assert "public https origin" in notes[3]


@pytest.mark.parametrize(
    ("changes", "expected_prefix"),
    [
        ({"public_base_url": "http://bridge.example.com"}, "PUBLIC_BASE_URL is not https"),
        ({"skip_twilio_signature": True}, "BRIDGE_INSECURE_SKIP_TWILIO_SIGNATURE is on"),
    ],
)
def test_missing_warns_about_risky_settings(changes: dict[str, Any], expected_prefix: str) -> None:
    settings = dataclasses.replace(
        Settings(
            elevenlabs_api_key=Secret(ELEVENLABS_KEY),
            elevenlabs_agent_id="agent_123",
            twilio_auth_token=Secret(AUTH_TOKEN),
            public_base_url="https://bridge.example.com",
        ),
        **changes,
    )
    notes = settings.missing()
    assert any(note.startswith(expected_prefix) for note in notes)


def test_missing_is_empty_when_fully_configured() -> None:
    settings = Settings(
        elevenlabs_api_key=Secret(ELEVENLABS_KEY),
        elevenlabs_agent_id="agent_123",
        twilio_auth_token=Secret(AUTH_TOKEN),
        twilio_phone_number="+14155550100",
        public_base_url="https://bridge.example.com",
        bridge_api_token=Secret(API_TOKEN),
    )
    assert settings.missing() == []


def test_missing_never_contains_secrets() -> None:
    text = "\n".join(full_settings().missing())
    for secret in SECRETS:
        assert secret not in text


def test_summary_shows_secrets_only_as_set_or_not_set() -> None:
    shown = dict(dataclasses.replace(full_settings(), skip_twilio_signature=True).summary())
    assert shown["ELEVENLABS_API_KEY"] == "set"
    assert shown["TWILIO_AUTH_TOKEN"] == "set"
    assert shown["BRIDGE_API_TOKEN"] == "set"
    assert shown["ELEVENLABS_AGENT_ID"] == "agent_123"
    assert shown["PUBLIC_BASE_URL"] == "https://bridge.example.com"
    assert shown["INBOUND_DEADLINE_SECONDS"] == "3.5"
    assert shown["twilio signature check"] == "OFF"
    text = repr(full_settings().summary())
    for secret in SECRETS:
        assert secret not in text

    empty = dict(Settings().summary())
    assert empty["ELEVENLABS_API_KEY"] == "not set"
    assert empty["TWILIO_AUTH_TOKEN"] == "not set"
    assert empty["BRIDGE_API_TOKEN"] == "not set"
    assert empty["PUBLIC_BASE_URL"] == "not set"
    assert empty["twilio signature check"] == "on"


# --- /healthz ---------------------------------------------------------------------------


def no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"unexpected upstream request {request.url}")


def test_healthz_lists_problems_when_unconfigured() -> None:
    # Unconfigured but for METRICS_TOKEN: the details are for a token holder only.
    token = "m" * 32
    settings = Settings(metrics_token=Secret(token))
    app = create_app(settings, transport=httpx.MockTransport(no_network))
    with TestClient(app) as client:
        response = client.get("/healthz", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["problems"] == settings.missing() == Settings().missing()
    assert len(body["problems"]) == 5
    assert body["routes"] == {"source": "(no routing file)", "rules": 0}


def test_healthz_never_shows_secrets() -> None:
    # The migrated SQLite file of the test's working directory (see conftest).
    settings = dataclasses.replace(
        full_settings(), routes_file=None, database_url="sqlite:///./callbridge.sqlite3"
    )
    app = create_app(settings, transport=httpx.MockTransport(no_network))
    with TestClient(app) as client:
        response = client.get("/healthz", headers={"authorization": f"Bearer {API_TOKEN}"})
    assert response.status_code == 200
    assert response.json()["problems"] == settings.missing()
    for secret in SECRETS:
        assert secret not in response.text


@pytest.mark.parametrize(
    ("public_base_url", "problem"),
    [
        ("https://bridge.example.com", None),
        ("https://my-bridge-1a2b3c4d5e6f.herokuapp.com", None),
        ("", "is not set"),
        ("http://bridge.example.com", "is not https"),
        ("https://127.0.0.1:8443", "is not a public address (127.0.0.1)"),
        ("https://localhost", "is not a public address (localhost)"),
        ("https://10.1.2.3", "is not a public address (10.1.2.3)"),
        ("https://192.168.0.10", "is not a public address (192.168.0.10)"),
        ("https://[::1]", "is not a public address (::1)"),
        ("https://localhost.", "is not a public address (localhost)"),
        ("https://127.1", "is not a public address (127.1)"),
        ("https://bridge.internal", "is not a public address (bridge.internal)"),
        ("https://printer.local", "is not a public address (printer.local)"),
        ("https://bridge", "is not a public address (bridge)"),
        ("https://[2001:4860:4860::8888]", None),
    ],
)
def test_what_twilio_cannot_reach(public_base_url: str, problem: str | None) -> None:
    found = Settings(public_base_url=public_base_url).twilio_cannot_reach()
    assert found == problem if problem is None else (found or "").startswith(problem)


@pytest.mark.parametrize(
    ("public_base_url", "warned"),
    [
        ("http://bridge.example.com", True),
        ("http://10.0.0.5:8000", True),
        ("http://127.0.0.1:8000", False),
        ("http://localhost:8000", False),
        ("http://[::1]:8000", False),
        ("https://bridge.example.com", False),
    ],
)
def test_plain_http_is_fine_on_loopback_only(public_base_url: str, warned: bool) -> None:
    settings = Settings(public_base_url=public_base_url)
    notes = settings.missing()
    assert any(note.startswith("PUBLIC_BASE_URL is not https") for note in notes) is warned


GENERATE = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'


@pytest.mark.parametrize("name", ["BRIDGE_API_TOKEN", "METRICS_TOKEN", "SESSION_SECRET"])
@pytest.mark.parametrize(
    ("value", "refused"),
    [("Q", True), ("x" * 31, True), (" " + "x" * 31 + " ", True), ("x" * 32, False), ("", False)],
    ids=["one-character", "31", "31-padded", "32", "unset"],
)
def test_the_bridges_own_tokens_are_at_least_32_characters(
    name: str, value: str, refused: bool
) -> None:
    if refused:
        with pytest.raises(SettingsError) as raised:
            Settings.from_env({name: value})
        assert f"{name}: is shorter than 32 characters" in str(raised.value)
        assert GENERATE in str(raised.value)
        assert value.strip() not in str(raised.value).replace(GENERATE, "")
    else:
        assert Settings.from_env({name: value}) is not None


@pytest.mark.parametrize(
    ("public", "skip", "refused"),
    [
        ("https://bridge.example.com", "true", True),
        ("https://bridge.example.com:8443", "yes", True),
        ("https://bridge.example.com", "false", False),
        ("http://127.0.0.1:8000", "true", False),
        ("https://localhost:8443", "true", False),
        ("https://192.168.1.20", "true", False),
        ("", "true", False),
    ],
)
def test_the_insecure_skip_flag_is_refused_for_a_public_https_origin(
    public: str, skip: str, refused: bool
) -> None:
    environ = {"PUBLIC_BASE_URL": public, "BRIDGE_INSECURE_SKIP_TWILIO_SIGNATURE": skip}
    if refused:
        with pytest.raises(SettingsError, match="BRIDGE_INSECURE_SKIP_TWILIO_SIGNATURE: "):
            Settings.from_env(environ)
    else:
        assert Settings.from_env(environ).skip_twilio_signature is (skip == "true")
