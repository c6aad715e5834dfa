"""bridge.app: GET /healthz tells anyone only that the bridge is up and ready; its
configuration problems and routing are for a holder of a token."""

from __future__ import annotations

import httpx
import pytest
from starlette.testclient import TestClient

from bridge.app import create_app
from bridge.secret import Secret
from bridge.settings import Settings
from tests.helpers import API_TOKEN, make_settings

METRICS_TOKEN = "metrics-token-" + "m" * 32


def no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"unexpected upstream request {request.url}")


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
