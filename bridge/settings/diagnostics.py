"""What a deployment's settings mean for it: what is missing or risky (`notes`, for
the startup log and /healthz), whether Twilio can reach PUBLIC_BASE_URL, and the
summary `callbridge serve` prints. Nothing here shows a secret value."""

from __future__ import annotations

import enum
import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bridge.secret import Secret
from bridge.settings.reader import is_loopback_host

if TYPE_CHECKING:
    from bridge.settings.schema import Settings


class Severity(enum.Enum):
    NOTICE = "notice"  # something is not configured; the bridge says what it does instead
    DANGER = "danger"  # the bridge is open to anyone: shouted in the log


@dataclass(frozen=True)
class Note:
    variable: str  # the variable to look at first
    text: str  # a whole sentence, starting with the variable's name
    severity: Severity = Severity.NOTICE

    def __str__(self) -> str:
        return self.text


def notes(settings: Settings) -> list[Note]:
    """What is not configured or risky, and what the bridge does about it."""
    found: list[Note] = []

    def note(variable: str, text: str, severity: Severity = Severity.NOTICE) -> None:
        found.append(Note(variable, text, severity))

    if not settings.elevenlabs_api_key:
        note(
            "ELEVENLABS_API_KEY",
            "ELEVENLABS_API_KEY is not set: every call gets the fallback TwiML",
        )
    if not settings.elevenlabs_agent_id:
        note(
            "ELEVENLABS_AGENT_ID",
            "ELEVENLABS_AGENT_ID is not set: only rules that name an agent_id reach an agent",
        )
    if not settings.twilio_auth_token and not settings.skip_twilio_signature:
        note(
            "TWILIO_AUTH_TOKEN",
            "TWILIO_AUTH_TOKEN is not set: Twilio webhooks cannot be verified and get 403",
        )
    public = settings.public_base_url
    if not public:
        hosts = settings.twilio_allowed_hosts
        note(
            "PUBLIC_BASE_URL",
            "PUBLIC_BASE_URL is not set: signatures are checked against the request URL"
            + (
                " rebuilt from X-Forwarded-Proto/Host"
                if settings.trust_forwarded_headers
                else " (its Host header and scheme); set it to the public https origin"
            )
            + (
                f"; accepted hosts (TWILIO_ALLOWED_HOSTS): {', '.join(hosts)}"
                if hosts
                else "; any host is accepted, so a webhook signed for another app of the "
                "same Twilio account can be replayed here (set TWILIO_ALLOWED_HOSTS)"
            ),
            # Shouted, unless every webhook is accepted anyway (said loudly below).
            Severity.NOTICE if hosts or settings.skip_twilio_signature else Severity.DANGER,
        )
    elif urlsplit(public).scheme != "https" and not _is_loopback(public):
        # Local runs (the sandbox, tests) are http on loopback, and that is fine.
        note("PUBLIC_BASE_URL", f"PUBLIC_BASE_URL {twilio_cannot_reach(public)}")
    if not settings.bridge_api_token:
        note(
            "BRIDGE_API_TOKEN",
            "BRIDGE_API_TOKEN is not set: the outbound API (/calls, /api/*) answers 503",
        )
    elif not settings.allowed_countries():
        note(
            "OUTBOUND_ALLOWED_COUNTRIES",
            "OUTBOUND_ALLOWED_COUNTRIES and TWILIO_PHONE_NUMBER are not set: "
            "every outbound destination is refused",
        )
    if settings.twilio_previous_auth_token:
        note(
            "TWILIO_PREVIOUS_AUTH_TOKEN",
            "TWILIO_PREVIOUS_AUTH_TOKEN is set: webhooks signed with the old token are "
            "still accepted; unset it once the new token is primary at Twilio",
        )
    if settings.skip_twilio_signature:
        note(
            "BRIDGE_INSECURE_SKIP_TWILIO_SIGNATURE",
            "BRIDGE_INSECURE_SKIP_TWILIO_SIGNATURE is on: anyone can post webhooks "
            "(local development only)",
            Severity.DANGER,
        )
    return found


# Set on a platform (Heroku sets both): the bridge is deployed, not run on a laptop.
DEPLOYED_VARIABLES = ("DYNO", "PORT")


def unguarded_host(settings: Settings, environ: Mapping[str, str]) -> str | None:
    """Why a deployed bridge must not start: nothing fixes the URL Twilio's signatures
    are checked against, so one signed for another app could be replayed. None if fine."""
    if not any(environ.get(name, "").strip() for name in DEPLOYED_VARIABLES):
        return None
    if settings.public_base_url or settings.twilio_allowed_hosts:
        return None
    if settings.trust_forwarded_headers:
        return None
    return (
        "must be set when deployed ($PORT or $DYNO is set), or else TWILIO_ALLOWED_HOSTS "
        "or TRUST_FORWARDED_HEADERS: without them any Host header is accepted, so a "
        "Twilio webhook signed for another app could be replayed here"
    )


def twilio_cannot_reach(public_base_url: str) -> str | None:
    """Why Twilio could not (or should not) call PUBLIC_BASE_URL; None when it can.

    What `callbridge doctor` requires before it points a phone number at the bridge.
    """
    if not public_base_url:
        return "is not set"
    parts = urlsplit(public_base_url)
    host = (parts.hostname or "").rstrip(".")
    if parts.scheme != "https":
        return "is not https: Twilio should call the bridge over TLS"
    if _is_private(host):
        return f"is not a public address ({host}): Twilio cannot reach it"
    return None


def summary(settings: Settings) -> list[tuple[str, str]]:
    """(name, shown value) pairs for `callbridge serve`; secrets show only set/not set."""

    def secret(value: Secret) -> str:
        return "set" if value else "not set"

    return [
        ("ELEVENLABS_API_KEY", secret(settings.elevenlabs_api_key)),
        ("ELEVENLABS_AGENT_ID", settings.elevenlabs_agent_id or "not set"),
        ("ELEVENLABS_API_BASE", settings.elevenlabs_api_base),
        ("TWILIO_ACCOUNT_SID", settings.twilio_account_sid or "not set"),
        ("TWILIO_AUTH_TOKEN", secret(settings.twilio_auth_token)),
        ("TWILIO_PREVIOUS_AUTH_TOKEN", secret(settings.twilio_previous_auth_token)),
        ("TWILIO_PHONE_NUMBER", settings.twilio_phone_number or "not set"),
        ("PUBLIC_BASE_URL", settings.public_base_url or "not set"),
        ("TWILIO_ALLOWED_HOSTS", ", ".join(settings.twilio_allowed_hosts) or "any"),
        ("BRIDGE_API_TOKEN", secret(settings.bridge_api_token)),
        ("METRICS_TOKEN", secret(settings.metrics_token)),
        ("ROUTES_FILE", str(settings.routes_file) if settings.routes_file else "not set"),
        ("outbound countries", ", ".join(settings.allowed_countries()) or "none"),
        ("DATABASE_URL", without_password(settings.database_url)),
        ("INBOUND_DEADLINE_SECONDS", f"{settings.inbound_deadline:g}"),
        ("AUDIO_STORE", settings.audio_store_url),
        ("TWILIO_WEBHOOK_SHARED_KEY", secret(settings.twilio_webhook_shared_key)),
        ("twilio signature check", "OFF" if settings.skip_twilio_signature else "on"),
    ]


def without_password(url: str) -> str:
    """A database URL fit to print: `user:***@host`."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


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
    return is_loopback_host(urlsplit(url).hostname or "")
