"""`callbridge campaign`: one outbound call per row of a CSV file, paced and safe to re-run.

The contacts file has a `phone` column (E.164, the destination); every other named
column with a non-empty cell becomes a dynamic variable of that row's call, sent as
a trimmed string. Rows are named by the line they start on (the header is line 1).
Invalid rows (no or bad phone, malformed CSV, text that is not UTF-8) are reported
and skipped; blank rows are ignored.

Re-running after Ctrl-C, a crash or an edit to the file never dials a placed row
again, by two independent guards:

- The results file is the campaign's ledger. Outcomes are appended to it as they
  happen (a crash loses none that were known) and it is rewritten in row order at
  the end. Numbers it lists as `placed` are not dialled.
- Each request carries an `Idempotency-Key` derived from the campaign name and the
  destination number only: not from the row number or the file's bytes, which
  change when rows are inserted or fixed, nor from the row's other cells, which
  would make an edited row a new call. A call placed whose answer was lost (or
  not yet written down) is replayed by the bridge instead of dialled again; a
  placed row edited since gets the bridge's 422 (same key, other request). The
  bridge keeps keys for 24 hours in its database.

So a campaign calls each number at most once: a number seen again further down the
file is skipped as a duplicate. To call the same numbers again within 24 hours,
start a new campaign (another `--campaign` name and results file).

Modules: `contacts` reads the CSV, `ledger` is the results file, `client` places one
call, `progress` reports on stderr, `run` paces and runs the whole campaign.
"""

from bridge.campaign.client import Answer, idempotency_key, post_call
from bridge.campaign.contacts import E164, PHONE_COLUMN, Contact, Contacts, read_contacts
from bridge.campaign.errors import CampaignError, ResultsBusy
from bridge.campaign.ledger import (
    RESULT_COLUMNS,
    Result,
    ResultsFile,
    Status,
    default_results_path,
)
from bridge.campaign.progress import Progress
from bridge.campaign.run import (
    INTERRUPTED,
    STOP_STATUSES,
    Campaign,
    Options,
    Pacer,
    Report,
    plan,
)

__all__ = [
    "E164",
    "INTERRUPTED",
    "PHONE_COLUMN",
    "RESULT_COLUMNS",
    "STOP_STATUSES",
    "Answer",
    "Campaign",
    "CampaignError",
    "Contact",
    "Contacts",
    "Options",
    "Pacer",
    "Progress",
    "Report",
    "Result",
    "ResultsBusy",
    "ResultsFile",
    "Status",
    "default_results_path",
    "idempotency_key",
    "plan",
    "post_call",
    "read_contacts",
]
