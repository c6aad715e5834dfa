"""What `call` and `campaign` share: the POST /calls fields their options set, and the
bridge the request goes to (a running one with --url, or one built in this process)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx

from bridge.cli.errors import UsageError
from bridge.settings import Settings
from bridge.storage import migrate

HTTP_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
LOOPBACK = {"localhost", "127.0.0.1", "::1"}
IN_PROCESS_BASE = "http://bridge.invalid"


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
    group.add_argument(
        "--url",
        help="a running bridge, like https://bridge.example.com (default: in this process)",
    )
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
    if args.machine_message:
        fields["machine_message"] = args.machine_message
    if args.ring_timeout is not None:
        fields["ring_timeout"] = args.ring_timeout
    if args.record:
        fields["record"] = True
    return fields


def target(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """(the bridge's base URL or None for in process, the token to send)."""
    if not args.url:
        return None, args.token
    parts = urlsplit(args.url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"--url {args.url!r}: expected a URL like https://bridge.example.com")
    token = args.token or os.environ.get("BRIDGE_API_TOKEN", "")
    if not token:
        raise UsageError("--url needs the bridge's API token: set BRIDGE_API_TOKEN or pass --token")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK:
        print(
            f"callbridge: warning: {args.url} is not https; the token travels in clear",
            file=sys.stderr,
        )
    return args.url.rstrip("/"), token


@contextlib.asynccontextmanager
async def bridge_client(url: str | None, token: str | None) -> AsyncIterator[httpx.AsyncClient]:
    """A client for the bridge's API: over HTTP to `url`, or to an app built in process
    from the environment, its lifespan running for as long as the client is open."""
    async with contextlib.AsyncExitStack() as stack:
        if url is not None:
            client = httpx.AsyncClient(base_url=url, headers=_bearer(token), timeout=HTTP_TIMEOUT)
        else:
            from bridge.app import create_app

            settings = Settings.from_env()
            if not os.environ.get("LOG_LEVEL"):
                # The command reports outcomes itself; keep the server's log lines out.
                settings = dataclasses.replace(settings, log_level="ERROR")
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
