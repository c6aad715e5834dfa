"""The bridge's settings in the sandbox: every upstream is a local stand-in.

Built here rather than read from the environment, so that a real key left in the
shell never reaches the sandbox (and the sandbox never calls a real API).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from bridge.sandbox.credentials import Credentials
from bridge.sandbox.integrations import EVENTS_PATH, LOOKUP_PATH, events_secret
from bridge.sandbox.numbers import AGENT_PHONE_NUMBER_ID, DEFAULT_AGENT, OUR_NUMBER
from bridge.secret import Secret
from bridge.settings import Settings

DATABASE_FILE = "callbridge.sqlite3"
AUDIO_FIELDS = (
    "audio_store",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_region",
    "aws_endpoint_url",
)
# The only variables `callbridge sandbox --audio-store` reads from the environment.
AUDIO_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
)


def sandbox_settings(
    credentials: Credentials,
    *,
    bridge_url: str,
    elevenlabs_url: str,
    twilio_url: str,
    directory: Path,
    routes_file: Path,
    audio: Settings | None = None,
    integrations_url: str = "",
) -> Settings:
    """`audio`: where call audio goes instead of DIR/call-audio (`--audio-store`); only
    its AUDIO_STORE and AWS_* values are used."""
    directory = directory.resolve()
    settings = Settings(
        elevenlabs_api_key=Secret(credentials.elevenlabs_api_key),
        elevenlabs_agent_id=DEFAULT_AGENT,
        elevenlabs_agent_phone_number_id=AGENT_PHONE_NUMBER_ID,
        elevenlabs_api_base=elevenlabs_url,
        elevenlabs_webhook_secret=Secret(credentials.elevenlabs_webhook_secret),
        twilio_account_sid=credentials.twilio_account_sid,
        twilio_auth_token=Secret(credentials.twilio_auth_token),
        twilio_phone_number=OUR_NUMBER,
        twilio_api_base=twilio_url,
        public_base_url=bridge_url,
        bridge_api_token=Secret(credentials.bridge_api_token),
        routes_file=routes_file,
        database_url=f"sqlite:///{directory / DATABASE_FILE}",
        call_audio_dir=directory / "call-audio",
        # The demo receiver and lookup (bridge.sandbox.integrations) print what they get.
        events_webhook_urls=(f"{integrations_url}{EVENTS_PATH}",) if integrations_url else (),
        events_webhook_secrets=(Secret(events_secret(credentials.bridge_api_token)),),
        lookup_url=f"{integrations_url}{LOOKUP_PATH}" if integrations_url else "",
    )
    if audio is None:
        return settings
    return replace(settings, **{name: getattr(audio, name) for name in AUDIO_FIELDS})
