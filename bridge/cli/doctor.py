"""`callbridge doctor`: check that this deployment can take calls; `--fix` what it can."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from bridge.cli.errors import UsageError

# bridge.doctor.run.DEFAULT_TIMEOUT (a test keeps the two equal): written here so that
# building the parser does not import the doctor and its HTTP clients.
DEFAULT_TIMEOUT = 10.0


def add_parser(commands: Any) -> None:
    doctor = commands.add_parser(
        "doctor",
        help="check settings, agents, the Twilio number and the public URL",
        description=(
            "Check that calls to TWILIO_PHONE_NUMBER will reach an agent: settings, the "
            "routing file, the ElevenLabs key and agents (audio formats must be ulaw_8000), "
            "the Twilio credentials and number (its webhooks must point here), and "
            "PUBLIC_BASE_URL/healthz. Exit status 0 only when every check passes."
        ),
    )
    doctor.add_argument(
        "--fix",
        action="store_true",
        help="set agents' audio formats and the number's webhooks, then read them back; "
        "the values replaced are printed (was: ...) so the change can be undone. The number "
        "is only changed once PUBLIC_BASE_URL is a public https origin whose /healthz "
        "answers as the bridge does",
    )
    doctor.add_argument(
        "--json",
        action="store_true",
        help="print the report as JSON; unlike the text, which masks them (user:***@), "
        "URLs in it keep their passwords, so that the replaced values can be put back",
    )
    doctor.add_argument(
        "--skip-public",
        action="store_true",
        help="do not call PUBLIC_BASE_URL/healthz (a local run); --fix still requires a "
        "public https PUBLIC_BASE_URL",
    )
    doctor.add_argument(
        "--routes", type=Path, metavar="FILE", help="routing file (default: $ROUTES_FILE)"
    )
    doctor.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"for each request (default {DEFAULT_TIMEOUT:g})",
    )
    doctor.set_defaults(handler=_doctor)


def _doctor(args: argparse.Namespace) -> int:
    import asyncio

    from bridge.doctor import Options, render_json, render_text, run_doctor

    if not 0 < args.timeout <= 120:
        raise UsageError("--timeout must be more than 0 and at most 120 seconds")
    options = Options(
        fix=args.fix, skip_public=args.skip_public, routes_file=args.routes, timeout=args.timeout
    )
    report = asyncio.run(run_doctor(dict(os.environ), options))
    print(render_json(report) if args.json else render_text(report), end="")
    return 0 if report.ok else 1
