"""`callbridge campaign`: the command line of a campaign (see `bridge.campaign` for the run)."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bridge.cli.api import add_call_options, add_target_options, call_fields, target
from bridge.cli.errors import Failed, UsageError

SUBCOMMANDS = ("list", "show", "pause", "resume", "cancel", "results")

if TYPE_CHECKING:
    from bridge.campaign import Contacts, ResultsFile

CAMPAIGN_EPILOG = """\
commands:
  callbridge campaign FILE [options]    submit FILE to the bridge as a server-side
                                        campaign and follow it with a progress bar
  callbridge campaign list [--state S]  campaigns, newest first
  callbridge campaign show ID [--follow]
  callbridge campaign pause|resume|cancel ID
  callbridge campaign results ID [--output FILE]   the results CSV
  callbridge campaign FILE --local      today's client-side loop (below)

server-side campaigns (the default):
  The bridge at --url (or $CALLBRIDGE_URL), or the one built in this process on this
  machine's database, keeps the campaign and its workers dial it: paced at --rate
  across every worker, inside each callee's local calling hours (--hours, --days;
  08:00-21:00 local unless --allow-outside-legal-hours), retried by outcome
  (--retry-on, --retry-attempts, --retry-delay), never to a number on the
  do-not-call list. The campaign's id is printed on stdout. Ctrl-C stops following,
  not the campaign: `callbridge campaign show ID --follow` follows it again.

contacts file:
  A header line with a 'phone' column (E.164, like +14155550123; spaces, dashes,
  dots and parentheses in it are dropped, so +1 (415) 555-0123 is fine). Columns
  are separated by commas (a file saved with semicolons is refused, with a note).
  Every other named column with a non-empty cell is a dynamic variable of that
  row's call, as a string. Rows are numbered by their line in the file (the header
  is line 1). Rows with a missing or bad number, with more or fewer cells than the
  header, or that are not valid CSV, are reported and skipped; blank rows are
  ignored. Each number is called at most once: a number seen again is skipped as
  a duplicate.

--local: the client-side loop, one POST /calls per row from this terminal:
results file (default: CONTACTS.results.csv next to the contacts file):
  CSV with columns row, number, status (placed, failed, invalid, skipped),
  call_sid, conversation_id, error. Outcomes are appended as they happen and the
  file is rewritten in row order when the run ends. A cell a spreadsheet would
  take for a formula (starting with = + - @, a tab or CR) is written with a
  leading ' ; valid E.164 numbers are written as they are. One run at a time uses
  a results file (a lock on .RESULTS.lock beside it): a second is refused.

