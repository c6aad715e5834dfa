"""Settings, read once from the environment and validated at startup.

Secrets are wrapped in `Secret` so that a stray repr, log line or traceback
never shows them.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import phonenumbers

from bridge import phone
from bridge.secret import Secret

DEFAULT_ELEVENLABS_API_BASE = "https://api.elevenlabs.io"
DEFAULT_TWILIO_API_BASE = "https://api.twilio.com"
DEFAULT_DATABASE_URL = "sqlite:///./callbridge.sqlite3"
# Twilio gives up on a webhook after 15 s; leave room for the fallback and the network.
DEFAULT_INBOUND_DEADLINE = 5.0
MAX_INBOUND_DEADLINE = 12.0

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class SettingsError(ValueError):
    """One or more settings are malformed; each problem names the variable."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid settings:\n  " + "\n  ".join(problems))


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
    # Signs the AI caller's session cookie; empty: derived from BRIDGE_API_TOKEN.
    session_secret: Secret = field(default_factory=lambda: Secret(""))
    # Bearer token for GET /metrics; empty: BRIDGE_API_TOKEN is accepted there.
    metrics_token: Secret = field(default_factory=lambda: Secret(""))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        reader = _Reader(env)
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
            bridge_api_token=reader.secret("BRIDGE_API_TOKEN"),
            routes_file=reader.path("ROUTES_FILE"),
            database_url=reader.text("DATABASE_URL") or DEFAULT_DATABASE_URL,
            port=reader.integer("PORT", 8000, low=1, high=65535),
            inbound_deadline=reader.number(
                "INBOUND_DEADLINE_SECONDS", DEFAULT_INBOUND_DEADLINE, 0.5, MAX_INBOUND_DEADLINE
            ),
            trust_forwarded_headers=reader.flag("TRUST_FORWARDED_HEADERS", False),
            skip_twilio_signature=reader.flag("BRIDGE_INSECURE_SKIP_TWILIO_SIGNATURE", False),
            upstream_max_connections=reader.integer(
                "UPSTREAM_MAX_CONNECTIONS", 500, low=1, high=100_000
            ),
            upstream_transport=reader.choice(
                "UPSTREAM_TRANSPORT", "pooled", ("pooled", "aiohttp"), upper=False
            ),
            log_level=reader.choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
            outbound_allowed_countries=reader.regions("OUTBOUND_ALLOWED_COUNTRIES"),
            session_secret=reader.secret("SESSION_SECRET"),
            metrics_token=reader.secret("METRICS_TOKEN"),
            call_audio_dir=reader.path("CALL_AUDIO_DIR") or Path("call-audio"),
            retention_days=reader.integer("RETENTION_DAYS", 0, low=0, high=36_500),
            elevenlabs_webhook_allowed_ips=reader.networks("ELEVENLABS_WEBHOOK_ALLOWED_IPS"),
        )
        if reader.problems:
            raise SettingsError(reader.problems)
        return settings

    @property
    def elevenlabs_configured(self) -> bool:
        return bool(self.elevenlabs_api_key)

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

    def missing(self) -> list[str]:
        """What is not configured, and what the bridge does about it. No secret values."""
        notes = []
        if not self.elevenlabs_api_key:
            notes.append("ELEVENLABS_API_KEY is not set: every call gets the fallback TwiML")
        if not self.elevenlabs_agent_id:
            notes.append(
                "ELEVENLABS_AGENT_ID is not set: only rules that name an agent_id reach an agent"
            )
        if not self.twilio_auth_token and not self.skip_twilio_signature:
            notes.append(
                "TWILIO_AUTH_TOKEN is not set: Twilio webhooks cannot be verified and get 403"
            )
        if not self.public_base_url:
            notes.append(
                "PUBLIC_BASE_URL is not set: signatures are checked against the request URL"
                + (
                    " rebuilt from X-Forwarded-Proto/Host"
                    if self.trust_forwarded_headers
                    else " (its Host header and scheme); set it to the public https origin"
                )
            )
        elif urlsplit(self.public_base_url).scheme != "https" and not _is_loopback(
            self.public_base_url
        ):
            # Local runs (the sandbox, tests) are http on loopback, and that is fine.
            notes.append(f"PUBLIC_BASE_URL {self.twilio_cannot_reach()}")
        if not self.bridge_api_token:
            notes.append(
                "BRIDGE_API_TOKEN is not set: the outbound API (/calls, /api/*) answers 503"
            )
        elif not self.allowed_countries():
            notes.append(
                "OUTBOUND_ALLOWED_COUNTRIES and TWILIO_PHONE_NUMBER are not set: "
                "every outbound destination is refused"
            )
        if self.twilio_previous_auth_token:
            notes.append(
                "TWILIO_PREVIOUS_AUTH_TOKEN is set: webhooks signed with the old token are "
                "still accepted; unset it once the new token is primary at Twilio"
            )
        if self.skip_twilio_signature:
            notes.append(
                "BRIDGE_INSECURE_SKIP_TWILIO_SIGNATURE is on: anyone can post webhooks "
                "(local development only)"
            )
        return notes

    def twilio_cannot_reach(self) -> str | None:
        """Why Twilio could not (or should not) call PUBLIC_BASE_URL; None when it can.

        What `callbridge doctor` requires before it points a phone number at the bridge.
        """
        if not self.public_base_url:
            return "is not set"
        parts = urlsplit(self.public_base_url)
        host = (parts.hostname or "").rstrip(".")
        if parts.scheme != "https":
            return "is not https: Twilio should call the bridge over TLS"
        if _is_private(host):
            return f"is not a public address ({host}): Twilio cannot reach it"
        return None

    def summary(self) -> list[tuple[str, str]]:
        """(name, shown value) pairs for `callbridge serve`; secrets show only set/not set."""

        def secret(value: Secret) -> str:
            return "set" if value else "not set"

        return [
            ("ELEVENLABS_API_KEY", secret(self.elevenlabs_api_key)),
            ("ELEVENLABS_AGENT_ID", self.elevenlabs_agent_id or "not set"),
            ("ELEVENLABS_API_BASE", self.elevenlabs_api_base),
            ("TWILIO_ACCOUNT_SID", self.twilio_account_sid or "not set"),
            ("TWILIO_AUTH_TOKEN", secret(self.twilio_auth_token)),
            ("TWILIO_PREVIOUS_AUTH_TOKEN", secret(self.twilio_previous_auth_token)),
            ("TWILIO_PHONE_NUMBER", self.twilio_phone_number or "not set"),
            ("PUBLIC_BASE_URL", self.public_base_url or "not set"),
            ("BRIDGE_API_TOKEN", secret(self.bridge_api_token)),
            ("METRICS_TOKEN", secret(self.metrics_token)),
            ("ROUTES_FILE", str(self.routes_file) if self.routes_file else "not set"),
            ("outbound countries", ", ".join(self.allowed_countries()) or "none"),
            ("DATABASE_URL", _without_password(self.database_url)),
            ("INBOUND_DEADLINE_SECONDS", f"{self.inbound_deadline:g}"),
            ("twilio signature check", "OFF" if self.skip_twilio_signature else "on"),
        ]


