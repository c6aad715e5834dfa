"""ELEVENLABS_WEBHOOK_ALLOWED_IPS: an optional allowlist of webhook sources."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from bridge.app import create_app
from bridge.secret import Secret
from bridge.settings import Settings, SettingsError
from tests.helpers import make_settings


@pytest.mark.parametrize(
    ("allowed", "host", "ok"),
    [
        ("", "203.0.113.9", True),
        ("", None, True),
        ("34.67.146.145, 34.59.11.47", "34.59.11.47", True),
        ("34.67.146.145, 34.59.11.47", "34.59.11.48", False),
        ("10.0.0.0/8", "10.20.30.40", True),
        ("10.0.0.0/8", "11.0.0.1", False),
        ("2001:db8::/32", "2001:db8::1", True),
        ("10.0.0.0/8", "testclient", False),
        ("10.0.0.0/8", None, False),
    ],
)
def test_source_allowlist(allowed: str, host: str | None, ok: bool) -> None:
    settings = Settings.from_env({"ELEVENLABS_WEBHOOK_ALLOWED_IPS": allowed})
    assert settings.webhook_source_allowed(host) is ok


def test_a_bad_network_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="ELEVENLABS_WEBHOOK_ALLOWED_IPS: 'ten'"):
        Settings.from_env({"ELEVENLABS_WEBHOOK_ALLOWED_IPS": "10.0.0.0/8 ten"})


def test_a_webhook_from_outside_the_allowlist_is_refused_before_anything_else() -> None:
    settings = make_settings(
        elevenlabs_webhook_secret=Secret("wsec"),
        elevenlabs_webhook_allowed_ips=Settings.from_env(
            {"ELEVENLABS_WEBHOOK_ALLOWED_IPS": "192.0.2.0/24"}
        ).elevenlabs_webhook_allowed_ips,
    )
    with TestClient(create_app(settings)) as client:  # its client address is "testclient"
        response = client.post("/elevenlabs/webhook", content=b"{}")
    assert response.status_code == 403
    assert "ELEVENLABS_WEBHOOK_ALLOWED_IPS" in response.json()["error"]


ALLOWED = "192.0.2.0/24"


@pytest.mark.parametrize(
    ("proxies", "forwarded_for", "allowed"),
    [
        (0, "192.0.2.7", False),  # the client wrote it; the peer is "testclient"
        (1, "192.0.2.7", True),  # the router appended it
        (1, "192.0.2.7, 198.51.100.4", False),  # spoofed leftmost, real rightmost
        (1, "198.51.100.4, 192.0.2.7", True),
        (2, "192.0.2.7, 198.51.100.4, 10.0.0.1", False),
    ],
)
def test_the_allowlist_uses_the_address_the_trusted_proxies_saw(
    proxies: int, forwarded_for: str, allowed: bool
) -> None:
    settings = make_settings(
        elevenlabs_webhook_secret=Secret("wsec"),
        trusted_proxy_count=proxies,
        elevenlabs_webhook_allowed_ips=Settings.from_env(
            {"ELEVENLABS_WEBHOOK_ALLOWED_IPS": ALLOWED}
        ).elevenlabs_webhook_allowed_ips,
    )
    with TestClient(create_app(settings)) as client:
        response = client.post(
            "/elevenlabs/webhook", content=b"{}", headers={"x-forwarded-for": forwarded_for}
        )
    # Allowed ones get as far as the signature check (401); refused ones get 403.
    assert response.status_code == (401 if allowed else 403)
