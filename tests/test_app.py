"""bridge.app: what the server refuses at startup, and how it routes odd paths."""

from __future__ import annotations

import httpx
import pytest
from starlette.testclient import TestClient

import bridge.app
from bridge.app import create_app
from tests.helpers import AUTH_TOKEN, BEARER, clear_settings_environment, make_settings


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