# Names that never resolve on the public internet (RFC 6761, 6762, 8375, ICANN).
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa", ".localdomain", ".lan")


def _is_private(host: str) -> bool:
    """Whether a host is certainly not reachable from the internet (no DNS lookup)."""
    bare = host.strip("[]")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(bare)
    except ValueError:
        # Single labels ("bridge") and special-use names resolve only locally.
        if bare == "localhost" or bare.endswith(_LOCAL_SUFFIXES) or "." not in bare:
            return True
        try:
            # Short and numeric IPv4 forms (127.1, 0x7f.1) that resolvers accept.
            address = ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return False
    return not address.is_global


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


class _Reader:
    """Reads typed values and collects every problem instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def text(self, name: str) -> str:
        return self.env.get(name, "").strip()

    def secret(self, name: str) -> Secret:
        return Secret(self.env.get(name, "").strip())

    def url(self, name: str, default: str) -> str:
        value = self.text(name) or default
        if not value:
            return ""
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            self.problems.append(f"{name}: must be an http(s) URL like https://example.com")
            return default
        if parts.query or parts.fragment:
            self.problems.append(f"{name}: must not have a query or fragment")
            return default
        return value.rstrip("/")

    def origin(self, name: str) -> str:
        """A scheme and host only: paths are the bridge's own (it adds /twilio/...).

        Normalised as Twilio writes URLs (lowercase, IDNA, no default port), since
        the signature covers the URL exactly.
        """
        raw = self.text(name)
        value = self.url(name, "")
        if not value:
            return ""
        parts = urlsplit(value)
        problem = None
        if parts.path or parts.username is not None or parts.password is not None:
            problem = "without a path or user name"
        elif "?" in raw or "#" in raw:
            problem = "without a query or fragment"
        try:
            port = parts.port
            host = (parts.hostname or "").encode("idna").decode("ascii")
        except (ValueError, UnicodeError):
            problem = problem or "with a valid host and port"
            port, host = None, ""
        if problem:
            self.problems.append(
                f"{name}: must be an origin like https://my-bridge.example.com, {problem} "
                "(the bridge adds /twilio/inbound and its other paths itself)"
            )
            return ""
        scheme = parts.scheme.lower()
        if ":" in host:
            host = f"[{host}]"  # IPv6
        default = {"https": 443, "http": 80}[scheme]
        return f"{scheme}://{host}" + (f":{port}" if port not in (None, default) else "")

    def phone(self, name: str) -> str:
        value = self.text(name)
        if value and not phone.is_e164(value):
            self.problems.append(f"{name}: must be an E.164 number like +15551234567")
        return value

    def networks(self, name: str) -> tuple[IPNetwork, ...]:
        found = []
        for item in self.text(name).replace(",", " ").split():
            try:
                found.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                self.problems.append(f"{name}: {item!r} is not an IP address or network (CIDR)")
        return tuple(found)

    def regions(self, name: str) -> tuple[str, ...]:
        raw = self.text(name)
        codes = tuple(code.strip().upper() for code in raw.split(",") if code.strip())
        unknown = [code for code in codes if code not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            self.problems.append(
                f"{name}: {', '.join(unknown)} not ISO 3166 country codes (like US,CA,GB)"
            )
            return ()
        return codes

    def path(self, name: str) -> Path | None:
        value = self.text(name)
        return Path(value) if value else None

    def integer(self, name: str, default: int, *, low: int, high: int) -> int:
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.problems.append(f"{name}: must be a whole number")
            return default
        if not low <= value <= high:
            self.problems.append(f"{name}: must be between {low} and {high}")
            return default
        return value

    def number(self, name: str, default: float, low: float, high: float) -> float:
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            self.problems.append(f"{name}: must be a number of seconds")
            return default
        if not low <= value <= high:
            self.problems.append(f"{name}: must be between {low:g} and {high:g} seconds")
            return default
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self.text(name).lower()
        if name not in self.env:
            return default
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
        self.problems.append(f"{name}: must be true or false")
        return default

    def choice(
        self, name: str, default: str, options: tuple[str, ...], *, upper: bool = True
    ) -> str:
        raw = self.text(name).upper() if upper else self.text(name).lower()
        if not raw:
            return default
        if raw not in options:
            self.problems.append(f"{name}: must be one of {', '.join(options)}")
            return default
        return raw
