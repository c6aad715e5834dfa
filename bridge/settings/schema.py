"""The settings schema: one field per environment variable, read once at startup.

Secrets are wrapped in `Secret` so that a stray repr, log line or traceback
never shows them.

Not pydantic-settings: Settings is a frozen dataclass that callers build and copy
(`Settings(...)`, `dataclasses.replace`, `dataclasses.fields`), and every variable
has its own parsing and message ("PORT: must be between 1 and 65535", a stripped
value, "" for an unset flag, a normalised origin); pydantic would wrap them in its
own error texts and types, so each field would need a custom validator anyway.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bridge import phone
from bridge.secret import Secret
from bridge.settings import diagnostics
from bridge.settings.problems import Problem, SettingsError
from bridge.settings.reader import EnvReader, IPNetwork

DEFAULT_ELEVENLABS_API_BASE = "https://api.elevenlabs.io"
DEFAULT_TWILIO_API_BASE = "https://api.twilio.com"
DEFAULT_DATABASE_URL = "sqlite:///./callbridge.sqlite3"
# Twilio gives up on a webhook after 15 s; leave room for the fallback and the network.
DEFAULT_INBOUND_DEADLINE = 5.0
MAX_INBOUND_DEADLINE = 12.0
DEFAULT_LOOKUP_TIMEOUT = 1.5
# What the bridge tells the business's systems (bridge.events); EVENTS_TYPES narrows it.
EVENT_TYPES = (
    "call.completed",
    "call.fallback",
    "call.voicemail",
    "call.transferred",
    "call.failed",
    # The transcript and analysis, once ElevenLabs' post-call webhook has them.
    "call.analyzed",
    # Server-side campaigns (bridge.campaigns).
    "campaign.started",
    "campaign.paused",
    "campaign.resumed",
    "campaign.cancelled",
    "campaign.finished",
    "campaign.recipient.finished",
)
DEFAULT_RECONCILE_INTERVAL = 300.0
DEFAULT_RECONCILE_GRACE = 300.0


@dataclass(frozen=True)
class Settings:
    elevenlabs_api_key: Secret = field(default_factory=lambda: Secret(""))
    elevenlabs_agent_id: str = ""
    elevenlabs_agent_phone_number_id: str = ""
    elevenlabs_api_base: str = DEFAULT_ELEVENLABS_API_BASE
    elevenlabs_webhook_secret: Secret = field(default_factory=lambda: Secret(""))
    twilio_account_sid: str = ""
    twilio_auth_token: Secret = field(default_factory=lambda: Secret(""))
    # During an auth token rotation: the token Twilio may still sign webhooks with.
    twilio_previous_auth_token: Secret = field(default_factory=lambda: Secret(""))
    twilio_phone_number: str = ""
    twilio_api_base: str = DEFAULT_TWILIO_API_BASE
    public_base_url: str = ""
    bridge_api_token: Secret = field(default_factory=lambda: Secret(""))
    routes_file: Path | None = None
    database_url: str = DEFAULT_DATABASE_URL
    port: int = 8000
    inbound_deadline: float = DEFAULT_INBOUND_DEADLINE
    # Off by default: a forged X-Forwarded-Host could replay a webhook Twilio signed for
    # another app of the same account. Behind uvicorn's --proxy-headers (the Procfile),
    # the scheme is already right and Host is the public one on Heroku.
    trust_forwarded_headers: bool = False
    # How many proxies in front of the bridge append to X-Forwarded-For (Heroku: 1, its
    # router). 0: the socket peer is the client, and X-Forwarded-For/-Proto are ignored.
    trusted_proxy_count: int = 0
    # Without PUBLIC_BASE_URL: the only Host names (or name:port) webhooks are accepted
    # for, so that one signed for another app cannot be replayed here (empty: any).
    twilio_allowed_hosts: tuple[str, ...] = ()
    skip_twilio_signature: bool = False
    upstream_max_connections: int = 500
    upstream_transport: str = "pooled"
    log_level: str = "INFO"
    # Empty: the country of TWILIO_PHONE_NUMBER (see allowed_countries).
    outbound_allowed_countries: tuple[str, ...] = ()
    # Optional: only these networks may post ElevenLabs webhooks (empty: any).
    elevenlabs_webhook_allowed_ips: tuple[IPNetwork, ...] = ()
    # `callbridge db prune` default: transcripts and audio older than this many days go.
    retention_days: int = 0
    # Where post-call audio from ElevenLabs is written (use persistent storage).
    call_audio_dir: Path = Path("call-audio")
    # Where call audio goes: "file://PATH" or "s3://BUCKET/PREFIX" (bridge.audio);
    # empty: file://CALL_AUDIO_DIR. The S3 client reads the standard AWS_* variables.
    audio_store: str = ""
    aws_access_key_id: str = ""
    aws_secret_access_key: Secret = field(default_factory=lambda: Secret(""))
    aws_session_token: Secret = field(default_factory=lambda: Secret(""))
    aws_region: str = ""
    aws_endpoint_url: str = ""
    # Delete a recording from Twilio once its audio is in the audio store.
    twilio_delete_recordings: bool = False
    # Twilio webhook shared key (X-Twilio-Webhooks-Signature-Settings, HMAC_SHA256).
    twilio_webhook_shared_key: Secret = field(default_factory=lambda: Secret(""))
    # Background reconciliation: how often (0: never in the server), and how long
    # after a call ended its webhooks are waited for before it is reconciled.
    reconcile_interval: float = DEFAULT_RECONCILE_INTERVAL
    reconcile_grace: float = DEFAULT_RECONCILE_GRACE
    # Outgoing events (Standard Webhooks): where to, signed with which secrets (the
    # first signs; all sign during a rotation), and which types (empty: all).
    events_webhook_urls: tuple[str, ...] = ()
    events_webhook_secrets: tuple[Secret, ...] = ()
    events_types: tuple[str, ...] = ()
    # The lookup hook asked before register-call (a rule may name its own); signed with
    # LOOKUP_SECRET, else the events' secrets.
    lookup_url: str = ""
    lookup_secrets: tuple[Secret, ...] = ()
    lookup_timeout: float = DEFAULT_LOOKUP_TIMEOUT
    outbound_lookup: bool = False
    # All calls in progress to agents, inbound included (0: no cap). POST /calls is
    # refused at the cap; campaigns stop CAMPAIGN_INBOUND_RESERVE short of it, so the
    # last slots of an agent plan's concurrency stay for inbound callers.
    outbound_max_concurrent_calls: int = 0
    campaign_inbound_reserve: int = 1
    # Run a campaign worker inside the server (`callbridge serve`); false where
    # separate `callbridge worker` processes run the campaigns (the Procfile's web line).
    campaign_worker: bool = True
    # Signs the AI caller page's session cookie; empty: derived from BRIDGE_API_TOKEN.
    session_secret: Secret = field(default_factory=lambda: Secret(""))
    # Bearer token for GET /metrics; empty: BRIDGE_API_TOKEN is accepted there.
    metrics_token: Secret = field(default_factory=lambda: Secret(""))
    # The console shows times in this zone (an IANA name), and its "today" is this zone's.
    ui_timezone: str = "UTC"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        reader = EnvReader(env)
        settings = cls(
            elevenlabs_api_key=reader.secret("ELEVENLABS_API_KEY"),
            elevenlabs_agent_id=reader.text("ELEVENLABS_AGENT_ID"),
            elevenlabs_agent_phone_number_id=reader.text("ELEVENLABS_AGENT_PHONE_NUMBER_ID"),
            elevenlabs_api_base=reader.url("ELEVENLABS_API_BASE", DEFAULT_ELEVENLABS_API_BASE),
            elevenlabs_webhook_secret=reader.secret("ELEVENLABS_WEBHOOK_SECRET"),
            twilio_account_sid=reader.text("TWILIO_ACCOUNT_SID"),
            twilio_auth_token=reader.secret("TWILIO_AUTH_TOKEN"),
            twilio_previous_auth_token=reader.secret("TWILIO_PREVIOUS_AUTH_TOKEN"),
            twilio_phone_number=reader.phone("TWILIO_PHONE_NUMBER"),
            twilio_api_base=reader.url("TWILIO_API_BASE", DEFAULT_TWILIO_API_BASE),
            public_base_url=reader.origin("PUBLIC_BASE_URL"),
            bridge_api_token=reader.token("BRIDGE_API_TOKEN"),
            routes_file=reader.path("ROUTES_FILE"),
            database_url=reader.text("DATABASE_URL") or DEFAULT_DATABASE_URL,
            port=reader.integer("PORT", 8000, low=1, high=65535),
            inbound_deadline=reader.number(
                "INBOUND_DEADLINE_SECONDS", DEFAULT_INBOUND_DEADLINE, 0.5, MAX_INBOUND_DEADLINE
            ),
            trust_forwarded_headers=reader.flag("TRUST_FORWARDED_HEADERS", False),
            trusted_proxy_count=reader.integer("TRUSTED_PROXY_COUNT", 0, low=0, high=10),
            twilio_allowed_hosts=reader.hosts("TWILIO_ALLOWED_HOSTS"),
            skip_twilio_signature=reader.flag("BRIDGE_INSECURE_SKIP_TWILIO_SIGNATURE", False),
            upstream_max_connections=reader.integer(
                "UPSTREAM_MAX_CONNECTIONS", 500, low=1, high=100_000
            ),
            upstream_transport=reader.choice(
                "UPSTREAM_TRANSPORT", "pooled", ("pooled", "aiohttp"), upper=False
            ),
            log_level=reader.choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
            outbound_allowed_countries=reader.regions("OUTBOUND_ALLOWED_COUNTRIES"),
            session_secret=reader.token("SESSION_SECRET"),
            metrics_token=reader.token("METRICS_TOKEN"),
            call_audio_dir=reader.path("CALL_AUDIO_DIR") or Path("call-audio"),
            audio_store=reader.audio_store("AUDIO_STORE"),
            aws_access_key_id=reader.text("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=reader.secret("AWS_SECRET_ACCESS_KEY"),
            aws_session_token=reader.secret("AWS_SESSION_TOKEN"),
            aws_region=reader.text("AWS_REGION") or reader.text("AWS_DEFAULT_REGION"),
            aws_endpoint_url=reader.url("AWS_ENDPOINT_URL", ""),
            twilio_delete_recordings=reader.flag("TWILIO_DELETE_RECORDINGS", False),
            twilio_webhook_shared_key=reader.secret("TWILIO_WEBHOOK_SHARED_KEY"),
            reconcile_interval=reader.number(
                "RECONCILE_INTERVAL_SECONDS", DEFAULT_RECONCILE_INTERVAL, 0, 86_400
            ),
            events_webhook_urls=reader.webhook_urls("EVENTS_WEBHOOK_URL"),
            events_webhook_secrets=reader.webhook_secrets("EVENTS_WEBHOOK_SECRET"),
            events_types=reader.words("EVENTS_TYPES", EVENT_TYPES),
            lookup_url=_single(reader, "LOOKUP_URL"),
            lookup_secrets=reader.webhook_secrets("LOOKUP_SECRET"),
            lookup_timeout=reader.number(
                "LOOKUP_TIMEOUT_SECONDS", DEFAULT_LOOKUP_TIMEOUT, 0.1, MAX_INBOUND_DEADLINE
            ),
            outbound_lookup=reader.flag("OUTBOUND_LOOKUP", False),
            outbound_max_concurrent_calls=reader.integer(
                "OUTBOUND_MAX_CONCURRENT_CALLS", 0, low=0, high=100_000
            ),
            campaign_inbound_reserve=reader.integer(
                "CAMPAIGN_INBOUND_RESERVE", 1, low=0, high=100_000
            ),
            campaign_worker=reader.flag("CAMPAIGN_WORKER", True),
            reconcile_grace=reader.number(
                "RECONCILE_GRACE_SECONDS", DEFAULT_RECONCILE_GRACE, 0, 86_400
            ),
            retention_days=reader.integer("RETENTION_DAYS", 0, low=0, high=36_500),
            elevenlabs_webhook_allowed_ips=reader.networks("ELEVENLABS_WEBHOOK_ALLOWED_IPS"),
            ui_timezone=reader.timezone("UI_TIMEZONE", "UTC"),
        )
        if settings.skip_twilio_signature and not diagnostics.twilio_cannot_reach(
            settings.public_base_url
        ):
            # A deployment Twilio reaches: skipping the check would open it to anyone.
            reader.problems.append(
                Problem(
                    "BRIDGE_INSECURE_SKIP_TWILIO_SIGNATURE",
                    "cannot be on while PUBLIC_BASE_URL is a public https origin; it is for "
                    "local development only (unset it, or use the sandbox)",
                )
            )
        if settings.events_webhook_urls and not settings.events_webhook_secrets:
            reader.problems.append(
                Problem("EVENTS_WEBHOOK_SECRET", "must be set when EVENTS_WEBHOOK_URL is")
            )
        if settings.lookup_url and not settings.lookup_signing_secrets:
            reader.problems.append(
                Problem("LOOKUP_SECRET", "or EVENTS_WEBHOOK_SECRET must be set when LOOKUP_URL is")
            )
        if reader.problems:
            raise SettingsError(reader.problems)
        return settings

    @property
    def elevenlabs_configured(self) -> bool:
        return bool(self.elevenlabs_api_key)

    @property
    def lookup_signing_secrets(self) -> tuple[Secret, ...]:
        """What lookups are signed with: LOOKUP_SECRET, else the events' secrets."""
        return self.lookup_secrets or self.events_webhook_secrets

    @property
    def audio_store_url(self) -> str:
        """AUDIO_STORE, or the file store in CALL_AUDIO_DIR when it is not set."""
        return self.audio_store or f"file://{self.call_audio_dir}"

    @property
    def twilio_configured(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_auth_token)

    def webhook_source_allowed(self, host: str | None) -> bool:
        """Whether a client address may post ElevenLabs webhooks."""
        if not self.elevenlabs_webhook_allowed_ips:
            return True
        try:
            address = ipaddress.ip_address(host or "")
        except ValueError:
            return False
        return any(address in network for network in self.elevenlabs_webhook_allowed_ips)

    def allowed_countries(self) -> tuple[str, ...]:
        """Where outbound calls may go: the setting, else the Twilio number's country."""
        if self.outbound_allowed_countries:
            return self.outbound_allowed_countries
        home = phone.country_of(self.twilio_phone_number) if self.twilio_phone_number else None
        return (home,) if home else ()

    def notes(self) -> list[diagnostics.Note]:
        """What is not configured or risky, and what the bridge does about it."""
        return diagnostics.notes(self)

    def missing(self) -> list[str]:
        """The notes as text (/healthz, `callbridge serve`). No secret values."""
        return [note.text for note in self.notes()]

    def twilio_cannot_reach(self) -> str | None:
        """Why Twilio could not (or should not) call PUBLIC_BASE_URL; None when it can."""
        return diagnostics.twilio_cannot_reach(self.public_base_url)

    def summary(self) -> list[tuple[str, str]]:
        """(name, shown value) pairs for `callbridge serve`; secrets show only set/not set."""
        return diagnostics.summary(self)


def _single(reader: EnvReader, name: str) -> str:
    urls = reader.webhook_urls(name)
    if len(urls) > 1:
        reader.problems.append(Problem(name, "must be one URL"))
        return ""
    return urls[0] if urls else ""
