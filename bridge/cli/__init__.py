"""The `callbridge` command: serve, check routing files, dry-run routing, place calls.

This module assembles the parser and runs a command; each command group lives in a
module of its own (`serve`, `routes`, `call`, `campaign`, `calls`, `db`, `doctor`,
`sandbox`, `simulate`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bridge.campaign import CampaignError
from bridge.cli import call, calls, campaign, db, doctor, routes, sandbox, serve, simulate
from bridge.cli.api import bridge_client
from bridge.cli.call import parse_variables
from bridge.cli.errors import UsageError
from bridge.routing import RoutesError
from bridge.settings import SettingsError

__all__ = ["UsageError", "bridge_client", "main", "parse_variables"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        code: int = args.handler(args)
    except (SettingsError, RoutesError) as exc:
        print(f"callbridge: {exc}", file=sys.stderr)
        return 1
    except (UsageError, CampaignError) as exc:
        print(f"callbridge: {exc}", file=sys.stderr)
        return 2
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callbridge",
        description="Twilio-to-ElevenLabs call bridge.",
        epilog="Run `callbridge COMMAND --help` for a command's options.",
    )
    commands = parser.add_subparsers(title="commands")
    serve.add_parser(commands)
    routes.add_routes_parser(commands)
    routes.add_route_parser(commands)
    call.add_parser(commands)
    calls.add_parser(commands)
    campaign.add_parser(commands)
    db.add_parser(commands)
    doctor.add_parser(commands)
    sandbox.add_parser(commands)
    simulate.add_parser(commands)
    return parser
