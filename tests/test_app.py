"""bridge.app: what the server refuses at startup, how it routes odd paths, and what
GET /healthz tells anyone (up and ready) and a holder of a token (problems, routing)."""

from __future__ import annotations

import httpx
import pytest
from starlette.testclient import TestClient

import bridge.app
from bridge.app import create_app
from bridge.secret import Secret
from bridge.settings import Settings
from tests.helpers import (
    API_TOKEN,
    AUTH_TOKEN,
    BEARER,
    clear_settings_environment,
    make_settings,
)


def no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"unexpected upstream request {request.url}")


@pytest.mark.parametrize(
    ("env", "starts"),
    [
        pytest.param({"PORT": "5000"}, False, id="port-nothing-else"),
        pytest.param({"DYNO": "web.1"}, False, id="dyno-nothing-else"),
        pytest.param({}, True, id="local"),
        pytest.param({"PORT": "5000", "PUBLIC_BASE_URL": "https://b.example.com"}, True, id="pub"),
        pytest.param({"PORT": "5000", "TWILIO_ALLOWED_HOSTS": "b.example.com"}, True, id="hosts"),
        pytest.param({"DYNO": "web.1", "TRUST_FORWARDED_HEADERS": "true"}, True, id="forwarded"),
    ],
)
def test_deployed_without_a_fixed_host_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    starts: bool,
) -> None:
    clear_settings_environment(monkeypatch)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if starts:
        assert bridge.app._app_from_environment() is not None
        return
    with pytest.raises(SystemExit) as exited:
        bridge.app._app_from_environment()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "refusing to start" in err
    assert "PUBLIC_BASE_URL: must be set when deployed" in err
    assert "TWILIO_ALLOWED_HOSTS" in err
    assert AUTH_TOKEN not in err


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("POST", "/twilio/inbound/", {}),
        ("POST", "/twilio/status/", {}),
        ("GET", "/calls/", BEARER),
        ("GET", "/healthz/", {}),
    ],
)
def test_a_trailing_slash_is_not_redirected(
    method: str, path: str, headers: dict[str, str]
) -> None:
    # Starlette redirected to http://..., the scheme the server saw behind TLS.
    app = create_app(make_settings(), transport=httpx.MockTransport(no_network))
    with TestClient(app, base_url="https://bridge.example.com") as client:
        response = client.request(method, path, headers=headers, follow_redirects=False)
    assert response.status_code == 404
    assert "location" not in response.headers


METRICS_TOKEN = "metrics-token-" + "m" * 32


def risky_settings() -> Settings:
    """A bridge whose notes would help an attacker: rotation, no signature check."""
    return make_settings(
        bridge_api_token=Secret(API_TOKEN),
        metrics_token=Secret(METRICS_TOKEN),
        twilio_previous_auth_token=Secret("previous-token-value-xyz"),
        skip_twilio_signature=True,
        public_base_url="",
    )


@pytest.mark.parametrize(
    ("authorization", "details"),
    [
        (None, False),
        ("Bearer wrong-token", False),
        (f"Basic {API_TOKEN}", False),
        (f"Bearer {API_TOKEN}", True),
        (f"Bearer {METRICS_TOKEN}", True),
    ],
    ids=["anonymous", "wrong-token", "not-bearer", "api-token", "metrics-token"],
)
def test_healthz_shows_details_only_to_a_token_holder(
    authorization: str | None, details: bool
) -> None:
    settings = risky_settings()
    headers = {"authorization": authorization} if authorization else {}
    with TestClient(create_app(settings, transport=httpx.MockTransport(no_network))) as client:
        response = client.get("/healthz", headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["ready"] is True
    if details:
        assert body["problems"] == settings.missing()
        assert any("SKIP_TWILIO_SIGNATURE" in p for p in body["problems"])
        assert body["routes"] == {"source": "(no routing file)", "rules": 0}
    else:
        assert set(body) == {"status", "ready"}
        for word in ("SIGNATURE", "PREVIOUS", "routing", "problems"):
            assert word not in response.text


def test_healthz_is_not_ready_outside_the_lifespan() -> None:
    app = create_app(risky_settings(), transport=httpx.MockTransport(no_network))
    response = TestClient(app).get("/healthz")  # no `with`: the lifespan never ran
    assert response.json() == {"status": "ok", "ready": False}
