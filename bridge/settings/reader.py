"""Reading typed values from environment variables, collecting every problem instead
of stopping at the first (so that one start shows everything to fix)."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import phonenumbers

from bridge import phone
from bridge.secret import Secret
from bridge.settings.problems import Problem

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# The bridge's own tokens are guessed online only if short; 32 characters of
# token_urlsafe carry 192 bits.
MIN_TOKEN_LENGTH = 32
HOW_TO_GENERATE = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'
# S3 bucket naming rules (also what R2 and Bucketeer accept).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class EnvReader:
    """Each method reads one variable (stripped); a malformed value is recorded in
    `problems` and the default is returned, so reading goes on."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[Problem] = []

    def _problem(self, name: str, message: str) -> None:
        self.problems.append(Problem(name, message))

    def text(self, name: str) -> str:
        return self.env.get(name, "").strip()

    def secret(self, name: str) -> Secret:
        return Secret(self.env.get(name, "").strip())

    def token(self, name: str) -> Secret:
        """One of the bridge's own tokens: unset, or at least MIN_TOKEN_LENGTH characters."""
        value = self.secret(name)
        if value and len(value.reveal()) < MIN_TOKEN_LENGTH:
            self._problem(
                name,
                f"is shorter than {MIN_TOKEN_LENGTH} characters; generate one with: "
                f"{HOW_TO_GENERATE}",
            )
            return Secret("")
        return value

    def url(self, name: str, default: str) -> str:
        value = self.text(name) or default
        if not value:
            return ""
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            self._problem(name, "must be an http(s) URL like https://example.com")
            return default
        if parts.query or parts.fragment:
            self._problem(name, "must not have a query or fragment")
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
            self._problem(
                name,
                f"must be an origin like https://my-bridge.example.com, {problem} "
                "(the bridge adds /twilio/inbound and its other paths itself)",
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
            self._problem(name, "must be an E.164 number like +15551234567")
        return value

    def networks(self, name: str) -> tuple[IPNetwork, ...]:
        found = []
        for item in self.text(name).replace(",", " ").split():
            try:
                found.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                self._problem(name, f"{item!r} is not an IP address or network (CIDR)")
        return tuple(found)

    def hosts(self, name: str) -> tuple[str, ...]:
        """Host names, or name:port, separated by commas or spaces; lower case."""
        found = []
        for item in self.text(name).replace(",", " ").split():
            host = item.lower().rstrip(".")
            if "/" in host or "@" in host:
                self._problem(name, f"{item!r} is not a host name (like my-bridge.example.com)")
            else:
                found.append(host)
        return tuple(found)

    def regions(self, name: str) -> tuple[str, ...]:
        raw = self.text(name)
        codes = tuple(code.strip().upper() for code in raw.split(",") if code.strip())
        unknown = [code for code in codes if code not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            self._problem(name, f"{', '.join(unknown)} not ISO 3166 country codes (like US,CA,GB)")
            return ()
        return codes

    def audio_store(self, name: str) -> str:
        """`file://PATH` or `s3://BUCKET[/PREFIX]`; "" when unset."""
        value = self.text(name)
        if not value:
            return ""
        parts = urlsplit(value)
        if parts.scheme == "file" and (parts.netloc or parts.path):
            return value.rstrip("/")
        if parts.scheme == "s3" and _BUCKET.fullmatch(parts.netloc) and not parts.query:
            return value.rstrip("/")
        self._problem(
            name,
            "must be file://PATH or s3://BUCKET/PREFIX (a bucket name of 3-63 lowercase "
            "letters, digits, dots and hyphens)",
        )
        return ""

    def webhook_urls(self, name: str) -> tuple[str, ...]:
        """https URLs separated by commas or spaces; plain http only to a loopback
        address (local development), since what goes there is call data."""
        found = []
        for item in self.text(name).replace(",", " ").split():
            parts = urlsplit(item)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                self._problem(name, f"{item!r} is not an https URL like https://example.com/hook")
            elif parts.scheme == "http" and not is_loopback_host(parts.hostname):
                self._problem(name, f"{item!r} must be https (plain http only to loopback)")
            elif parts.username is not None or parts.fragment:
                self._problem(name, f"{item!r} must not hold a user name or a fragment")
            else:
                found.append(item)
        return tuple(found)

    def webhook_secrets(self, name: str) -> tuple[Secret, ...]:
        """Standard Webhooks secrets (`whsec_` then base64), separated by commas or
        spaces: several during a rotation, the first one current."""
        found = []
        for index, item in enumerate(self.text(name).replace(",", " ").split(), start=1):
            key = item.removeprefix("whsec_")
            try:
                decoded = base64.b64decode(key + "=" * (-len(key) % 4), validate=True)
            except (binascii.Error, ValueError):
                decoded = b""
            if not item.startswith("whsec_") or len(decoded) < 16:
                self._problem(
                    name,
                    f"secret {index} must be whsec_ followed by base64 of at least 16 bytes "
                    '(generate one with: python3 -c "import base64,secrets; '
                    "print('whsec_' + base64.b64encode(secrets.token_bytes(32)).decode())\")",
                )
            else:
                found.append(Secret(item))
        return tuple(found)

    def words(self, name: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
        """Names from `allowed`, separated by commas or spaces."""
        found = []
        for item in self.text(name).replace(",", " ").split():
            if item not in allowed:
                self._problem(name, f"{item!r} is not one of {', '.join(allowed)}")
            else:
                found.append(item)
        return tuple(found)

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
            self._problem(name, "must be a whole number")
            return default
        if not low <= value <= high:
            self._problem(name, f"must be between {low} and {high}")
            return default
        return value

    def number(self, name: str, default: float, low: float, high: float) -> float:
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            self._problem(name, "must be a number of seconds")
            return default
        if not low <= value <= high:
            self._problem(name, f"must be between {low:g} and {high:g} seconds")
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
        self._problem(name, "must be true or false")
        return default

    def timezone(self, name: str, default: str) -> str:
        """An IANA time zone name, like Europe/Paris (checked against the system's
        zone database)."""
        raw = self.text(name)
        if not raw:
            return default
        try:
            zoneinfo.ZoneInfo(raw)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            self._problem(name, "must be a time zone name, like UTC or Europe/Paris")
            return default
        return raw

    def choice(
        self, name: str, default: str, options: tuple[str, ...], *, upper: bool = True
    ) -> str:
        raw = self.text(name).upper() if upper else self.text(name).lower()
        if not raw:
            return default
        if raw not in options:
            self._problem(name, f"must be one of {', '.join(options)}")
            return default
        return raw


def is_loopback_host(host: str) -> bool:
    """localhost or a loopback address (no DNS lookup)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
