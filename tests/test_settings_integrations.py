"""EVENTS_WEBHOOK_URL / _SECRET / EVENTS_TYPES and LOOKUP_* (the business's systems)."""

from __future__ import annotations

import pytest

from bridge.settings import Settings, SettingsError

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OLD_SECRET = "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="


def test_events_and_lookup_settings_are_read() -> None:
    settings = Settings.from_env(
        {
            "EVENTS_WEBHOOK_URL": "https://crm.example.com/hook, http://127.0.0.1:9000/x",
            "EVENTS_WEBHOOK_SECRET": f"{SECRET} {OLD_SECRET}",
            "EVENTS_TYPES": "call.completed,call.fallback",
            "LOOKUP_URL": "https://crm.example.com/lookup",
            "LOOKUP_TIMEOUT_SECONDS": "0.8",
            "OUTBOUND_LOOKUP": "true",
        }
    )
    assert settings.events_webhook_urls == (
        "https://crm.example.com/hook",
        "http://127.0.0.1:9000/x",
    )
    assert [secret.reveal() for secret in settings.events_webhook_secrets] == [SECRET, OLD_SECRET]
    assert settings.events_types == ("call.completed", "call.fallback")
    assert settings.lookup_url == "https://crm.example.com/lookup"
    # Without LOOKUP_SECRET, lookups are signed like the events.
    assert settings.lookup_signing_secrets == settings.events_webhook_secrets
    assert settings.lookup_timeout == 0.8
    assert settings.outbound_lookup
    assert SECRET not in repr(settings)


@pytest.mark.parametrize(
    ("environ", "variable", "rule"),
    [
        (
            {"EVENTS_WEBHOOK_URL": "http://crm.example.com/hook", "EVENTS_WEBHOOK_SECRET": SECRET},
            "EVENTS_WEBHOOK_URL",
            "must be https",
        ),
        ({"EVENTS_WEBHOOK_URL": "ftp://x/y"}, "EVENTS_WEBHOOK_URL", "is not an https URL"),
        (
            {"EVENTS_WEBHOOK_URL": "https://crm.example.com/hook"},
            "EVENTS_WEBHOOK_SECRET",
            "must be set",
        ),
        (
            {"EVENTS_WEBHOOK_SECRET": "hunter2"},
            "EVENTS_WEBHOOK_SECRET",
            "whsec_ followed by base64",
        ),
        ({"EVENTS_WEBHOOK_SECRET": "whsec_c2hvcnQ="}, "EVENTS_WEBHOOK_SECRET", "at least 16 bytes"),
        (
            {"EVENTS_TYPES": "call.completed call.exploded"},
            "EVENTS_TYPES",
            "'call.exploded' is not",
        ),
        ({"LOOKUP_URL": "https://a.example.com/l"}, "LOOKUP_SECRET", "must be set"),
        (
            {"LOOKUP_URL": "https://a.example/l https://b.example/l", "LOOKUP_SECRET": SECRET},
            "LOOKUP_URL",
            "must be one URL",
        ),
        ({"LOOKUP_TIMEOUT_SECONDS": "30"}, "LOOKUP_TIMEOUT_SECONDS", "must be between"),
    ],
)
def test_bad_values_name_the_variable_and_the_rule(
    environ: dict[str, str], variable: str, rule: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(environ)
    message = str(raised.value)
    assert variable in message and rule in message
    assert "hunter2" not in message
