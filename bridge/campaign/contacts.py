"""Reading the contacts file: one call per row, its `phone` column and its variables.

The file has a `phone` column (E.164, the destination; spaces, dashes, dots and
parentheses between the digits are dropped); every other named column with
a non-empty cell becomes a dynamic variable of that row's call, sent as a trimmed
string. Rows are named by the line they start on (the header is line 1). Invalid rows
(no or bad phone, malformed CSV, text that is not UTF-8) are reported and skipped;
blank rows are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bridge.campaign.errors import CampaignError
from bridge.campaign.ledger import Result
from bridge.campaigns import intake

# The parser is the server's (bridge.campaigns.intake): a file the bridge takes as a
# campaign reads the same here.
PHONE_COLUMN = intake.PHONE_COLUMN
E164 = intake.E164


@dataclass(frozen=True)
class Contact:
    row: int
    number: str
    variables: dict[str, str]


@dataclass
class Contacts:
    path: Path
    contacts: list[Contact] = field(default_factory=list)
    invalid: list[Result] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.contacts) + len(self.invalid)


def read_contacts(path: Path) -> Contacts:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CampaignError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        rows = intake.csv_rows(data)
    except intake.BadFile as bad:
        where = f"{path}:{bad.line}" if bad.line is not None else f"{path}"
        raise CampaignError(f"{where}: {bad.message}") from None
    contacts = Contacts(path)
    for row in rows:
        if row.number is None:
            contacts.invalid.append(Result(row.line, row.shown, "invalid", error=row.error or ""))
        else:
            contacts.contacts.append(Contact(row.line, row.number, row.variables))
    return contacts
