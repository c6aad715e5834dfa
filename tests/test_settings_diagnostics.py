"""Structured results of reading the settings: problems name their variable, notes
carry a severity (callers never parse the text)."""

from __future__ import annotations

import dataclasses
import logging

import httpx
import pytest
from starlette.testclient import TestClient

from bridge.app import create_app
from bridge.secret import Secret
from bridge.settings import Note, Problem, Settings, SettingsError, Severity
from tests.helpers import API_TOKEN, BEARER


def test_settings_error_details_name_each_variable() -> None:
    env = {
        "PORT": "99999",
        "LOG_LEVEL": "loud",
        "ELEVENLABS_WEBHOOK_ALLOWED_IPS": "ten, 10.0.0.0/8",
    }
    with pytest.raises(SettingsError) as excinfo:
        Settings.from_env(env)
    error = excinfo.value
    assert error.details == (
        Problem("PORT", "must be between 1 and 65535"),
        Problem("LOG_LEVEL", "must be one of DEBUG, INFO, WARNING, ERROR"),
        Problem("ELEVENLABS_WEBHOOK_ALLOWED_IPS", "'ten' is not an IP address or network (CIDR)"),
    )
    assert error.problems == [str(problem) for problem in error.details]
    assert error.problems[0] == "PORT: must be between 1 and 65535"


def test_a_message_with_a_colon_keeps_its_variable() -> None:
    # "must be an http(s) URL like https://..." has colons of its own.
    with pytest.raises(SettingsError) as excinfo:
        Settings.from_env({"ELEVENLABS_API_BASE": "api.elevenlabs.io"})
    (problem,) = excinfo.value.details
    assert problem.variable == "ELEVENLABS_API_BASE"
    assert problem.message == "must be an http(s) URL like https://example.com"


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        pytest.param(
            Settings(),
            [
                ("ELEVENLABS_API_KEY", Severity.NOTICE),
                ("ELEVENLABS_AGENT_ID", Severity.NOTICE),
                ("TWILIO_AUTH_TOKEN", Severity.NOTICE),
                # Any Host is accepted: a webhook signed for another app could be replayed.
                ("PUBLIC_BASE_URL", Severity.DANGER),
                ("BRIDGE_API_TOKEN", Severity.NOTICE),
            ],
            id="nothing-set",
        ),
        pytest.param(
            Settings(
                elevenlabs_api_key=Secret("k"),
                elevenlabs_agent_id="agent_1",
                public_base_url="http://127.0.0.1:8000",
                bridge_api_token=Secret("t"),
                skip_twilio_signature=True,
            ),
            [
                ("OUTBOUND_ALLOWED_COUNTRIES", Severity.NOTICE),
                ("BRIDGE_INSECURE_SKIP_TWILIO_SIGNATURE", Severity.DANGER),
            ],
            id="insecure-local",
        ),
    ],
)
def test_notes_name_a_variable_and_a_severity(
    settings: Settings, expected: list[tuple[str, Severity]]
) -> None:
    notes = settings.notes()
    assert [(note.variable, note.severity) for note in notes] == expected
    assert settings.missing() == [note.text for note in notes]
    assert all(note.text.startswith(note.variable) for note in notes)
    assert all(isinstance(note, Note) and str(note) == note.text for note in notes)


def no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"unexpected upstream request {request.url}")


def test_only_the_dangerous_note_is_shouted_at_startup(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(skip_twilio_signature=True, twilio_previous_auth_token=Secret("old"))
    app = create_app(settings, transport=httpx.MockTransport(no_network))
    with caplog.at_level(logging.WARNING), TestClient(app):
        pass
    shouted = [r.getMessage() for r in caplog.records if r.getMessage().startswith("!!!")]
    assert shouted == [
        "!!! BRIDGE_INSECURE_SKIP_TWILIO_SIGNATURE is on: anyone can post webhooks "
        "(local development only) !!!"
    ]
    assert any(r.getMessage().startswith("TWILIO_PREVIOUS_AUTH_TOKEN") for r in caplog.records)


@pytest.mark.parametrize(
    ("settings", "says", "severity"),
    [
        pytest.param(
            Settings(twilio_allowed_hosts=("a.example.com", "b.example.com:8443")),
            "accepted hosts (TWILIO_ALLOWED_HOSTS): a.example.com, b.example.com:8443",
            Severity.NOTICE,
            id="listed",
        ),
        pytest.param(Settings(), "any host is accepted", Severity.DANGER, id="any-host-shouted"),
        pytest.param(
            Settings(trust_forwarded_headers=True),
            "any host is accepted",
            Severity.DANGER,
            id="any-forwarded-host-shouted",
        ),
    ],
)
def test_without_public_base_url_the_accepted_hosts_are_said(
    settings: Settings, says: str, severity: Severity
) -> None:
    (note,) = [note for note in settings.notes() if note.variable == "PUBLIC_BASE_URL"]
    assert says in note.text
    assert note.severity is severity
    # /healthz shows its problems to a holder of the API token only.
    with_token = dataclasses.replace(settings, bridge_api_token=Secret(API_TOKEN))
    app = create_app(with_token, transport=httpx.MockTransport(no_network))
    with TestClient(app) as client:
        assert note.text in client.get("/healthz", headers=BEARER).json()["problems"]
