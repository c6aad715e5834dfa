"""bridge.app: what the server refuses at startup, and how it routes odd paths."""

from __future__ import annotations

import httpx
import pytest
from starlette.testclient import TestClient

from bridge.app import create_app
from tests.helpers import BEARER, make_settings


def no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"unexpected upstream request {request.url}")


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
