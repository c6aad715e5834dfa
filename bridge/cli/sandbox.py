"""`callbridge sandbox`: the bridge with local stand-ins for ElevenLabs and Twilio, for
trying calls and routing rules without any account."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bridge.cli.errors import UsageError

if TYPE_CHECKING:
    from bridge.settings import Settings

SANDBOX_EPILOG = """\
Everything runs in this process, on 127.0.0.1: the bridge on --port, and the stand-in
ElevenLabs and Twilio APIs (the ones the test suite uses) on free ports. The sandbox
directory keeps the call log (SQLite), the routing rules it starts with (routes.toml),
contacts to try a campaign with (contacts.csv), and made-up credentials and the
bridge's URL (env.sh, as CALLBRIDGE_URL, the default of the commands' --url) for the
commands you run in another terminal; the banner prints them. No environment
variable of yours is used, and nothing is sent to ElevenLabs or Twilio. Once it
answers, the sandbox opens its console (/ui) in your browser, if there is one
(--no-browser: not).

examples:
  callbridge sandbox
  callbridge sandbox --port 8080 --routes my-routes.toml --dir /tmp/sandbox
"""


def add_parser(commands: Any) -> None:
    sandbox = commands.add_parser(
        "sandbox",
        help="run the bridge with local stand-ins for ElevenLabs and Twilio (no account needed)",
        description=(
            "Run the bridge with local stand-ins for ElevenLabs and Twilio, place simulated\n"
            "inbound and outbound calls, and watch the routing decisions, TwiML and call log."
        ),
        epilog=SANDBOX_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sandbox.add_argument(
        "--port", type=_port, default=8000, help="the bridge's port on 127.0.0.1 (default 8000)"
    )
    sandbox.add_argument(
        "--routes", type=Path, metavar="FILE", help="routing rules (default: DIR/routes.toml)"
    )
    sandbox.add_argument(
        "--dir",
        type=Path,
        default=Path("sandbox"),
        metavar="DIR",
        help="where the sandbox keeps its call log and files (default ./sandbox)",
    )
    sandbox.add_argument(
        "--ring-seconds",
        type=_seconds,
        default=1.0,
        metavar="S",
        help="how long the virtual phone rings before it answers (default 1)",
    )
    sandbox.add_argument(
        "--talk-seconds",
        type=_seconds,
        default=4.0,
        metavar="S",
        help="how long a connected call lasts (default 4)",
    )
    sandbox.add_argument(
        "--no-transcripts",
        action="store_true",
        help="the stand-in ElevenLabs sends no post-call transcripts",
    )
    sandbox.add_argument(
        "--no-browser",
        action="store_true",
        help="do not open the console in the browser when the sandbox starts",
    )
    sandbox.add_argument(
        "--audio-store",
        metavar="URL",
        help="keep call audio in this store, e.g. s3://BUCKET/PREFIX with the AWS_* "
        "variables (the only ones read from the environment); default DIR/call-audio",
    )
    sandbox.set_defaults(handler=_sandbox)


def _port(value: str) -> int:
    if not value.isdigit() or int(value) > 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port (0 for any free port)")
    return int(value)


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 600:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds from 0 to 600")
    return seconds


def _audio(store: str | None) -> Settings | None:
    """The audio store asked for, with the AWS_* variables and no other setting."""
    if store is None:
        return None
    from bridge.sandbox.config import AUDIO_VARIABLES
    from bridge.settings import Settings, SettingsError

    environ = {name: os.environ[name] for name in AUDIO_VARIABLES if name in os.environ}
    try:
        return Settings.from_env({**environ, "AUDIO_STORE": store})
    except SettingsError as exc:
        raise UsageError(f"--audio-store: {exc}") from None


def _sandbox(args: argparse.Namespace) -> int:
    import asyncio

    from bridge.sandbox import Sandbox, SandboxError, SandboxOptions, Timing
    from bridge.sandbox.browser import open_console

    if args.routes is not None and not args.routes.is_file():
        raise UsageError(f"--routes {args.routes}: no such file")
    options = SandboxOptions(
        directory=args.dir,
        port=args.port,
        routes_file=args.routes,
        timing=Timing(ring=args.ring_seconds, talk=args.talk_seconds),
        transcripts=not args.no_transcripts,
        audio=_audio(args.audio_store),
    )
    try:
        opener = None if args.no_browser else open_console
        asyncio.run(Sandbox(options, open_console=opener).run())
    except SandboxError as exc:
        print(f"callbridge: sandbox: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C while starting, before the sandbox handles it
        print("callbridge: sandbox: interrupted", file=sys.stderr)
        return 130
    return 0
