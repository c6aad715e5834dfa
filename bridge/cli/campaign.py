"""`callbridge campaign`: the command line of a campaign (see `bridge.campaign` for the run)."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bridge.cli.api import add_call_options, add_target_options, call_fields, target
from bridge.cli.errors import Failed, UsageError

if TYPE_CHECKING:
    from bridge.campaign import Contacts, ResultsFile

CAMPAIGN_EPILOG = """\
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

results file (default: CONTACTS.results.csv next to the contacts file):
  CSV with columns row, number, status (placed, failed, invalid, skipped),
  call_sid, conversation_id, error. Outcomes are appended as they happen and the
  file is rewritten in row order when the run ends. A cell a spreadsheet would
  take for a formula (starting with = + - @, a tab or CR) is written with a
  leading ' ; valid E.164 numbers are written as they are. One run at a time uses
  a results file (a lock on .RESULTS.lock beside it): a second is refused.

re-running (after Ctrl-C, a crash, or edits to the file) never dials a placed row
again: numbers the results file lists as placed are skipped, and every request
carries an Idempotency-Key made from the campaign name and the number (not the
row's position or its other cells), so a call whose outcome was lost is replayed
by the bridge rather than dialled again (the bridge keeps keys for 24 hours).
Failed rows are tried again. A row whose number another run (or request) of the
same campaign is dialling at that moment is skipped as "in progress elsewhere" (the
bridge's 409), never failed: run again later to record its outcome. To call the
same numbers again, start a new campaign with another --campaign name and results
file.

Ctrl-C stops new calls, waits for the ones in flight, writes the results and exits
with 130; a second Ctrl-C stops at once (the results so far are already written).

exit status:
  0    every valid row placed (invalid rows and duplicates are reported, not counted)
  1    some row not placed: refused, failed or in progress elsewhere, or the
       campaign stopped early; or another run is using the results file
  2    usage error, or a contacts or results file that cannot be used
  130  interrupted (Ctrl-C)
"""


def add_parser(commands: Any) -> None:
    campaign = commands.add_parser(
        "campaign",
        help="one call per row of a CSV file, paced, safe to re-run",
        description=(
            "Call every row of a contacts CSV through the bridge's POST /calls API, paced\n"
            "to --rate calls per second with at most --max-in-flight at a time; progress\n"
            "on stderr, outcomes in a results CSV."
        ),
        epilog=CAMPAIGN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    campaign.add_argument("file", type=Path, help="contacts CSV with a 'phone' column")
    campaign.add_argument(
        "--rate",
        type=_positive_float,
        default=1.0,
        help="calls started per second (default 1, Twilio's default account limit)",
    )
    campaign.add_argument(
        "--max-in-flight",
        type=_positive_int,
        default=5,
        metavar="N",
        help="requests to the bridge at the same time (default 5)",
    )
    campaign.add_argument(
        "--results", type=Path, help="results CSV (default: CONTACTS.results.csv)"
    )
    campaign.add_argument(
        "--campaign",
        metavar="NAME",
        help="names the campaign in its idempotency keys (default: the contacts file's name)",
    )
    add_call_options(campaign)
    add_target_options(campaign)
    campaign.set_defaults(handler=_campaign)


def _campaign(args: argparse.Namespace) -> int:
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
