"""Every `/twilio/*` route accepts a webhook signed with TWILIO_WEBHOOK_SHARED_KEY when
X-Twilio-Webhooks-Signature-Settings says so, and the auth token's signature without it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import httpx2
import pytest
from starlette.testclient import TestClient

from bridge.app import create_app
from bridge.fakes.elevenlabs import register_twiml
from bridge.secret import Secret
from tests.helpers import AUTH_TOKEN, PUBLIC, make_settings, twilio_signature

SHARED_KEY = "whsk-0123456789abcdef0123456789abcdef"
SETTINGS_HEADER = "x-twilio-webhooks-signature-settings"
SHA256 = "key=webhooks_sharedkey_01test,algorithm=HMAC_SHA256"
FORM_TYPE = "application/x-www-form-urlencoded"
CALL = [
    ("CallSid", "CA0123456789abcdef0123456789abcdef"),
    ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
    ("From", "+14155550100"),
    ("To", "+15551234567"),
    ("CallStatus", "ringing"),
    ("Direction", "inbound"),
]


def shared_key_signature(url: str, pairs: list[tuple[str, str]], key: str = SHARED_KEY) -> str:
    text = url + "".join(name + value for name, value in sorted(pairs))
    return base64.b64encode(hmac.new(key.encode(), text.encode(), hashlib.sha256).digest()).decode()


def register(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, text=register_twiml("agent_default", "conv_test"))


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    logger = logging.getLogger("bridge")
    propagate = logger.propagate
    logger.addHandler(caplog.handler)
    logger.propagate = False
    try:
        yield caplog
    finally:
        logger.removeHandler(caplog.handler)
        logger.propagate = propagate


def client_for(shared_key: str = SHARED_KEY) -> TestClient:
    settings = make_settings(twilio_webhook_shared_key=Secret(shared_key))
    return TestClient(create_app(settings, transport=httpx.MockTransport(register)))


def post(
    client: TestClient,
    path: str,
    pairs: list[tuple[str, str]],
    signature: str,
    settings_header: str | None = SHA256,
) -> httpx2.Response:
    headers = {"content-type": FORM_TYPE, "x-twilio-signature": signature}
    if settings_header is not None:
        headers[SETTINGS_HEADER] = settings_header
    return client.post(path, content=urlencode(pairs), headers=headers)


@pytest.mark.parametrize(
    ("path", "pairs"),
    [
        ("/twilio/inbound", CALL),
        ("/twilio/status", [*CALL[:4], ("CallStatus", "completed"), ("CallDuration", "42")]),
        ("/twilio/inbound?line=support", [*CALL, ("Digits", "1"), ("Digits", "2")]),
    ],
)
def test_a_shared_key_signature_is_accepted(path: str, pairs: list[tuple[str, str]]) -> None:
    with client_for() as client:
        response = post(client, path, pairs, shared_key_signature(PUBLIC + path, pairs))
    assert response.status_code == 200, response.text


def test_the_url_with_the_default_port_is_accepted_too() -> None:
    signature = shared_key_signature("https://bridge.example.com:443/twilio/inbound", CALL)
    with client_for() as client:
        assert post(client, "/twilio/inbound", CALL, signature).status_code == 200


def test_without_the_header_the_auth_token_still_signs() -> None:
    with client_for() as client:
        signed = twilio_signature(f"{PUBLIC}/twilio/inbound", CALL)
        response = post(client, "/twilio/inbound", CALL, signed, settings_header=None)
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("signature", "settings_header", "reason"),
    [
        pytest.param(
            shared_key_signature(f"{PUBLIC}/twilio/inbound", CALL, "wrong-key"),
            SHA256,
            "mismatch",
            id="wrong-key",
        ),
        pytest.param(
            shared_key_signature(f"{PUBLIC}/twilio/inbound", CALL),
            "key=k,algorithm=HMAC_SHA512",
            "unknown_algorithm",
            id="wrong-algorithm",
        ),
        pytest.param(
            shared_key_signature(f"{PUBLIC}/twilio/inbound", CALL),
            "garbage",
            "malformed_signature_settings",
            id="garbage-header",
        ),
        pytest.param(
            twilio_signature(f"{PUBLIC}/twilio/inbound", CALL),
            SHA256,
            "malformed_signature",
            id="auth-token-signature-with-the-header",
        ),
        pytest.param(
            shared_key_signature(f"{PUBLIC}/twilio/inbound", CALL),
            None,
            "malformed_signature",
            id="shared-key-signature-without-the-header",
        ),
    ],
)
def test_refused(
    logs: pytest.LogCaptureFixture, signature: str, settings_header: str | None, reason: str
) -> None:
    with client_for() as client:
        response = post(client, "/twilio/inbound", CALL, signature, settings_header)
    assert response.status_code == 403
    assert response.text == "invalid Twilio signature\n"
    assert f"reason={reason}" in logs.text
    assert SHARED_KEY not in logs.text and AUTH_TOKEN not in logs.text


def test_the_header_without_a_configured_key_says_so(logs: pytest.LogCaptureFixture) -> None:
    signature = shared_key_signature(f"{PUBLIC}/twilio/inbound", CALL)
    with client_for(shared_key="") as client:
        response = post(client, "/twilio/inbound", CALL, signature)
    assert response.status_code == 403
    assert "reason=no_shared_key" in logs.text
    assert "signature_key=webhooks_sharedkey_01test" in logs.text
    assert "signature_algorithm=HMAC_SHA256" in logs.text


def test_a_tampered_form_is_refused() -> None:
    signature = shared_key_signature(f"{PUBLIC}/twilio/inbound", CALL)
    tampered = [(k, "+19005550199" if k == "From" else v) for k, v in CALL]
    with client_for() as client:
        assert post(client, "/twilio/inbound", tampered, signature).status_code == 403
