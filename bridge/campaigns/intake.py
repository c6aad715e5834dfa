"""A campaign's recipients from what was sent: a JSON list or a CSV file.

CSV: a header with a `phone` column (E.164; spaces, dashes, dots and parentheses
between the digits are dropped); every other named column with a non-empty cell is
a dynamic variable of that row's call, as a trimmed string. Rows are named by the
line they start on (the header is line 1). Rows that cannot be used (no or bad phone,
malformed CSV, text that is not UTF-8, too many or too few cells) are reported and
skipped; blank rows are ignored. `callbridge campaign --local` reads its contacts
file with the same parser (bridge.campaign.contacts).

JSON: `[{phone, variables?, id?}]`, named by index (from 0).

Then (`intake`): a number seen again is skipped as a duplicate; each number gets the
time zones its calling hours are read in (a number with none, or whose zones are
never open at once, is reported and skipped); numbers on the do-not-call list become
`do_not_call` recipients, never dialled.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncConnection

from bridge import phone
from bridge.campaigns import hours
from bridge.campaigns.options import CampaignOptions
from bridge.campaigns.store import NewRecipient
from bridge.dnc.numbers import listed_among
from bridge.elevenlabs.client_data import _dynamic_value

PHONE_COLUMN = "phone"
E164 = phone.E164
MAX_ID_LENGTH = 255
MAX_VARIABLES = 100


class BadFile(ValueError):
    """The CSV as a whole cannot be used (no header, no `phone` column, ...).
    `line`: where, when it is one line's fault."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True)
class Row:
    """One row of the file: `number` (E.164) and its variables, or `error`.
    `shown` is the phone cell as the file has it (undecodable bytes escaped)."""

    line: int
    shown: str
    number: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    external_id: str | None = None
    error: str | None = None


# --- CSV ---------------------------------------------------------------------------------


