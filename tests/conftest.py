"""Shared test helpers: real servers on loopback, and signed Twilio webhooks."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn
from twilio.request_validator import RequestValidator

from bridge.fakes import FakeElevenLabs
from bridge.settings import Secret, Settings

AUTH_TOKEN = "test-twilio-auth-token"
ELEVENLABS_KEY = "test-elevenlabs-key"
PUBLIC = "https://bridge.example.com"


def make_settings(**changes: object) -> Settings:
    """Settings for a bridge that Twilio reaches at PUBLIC, with every secret set."""
    values: dict[str, object] = {
        "elevenlabs_api_key": Secret(ELEVENLABS_KEY),
        "elevenlabs_agent_id": "agent_default",
        "twilio_auth_token": Secret(AUTH_TOKEN),
        "public_base_url": PUBLIC,
    }
    values.update(changes)
    return Settings(**values)  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running_server(app: Any, port: int | None = None) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on 127.0.0.1 in a thread; yields its base URL."""
    port = port or free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def twilio_form(**overrides: str) -> dict[str, str]:
    """A realistic "A call comes in" webhook form."""
    form = {
        "AccountSid": "AC" + "a" * 32,
        "ApiVersion": "2010-04-01",
        "CallSid": "CA" + "1" * 32,
        "CallStatus": "ringing",
        "Called": "+15557650000",
        "CalledCountry": "US",
        "CalledState": "CA",
        "Caller": "+15551234567",
        "CallerCountry": "US",
        "CallerState": "NY",
        "Direction": "inbound",
        "From": "+15551234567",
        "FromCity": "NEW YORK",
        "FromCountry": "US",
        "FromState": "NY",
        "FromZip": "10001",
        "To": "+15557650000",
        "ToCountry": "US",
        "ToState": "CA",
    }
    form.update(overrides)
    return form


def sign(url: str, form: dict[str, str], token: str = AUTH_TOKEN) -> str:
    signature: str = RequestValidator(token).compute_signature(url, form)
    return signature


@pytest.fixture
def fake_elevenlabs() -> Iterator[tuple[FakeElevenLabs, str]]:
    fake = FakeElevenLabs(api_key=ELEVENLABS_KEY)
    with running_server(fake.app) as base_url:
        yield fake, base_url
