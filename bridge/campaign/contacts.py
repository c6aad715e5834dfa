"""Reading the contacts file: one call per row, its `phone` column and its variables.

The file has a `phone` column (E.164, the destination; spaces, dashes, dots and
parentheses between the digits are dropped); every other named column with
a non-empty cell becomes a dynamic variable of that row's call, sent as a trimmed
string. Rows are named by the line they start on (the header is line 1). Invalid rows
(no or bad phone, malformed CSV, text that is not UTF-8) are reported and skipped;
blank rows are ignored.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge import phone
from bridge.campaign.errors import CampaignError
from bridge.campaign.ledger import Result

PHONE_COLUMN = "phone"
E164 = phone.E164


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
    # Undecodable bytes survive as lone surrogates, so only their rows are refused.
    text = data.decode("utf-8-sig", errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records = _records(reader)
    header = next(records, None)
    if header is None:
        raise CampaignError(f"{path}: the file is empty (expected a header with a 'phone' column)")
    line, names = header
    if isinstance(names, str) or _has_surrogates(names):
        raise CampaignError(f"{path}:{line}: the header is not valid CSV in UTF-8")
    names = [name.strip() for name in names]
    phone_index = _phone_column(path, names)
    # Trailing unnamed columns (a header ending in commas) need no cells in the rows.
    needed = len(names)
    while needed and not names[needed - 1]:
        needed -= 1
    contacts = Contacts(path)
    for line, record in records:
        if isinstance(record, str):
            contacts.invalid.append(Result(line, "", "invalid", error=record))
            continue
        if not any(cell.strip() for cell in record):
            continue  # a blank row
        item = _contact(line, record, names, phone_index, needed)
        if isinstance(item, Contact):
            contacts.contacts.append(item)
        else:
            contacts.invalid.append(item)
    return contacts


def _records(reader: Any) -> Iterator[tuple[int, list[str] | str]]:
    """(line the record starts on, its cells or why it is not CSV)."""
    while True:
        start = reader.line_num + 1
        try:
            record: list[str] = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, f"not valid CSV: {exc}"
            if reader.line_num < start:
                return
            continue
        yield start, record


def _phone_column(path: Path, names: list[str]) -> int:
    named = [name for name in names if name]
    duplicates = sorted({name for name in named if named.count(name) > 1})
    if duplicates:
        raise CampaignError(f"{path}: duplicate column name(s): {', '.join(duplicates)}")
    matches = [index for index, name in enumerate(names) if name.lower() == PHONE_COLUMN]
    if not matches and any(
        part.strip().lower() == PHONE_COLUMN for name in names for part in name.split(";")
    ):
        raise CampaignError(
            f"{path}: the columns are separated by semicolons ({';'.join(names)}), as "
            "spreadsheets in some languages save CSV; save it with commas (in Excel: "
            "CSV UTF-8, comma delimited) and run again"
        )
    if len(matches) != 1:
        found = ", ".join(named) or "none"
        problem = "no" if not matches else "more than one"
        raise CampaignError(
            f"{path}: {problem} '{PHONE_COLUMN}' column in the header (columns: {found}); "
            f"the '{PHONE_COLUMN}' column holds each row's number in E.164, like +14155550123"
        )
    return matches[0]


def _contact(
    line: int, record: list[str], names: list[str], phone_index: int, needed: int
) -> Contact | Result:
    written = record[phone_index].strip() if phone_index < len(record) else ""
    # "+1 (415) 555-0135" as a spreadsheet keeps it: the E.164 number is its digits.
    tidied = phone.without_separators(written)
    number = tidied if tidied.startswith("+") else written
    shown = written.encode("utf-8", "backslashreplace").decode()  # as the file has it

    def invalid(error: str) -> Result:
        return Result(line, shown, "invalid", error=error)

    if _has_surrogates(record):
        return invalid("not UTF-8 text")
    extra = record[len(names) :]
    if any(cell.strip() for cell in extra) or len(record) < needed:
        # A cell too many or too few: the cells may well be in the wrong columns.
        return invalid(f"{len(record)} fields, but the header has {len(names)}")
    if not number:
        return invalid("no phone number")
    if not E164.fullmatch(number):
        meant = phone.suggestion(written)
        hint = f" (did you mean {meant}?)" if meant else ""
        return invalid(f"phone {written!r} is not an E.164 number like +14155550123{hint}")
    variables = {
        name: cell.strip()
        for index, (name, cell) in enumerate(zip(names, record, strict=False))
        if name and index != phone_index and cell.strip()
    }
    return Contact(line, number, variables)


def _has_surrogates(cells: Iterable[str]) -> bool:
    return any(any("\udc80" <= char <= "\udcff" for char in cell) for cell in cells)