def csv_rows(data: bytes) -> list[Row]:
    """The rows of a contacts CSV (blank rows left out); BadFile when the file itself
    cannot be used."""
    # Undecodable bytes survive as lone surrogates, so only their rows are refused.
    text = data.decode("utf-8-sig", errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records = _records(reader)
    header = next(records, None)
    if header is None:
        raise BadFile("the file is empty (expected a header with a 'phone' column)")
    line, names = header
    if isinstance(names, str) or _has_surrogates(names):
        raise BadFile("the header is not valid CSV in UTF-8", line)
    names = [name.strip() for name in names]
    phone_index = _phone_column(names)
    # Trailing unnamed columns (a header ending in commas) need no cells in the rows.
    needed = len(names)
    while needed and not names[needed - 1]:
        needed -= 1
    rows: list[Row] = []
    for line, record in records:
        if isinstance(record, str):
            rows.append(Row(line, "", error=record))
            continue
        if not any(cell.strip() for cell in record):
            continue  # a blank row
        rows.append(_csv_row(line, record, names, phone_index, needed))
    return rows


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


def _phone_column(names: list[str]) -> int:
    named = [name for name in names if name]
    duplicates = sorted({name for name in named if named.count(name) > 1})
    if duplicates:
        raise BadFile(f"duplicate column name(s): {', '.join(duplicates)}")
    matches = [index for index, name in enumerate(names) if name.lower() == PHONE_COLUMN]
    if not matches and any(
        part.strip().lower() == PHONE_COLUMN for name in names for part in name.split(";")
    ):
        raise BadFile(
            f"the columns are separated by semicolons ({';'.join(names)}), as "
            "spreadsheets in some languages save CSV; save it with commas (in Excel: "
            "CSV UTF-8, comma delimited) and run again"
        )
    if len(matches) != 1:
        found = ", ".join(named) or "none"
        problem = "no" if not matches else "more than one"
        raise BadFile(
            f"{problem} '{PHONE_COLUMN}' column in the header (columns: {found}); "
            f"the '{PHONE_COLUMN}' column holds each row's number in E.164, like +14155550123"
        )
    return matches[0]


def _csv_row(line: int, record: list[str], names: list[str], phone_index: int, needed: int) -> Row:
    written = record[phone_index].strip() if phone_index < len(record) else ""
    shown = written.encode("utf-8", "backslashreplace").decode()  # as the file has it
    if _has_surrogates(record):
        return Row(line, shown, error="not UTF-8 text")
    extra = record[len(names) :]
    if any(cell.strip() for cell in extra) or len(record) < needed:
        # A cell too many or too few: the cells may well be in the wrong columns.
        return Row(line, shown, error=f"{len(record)} fields, but the header has {len(names)}")
    number, error = _number(written)
    if number is None:
        return Row(line, shown, error=error)
    variables = {
        name: cell.strip()
        for index, (name, cell) in enumerate(zip(names, record, strict=False))
        if name and index != phone_index and cell.strip()
    }
    return Row(line, shown, number, variables)


def _number(written: str) -> tuple[str | None, str]:
    """(the E.164 number `written` is, or None and why not)."""
    # "+1 (415) 555-0135" as a spreadsheet keeps it: the E.164 number is its digits.
    tidied = phone.without_separators(written)
    number = tidied if tidied.startswith("+") else written
    if not number:
        return None, "no phone number"
    if not E164.fullmatch(number):
        meant = phone.suggestion(written)
        hint = f" (did you mean {meant}?)" if meant else ""
        return None, f"phone {written!r} is not an E.164 number like +14155550123{hint}"
    return number, ""


def _has_surrogates(cells: Iterable[str]) -> bool:
    return any(any("\udc80" <= char <= "\udcff" for char in cell) for cell in cells)


# --- JSON --------------------------------------------------------------------------------


def json_rows(items: Sequence[Any]) -> list[Row]:
    """The recipients of a JSON body, each named by its index (`line` is index + 1)."""
    return [_json_row(index, item) for index, item in enumerate(items)]


def _json_row(index: int, item: Any) -> Row:
    line = index + 1
    if not isinstance(item, Mapping):
        return Row(line, "", error='must be an object like {"phone": "+14155550123"}')
    written = item.get("phone")
    shown = written if isinstance(written, str) else ""
    unknown = sorted(str(key) for key in item if key not in ("phone", "variables", "id"))
    if unknown:
        return Row(line, shown, error=f"unknown field(s): {', '.join(unknown)}")
    if not isinstance(written, str):
        return Row(line, shown, error="phone: required, a string like +14155550123")
    number, error = _number(written.strip())
    if number is None:
        return Row(line, shown, error=f"phone: {error}")
    external_id = item.get("id")
    if external_id is not None and not (
        isinstance(external_id, str) and 1 <= len(external_id) <= MAX_ID_LENGTH
    ):
        return Row(line, shown, error=f"id: must be a string of 1 to {MAX_ID_LENGTH} characters")
    variables = item.get("variables")
    if variables is None:
        variables = {}
    if not isinstance(variables, Mapping):
        return Row(line, shown, error="variables: must be an object")
    if len(variables) > MAX_VARIABLES:
        return Row(line, shown, error=f"variables: at most {MAX_VARIABLES}")
    for name, value in variables.items():
        try:
            _dynamic_value(value)
        except ValueError as bad:
            return Row(line, shown, error=f"variables.{name}: {bad}")
    return Row(line, shown, number, dict(variables), external_id)


# --- the recipients of a campaign ---------------------------------------------------------


@dataclass(frozen=True)
class Skipped:
    """A row left out of the campaign, and why."""

    line: int
    phone: str
    error: str = ""
    duplicate_of: int | None = None  # the line of the number's first row

    def as_json(self, by: Literal["line", "index"]) -> dict[str, Any]:
        offset = 0 if by == "line" else 1
        error = self.error
        if self.duplicate_of is not None:
            error = f"duplicate of {by} {self.duplicate_of - offset}"
        return {by: self.line - offset, "phone": self.phone, "error": error}


@dataclass
class Intake:
    """What a campaign is made of: recipients to store (pending, or do_not_call), the
    rows skipped as invalid, and the duplicates skipped."""

    recipients: list[NewRecipient] = field(default_factory=list)
    invalid: list[Skipped] = field(default_factory=list)
    duplicates: list[Skipped] = field(default_factory=list)

    @property
    def callable(self) -> int:
        return sum(1 for recipient in self.recipients if recipient.state == "pending")

    @property
    def do_not_call(self) -> int:
        return sum(1 for recipient in self.recipients if recipient.state == "do_not_call")

    def summary(self, by: Literal["line", "index"]) -> dict[str, Any]:
        return {
            "recipients": len(self.recipients),
            "pending": self.callable,
            "do_not_call": self.do_not_call,
            "invalid": [item.as_json(by) for item in self.invalid],
            "duplicates": [item.as_json(by) for item in self.duplicates],
        }


async def intake(
    connection: AsyncConnection, rows: Iterable[Row], options: CampaignOptions, now: datetime
) -> Intake:
    """The recipients `rows` make under `options`, checked against the do-not-call list
    in `connection` as of now.

    Reading a number's time zones takes ~0.1 ms of CPU (phonenumbers): a 100,000-row
    campaign is read in a thread, so the server's event loop goes on answering calls."""
    result, zoned = await asyncio.to_thread(_zoned, list(rows), options, now)
    listed = await listed_among(connection, [row.number or "" for row, _ in zoned])
    for row, zones in zoned:
        number = row.number or ""
        reason = listed.get(number)
        result.recipients.append(
            NewRecipient(
                line=row.line,
                phone=number,
                variables=row.variables,
                external_id=row.external_id,
                time_zones=zones,
                state="do_not_call" if reason else "pending",
                error=reason,
            )
        )
    return result


def _zoned(
    rows: list[Row], options: CampaignOptions, now: datetime
) -> tuple[Intake, list[tuple[Row, tuple[str, ...]]]]:
    """The rows skipped (invalid, duplicate), and the others with their time zones."""
    result = Intake()
    first_line: dict[str, int] = {}
    zoned: list[tuple[Row, tuple[str, ...]]] = []
    reachable: dict[tuple[str, ...], str | None] = {}  # zones -> why never, or None
    start = options.starts_at(now)
    for row in rows:
        if row.number is None:
            result.invalid.append(Skipped(row.line, row.shown, row.error or "invalid"))
            continue
        if row.number in first_line:
            seen = first_line[row.number]
            result.duplicates.append(Skipped(row.line, row.shown, duplicate_of=seen))
            continue
        first_line[row.number] = row.line
        try:
            zones = hours.zones_for(row.number, options.timezone)
        except hours.NoTimeZone as none:
            result.invalid.append(Skipped(row.line, row.shown, str(none)))
            continue
        if zones not in reachable:
            reachable[zones] = _never_open(start, zones, options)
        never = reachable[zones]
        if never is not None:
            result.invalid.append(Skipped(row.line, row.shown, never))
            continue
        zoned.append((row, zones))
    return result, zoned


def _never_open(start: datetime, zones: tuple[str, ...], options: CampaignOptions) -> str | None:
    try:
        hours.next_opening(start, zones, options.calling_hours)
    except hours.NeverOpen as never:
        return str(never)
    return None