re-running with --local (after Ctrl-C, a crash, or edits to the file) never dials a
placed row again: numbers the results file lists as placed are skipped, and every
request carries an Idempotency-Key made from the campaign name and the number (not
the row's position or its other cells), so a call whose outcome was lost is replayed
by the bridge rather than dialled again (the bridge keeps keys for 24 hours).
Failed rows are tried again. A row whose number another run (or request) of the
same campaign is dialling at that moment is skipped as "in progress elsewhere" (the
bridge's 409), never failed: run again later to record its outcome. To call the
same numbers again, start a new campaign with another --campaign name and results
file. Ctrl-C stops new calls, waits for the ones in flight, writes the results and
exits with 130; a second Ctrl-C stops at once (the results so far are already
written).

exit status:
  0    server-side: submitted (--no-follow) or finished; --local: every valid row
       placed (invalid rows and duplicates are reported, not counted)
  1    server-side: cancelled, or the bridge refused; --local: some row not placed
       (refused, failed or in progress elsewhere), the campaign stopped early, or
       another run is using the results file
  2    usage error, a contacts or results file that cannot be used, or a campaign
       the bridge refused as invalid (422)
  130  interrupted (Ctrl-C): --local stopped; server-side, stopped following
"""


def add_parser(commands: Any) -> None:
    campaign = commands.add_parser(
        "campaign",
        help="one call per row of a CSV file, paced, safe to re-run",
        description=(
            "Submit a contacts CSV to the bridge as a server-side campaign and follow it\n"
            "(or --local: call every row through POST /calls from here, paced to --rate\n"
            "calls per second with at most --max-in-flight at a time; results in a CSV).\n"
            "Also: campaign list | show ID | pause ID | resume ID | cancel ID | results ID."
        ),
        epilog=CAMPAIGN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    campaign.add_argument(
        "file",
        metavar="FILE|COMMAND",
        help="contacts CSV with a 'phone' column, or one of: " + ", ".join(SUBCOMMANDS),
    )
    campaign.add_argument("campaign_id", nargs="?", metavar="ID", help="the campaign (cmp_…)")
    campaign.add_argument(
        "--local",
        action="store_true",
        help="run the client-side loop from this terminal (resumable results file)",
    )
    campaign.add_argument(
        "--rate",
        type=_positive_float,
        help="calls started per second (default 1, Twilio's default account limit)",
    )
    campaign.add_argument(
        "--max-in-flight",
        type=_positive_int,
        metavar="N",
        help="calls dialling or in progress at once (server default 10; --local: "
        "requests to the bridge at the same time, default 5)",
    )
    server = campaign.add_argument_group("server-side campaigns")
    server.add_argument("--name", help="the campaign's name (default: --campaign or FILE's name)")
    server.add_argument("--start-at", metavar="TIME", help="start then (ISO time with offset)")
    server.add_argument(
        "--hours", metavar="OPEN-CLOSE", help="calling hours, callee's local time (09:00-20:00)"
    )
    server.add_argument("--days", metavar="DAYS", help="calling days (default mon,tue,...,sat)")
    server.add_argument(
        "--timezone", metavar="ZONE", help="read the hours in this zone, not the number's"
    )
    server.add_argument(
        "--allow-outside-legal-hours",
        action="store_true",
        help="allow hours outside 08:00-21:00 local (the US TCPA's)",
    )
    server.add_argument(
        "--retry-on", metavar="OUTCOMES", help="retry these: busy,no-answer,failed,machine"
    )
    server.add_argument(
        "--retry-attempts", type=int, metavar="N", help="retries after the first (default 2)"
    )
    server.add_argument(
        "--retry-delay", type=int, metavar="SECONDS", help="between attempts (default 3600)"
    )
    server.add_argument("--no-follow", action="store_true", help="submit, print the id and exit")
    server.add_argument(
        "--follow", action="store_true", help="show ID: follow it until it finishes"
    )
    server.add_argument(
        "--interval",
        type=_positive_float,
        default=2.0,
        metavar="SECONDS",
        help="between progress polls (default 2)",
    )
    server.add_argument(
        "--idempotency-key", metavar="KEY", help="submit at most once with this key"
    )
    server.add_argument(
        "--state",
        choices=["active", "paused", "cancelled", "finished"],
        help="list: only campaigns in this state",
    )
    server.add_argument(
        "--limit", type=_positive_int, default=20, metavar="N", help="list: at most N"
    )
    server.add_argument("--cursor", metavar="CURSOR", help="list: go on after a previous page")
    server.add_argument("--output", type=Path, metavar="FILE", help="results: write to FILE")
    server.add_argument("--json", action="store_true", help="list, show: the API's JSON")
    local = campaign.add_argument_group("--local")
    local.add_argument("--results", type=Path, help="results CSV (default: CONTACTS.results.csv)")
    local.add_argument(
        "--campaign",
        metavar="NAME",
        help="names the campaign in its idempotency keys (default: the contacts file's name)",
    )
    add_call_options(campaign)
    add_target_options(campaign)
    campaign.set_defaults(handler=_campaign)


def _campaign(args: argparse.Namespace) -> int:
    from bridge.cli import campaign_remote

    command: str = args.file
    if command in SUBCOMMANDS and not args.local:
        return campaign_remote.run_subcommand(args, command, args.campaign_id)
    if args.campaign_id is not None:
        raise UsageError(
            f"unexpected {args.campaign_id!r}: give one contacts file, or a command "
            f"({', '.join(SUBCOMMANDS)}) and an id"
        )
    path = Path(command)
    if not args.local:
        if args.results is not None:
            raise UsageError(
                "--results: only with --local (a server-side campaign's results are in the "
                "bridge: `callbridge campaign results ID`)"
            )
        return campaign_remote.submit(args, path)
    args.file = path
    if args.rate is None:
        args.rate = 1.0
    if args.max_in_flight is None:
        args.max_in_flight = 5
    return _local_campaign(args)


def _local_campaign(args: argparse.Namespace) -> int:
    from bridge.campaign import ResultsBusy, ResultsFile, default_results_path, read_contacts

    contacts = read_contacts(args.file)
    results_path: Path = args.results or default_results_path(args.file)
    if results_path.resolve() == args.file.resolve():
        raise UsageError("--results: must not be the contacts file")
    results = ResultsFile(results_path)
    try:
        results.lock()  # one run at a time: before anything is read, announced or dialled
    except ResultsBusy as busy:
        raise Failed(str(busy)) from None
    try:
        return _locked_campaign(args, contacts, results)
    finally:
        results.unlock()


def _locked_campaign(args: argparse.Namespace, contacts: Contacts, results: ResultsFile) -> int:
    import asyncio

    from bridge.campaign import Campaign, Options, Progress
    from bridge.cli.api import bridge_client, local_settings
    from bridge.cli.interrupts import current_task, on_ctrl_c

    results_path = results.path
    results.placed()  # a foreign file is refused before anything starts
    options = Options(
        campaign=args.campaign or args.file.name,
        rate=args.rate,
        max_in_flight=args.max_in_flight,
        call=call_fields(args),
    )
    url, token = target(args)
    if url is None:
        local_settings()  # settings and database checked before the campaign is announced
    print(
        f"campaign {options.campaign!r}: {contacts.total} row(s), {options.rate:g} call(s)/s, "
        f"at most {options.max_in_flight} in flight, results in {results_path}",
        file=sys.stderr,
    )

    async def run() -> int:
        main = current_task()
        progress = Progress(contacts.total)

        def again() -> None:
            if url is not None:
                main.cancel()  # stop waiting: the bridge at --url finishes those calls anyway
            else:
                print(
                    f"callbridge: still waiting for {progress.in_flight} call(s) in flight: "
                    "stopping them midway could lose track of a placed call",
                    file=sys.stderr,
                )

        # The first Ctrl-C cancels the run: Campaign stops launching and drains.
        with on_ctrl_c(main.cancel, again):
            async with bridge_client(url, token) as client:
                campaign = Campaign(contacts, client, results, options, progress=progress)
                return (await campaign.run()).exit_code

    try:
        code = asyncio.run(run())
    except (KeyboardInterrupt, asyncio.CancelledError):
        code = 130
    if code == 130:
        print(
            f"callbridge: interrupted; results in {results_path}; run the same command to go on",
            file=sys.stderr,
        )
    return code


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r}: must be more than 0")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be at least 1")
    return value
