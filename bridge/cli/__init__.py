"""The `callbridge` command: serve, check routing files, dry-run routing, place calls.

This module assembles the parser and runs a command; each command group lives in a
module of its own (`serve`, `routes`, `call`, `campaign`, `calls`, `dnc`, `db`, `reconcile`,
`doctor`, `sandbox`, `simulate`, `worker`).

Start-up time: building the parser imports only the command modules, which import
nothing heavy at module level; a command imports the server, the database or the
sandbox inside its handler, so `callbridge --help` or `callbridge route` never pays
for what they do not use (tests/test_cli_startup.py holds the line).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from bridge.cli import (
    call,
    calls,
    campaign,
    db,
    dnc,
    doctor,
    events,
    reconcile,
    routes,
    sandbox,
    serve,
    simulate,
    worker,
)
from bridge.cli.call import parse_variables
from bridge.cli.errors import Failed, UsageError

__all__ = ["UsageError", "main", "parse_variables"]

# The exit status of a process that wrote into a closed pipe and was killed by SIGPIPE
# (128 + 13), as `yes | head -1` reports it: the output was cut short.
BROKEN_PIPE = 141

# Errors of the modules a command loads (lazily), by the package that exports them:
# the status to exit with after printing the message. Looked up in sys.modules, so that
# main imports none of them: an error of a package never imported cannot occur.
REPORTED_ERRORS = {
    ("bridge.settings", "SettingsError"): 1,
    ("bridge.routing", "RoutesError"): 1,
    ("bridge.campaign", "CampaignError"): 2,
}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            return _run(argv)
        finally:
            sys.stdout.flush()  # here, not at exit, so that a closed pipe is caught below
    except BrokenPipeError:
        # `callbridge calls | head`: the reader has gone; no traceback. Later writes
        # (the interpreter's own flush at exit) go nowhere.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return BROKEN_PIPE


def _run(argv: Sequence[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        code: int = args.handler(args)
    except UsageError as exc:
        print(f"callbridge: {exc}", file=sys.stderr)
        return 2
    except Failed as exc:
        print(f"callbridge: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        status = _reported(exc)
        if status is None:
            raise
        print(f"callbridge: {exc}", file=sys.stderr)
        return status
    return code


def _reported(exc: Exception) -> int | None:
    for (module_name, class_name), status in REPORTED_ERRORS.items():
        module = sys.modules.get(module_name)
        error_class = getattr(module, class_name, None)
        if isinstance(error_class, type) and isinstance(exc, error_class):
            return status
    return None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callbridge",
        description="Twilio-to-ElevenLabs call bridge.",
        epilog=(
            "Run `callbridge COMMAND --help` for a command's options. When a command's output\n"
            "is piped into a reader that stops early (`| head`), it stops quietly with exit\n"
            f"status {BROKEN_PIPE}, as a command killed by SIGPIPE does."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(title="commands")
    serve.add_parser(commands)
    routes.add_routes_parser(commands)
    routes.add_route_parser(commands)
    call.add_parser(commands)
    calls.add_parser(commands)
    events.add_parser(commands)
    campaign.add_parser(commands)
    dnc.add_parser(commands)
    db.add_parser(commands)
    reconcile.add_parser(commands)
    doctor.add_parser(commands)
    sandbox.add_parser(commands)
    simulate.add_parser(commands)
    worker.add_parser(commands)
    return parser
