"""What `call`, `calls` and `campaign` share: the POST /calls fields their options set,
and the bridge the request goes to (a running one at --url or $CALLBRIDGE_URL, or one
built in this process).

Imported while the parser is built, so it imports nothing heavy at module level.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bridge.cli.errors import Failed, UsageError

if TYPE_CHECKING:
    import httpx

    from bridge.settings import Settings

URL_ENV = "CALLBRIDGE_URL"  # the sandbox's env.sh sets it
LOOPBACK = {"localhost", "127.0.0.1", "::1"}
IN_PROCESS_BASE = "http://bridge.invalid"
# What a <Say> cannot carry (XML 1.0 refuses them; tab, newline and CR are fine).
NOT_SPEAKABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
URL_HELP = (
    "a running bridge, like https://bridge.example.com (default: $CALLBRIDGE_URL, which "
    "the sandbox's env.sh sets; without either, the bridge is built in this process)"
)


def add_call_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("call options")
    group.add_argument("--agent", metavar="ID", help="agent id (default: ELEVENLABS_AGENT_ID)")
    group.add_argument(
        "--mode",
        choices=["twilio", "elevenlabs", "sip"],
        help="how to dial (default: twilio when the bridge has Twilio credentials)",
    )
    group.add_argument(
        "--machine-detection",
        action="store_true",
        help="answering machine detection (twilio mode); see --on-machine",
    )
    group.add_argument(
        "--on-machine",
        choices=["hangup", "message", "agent"],
        help="when a machine answers (default hangup; implies --machine-detection)",
    )
    group.add_argument(
        "--machine-message",
        metavar="TEXT",
        help="message left on a machine (implies --on-machine message)",
    )
    group.add_argument(
        "--ring-timeout", type=int, metavar="SECONDS", help="ring for this long (default 30)"
    )
    group.add_argument("--record", action="store_true", help="record the call (twilio mode)")


def add_target_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("bridge")
    group.add_argument("--url", help=URL_HELP)
    group.add_argument("--token", help="its API token (default: $BRIDGE_API_TOKEN)")


def call_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The POST /calls fields the call options set, beyond `to` and variables."""
    on_machine = args.on_machine or ("message" if args.machine_message else None)
    fields: dict[str, Any] = {}
    if args.agent:
        fields["agent_id"] = args.agent
    if args.mode:
        fields["mode"] = args.mode
    if args.machine_detection or on_machine:
        fields["machine_detection"] = True
    if on_machine:
        fields["on_machine"] = on_machine
    if args.machine_message is not None:
        fields["machine_message"] = _machine_message(args.machine_message)
    if args.ring_timeout is not None:
        fields["ring_timeout"] = args.ring_timeout
    if args.record:
        fields["record"] = True
    return fields


def _machine_message(text: str) -> str:
    """The message as given, or a UsageError when Twilio could not say it: blank (the
    callee's machine would record silence) or with control characters in it."""
    if not text.strip():
        raise UsageError("--machine-message: is blank: give the words to leave on the machine")
    found = sorted(set(NOT_SPEAKABLE.findall(text)))
    if found:
        shown = ", ".join(repr(char) for char in found)
        raise UsageError(
            f"--machine-message: contains control characters ({shown}), which a spoken "
            "message cannot carry"
        )
    return text


def target(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """(the bridge's base URL or None for in process, the token to send)."""
    given = getattr(args, "url", None)
    url = given or os.environ.get(URL_ENV, "").strip() or None
    token = getattr(args, "token", None)
    if url is None:
        return None, token
    where = f"--url {url!r}" if given else f"{URL_ENV}={url!r}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"{where}: expected a URL like https://bridge.example.com")
    token = token or os.environ.get("BRIDGE_API_TOKEN", "")
    if not token:
        raise UsageError("--url needs the bridge's API token: set BRIDGE_API_TOKEN or pass --token")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK:
        print(
            f"callbridge: warning: {url} is not https; the token travels in clear",
            file=sys.stderr,
        )
    return url.rstrip("/"), token


def local_settings() -> Settings:
    """The settings of the bridge built in this process, whose database must exist:
    only `serve` and `db upgrade` create one (a command run in the wrong directory
    would otherwise leave a new, empty ./callbridge.sqlite3 behind)."""
    from bridge.settings import Settings

    settings = Settings.from_env()
    require_database(settings.database_url)
    return settings


def require_database(database_url: str, *, url_option: bool = True) -> None:
    """Failed when DATABASE_URL names a SQLite file that does not exist."""
    path = sqlite_file(database_url)
    if path is None or path.exists():
        return
    named = "DATABASE_URL" if os.environ.get("DATABASE_URL") else "DATABASE_URL is not set"
    remote = f" For a running bridge, pass --url or set {URL_ENV}." if url_option else ""
    raise Failed(
        f"no database at {path} ({named}): `callbridge db upgrade` creates it, and "
        f"`callbridge serve` does too.{remote}"
    )


def sqlite_file(database_url: str) -> Path | None:
    """The file a SQLite DATABASE_URL names; None for other databases and in-memory ones."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:") or url.query.get("mode") == "memory":
        return None  # a SQLite URI: its own rules
    return Path(database)


@contextlib.asynccontextmanager
async def bridge_client(
    url: str | None,
    token: str | None,
    *,
    reading: bool = False,
    events: bool = False,
    dial_campaigns: bool = False,
) -> AsyncIterator[httpx.AsyncClient]:
    """A client for the bridge's API: over HTTP to `url`, or to an app built in process
    from the environment, its lifespan running for as long as the client is open.

    `reading`: only the call log is read. In process, the API is then opened with a
    token made up for this process: the call log is the user's own database, and
    needs no BRIDGE_API_TOKEN (nor a --token, which is for a bridge at --url).
    `events`: the outgoing events a change makes are still written (a campaign paused
    from this machine is announced like one paused through the bridge).
    `dial_campaigns`: in process, the campaign worker runs while the client is open (a
    campaign followed from this machine is dialled by it); other commands never dial.
    """
    import dataclasses
    import secrets

    import httpx

    async with contextlib.AsyncExitStack() as stack:
        if url is not None:
            client = httpx.AsyncClient(
                base_url=url, headers=_bearer(token), timeout=httpx.Timeout(30.0, connect=10.0)
            )
        else:
            from bridge.app import create_app
            from bridge.secret import Secret
            from bridge.storage import migrate

            settings = local_settings()
            if not dial_campaigns:
                settings = dataclasses.replace(settings, campaign_worker=False)
            if not os.environ.get("LOG_LEVEL"):
                # The command reports outcomes itself; keep the server's log lines out.
                settings = dataclasses.replace(settings, log_level="ERROR")
            if reading:
                token = secrets.token_urlsafe(24)
                settings = dataclasses.replace(settings, bridge_api_token=Secret(token))
                if not events:
                    # Nor does it send the outgoing events: the server does.
                    settings = dataclasses.replace(settings, events_webhook_urls=())
            app = create_app(settings)
            # In process, this command is the server: it brings the schema up to date.
            await migrate.upgrade(settings.database_url)
            await stack.enter_async_context(app.router.lifespan_context(app))
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url=IN_PROCESS_BASE,
                headers=_bearer(token or settings.bridge_api_token.reveal()),
            )
        yield await stack.enter_async_context(client)


def _bearer(token: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"} if token else {}
