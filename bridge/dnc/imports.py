"""Reading a do-not-call CSV file: a `number` (or `phone`) column, an optional `reason`
column; or no header at all, one number a line (what most DNC exports are).

Rows are named by the line they start on (the header is line 1). Bad rows are
reported with their line and skipped; blank rows are ignored. Numbers are written as
people write them: spaces, dashes, dots and parentheses are dropped.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bridge.dnc.entries import BadNumber, normalized

NUMBER_COLUMNS = ("number", "phone")
REASON_COLUMN = "reason"


class BadFile(ValueError):
    """The file as a whole cannot be read (no number column, not CSV at all)."""


@dataclass
class Parsed:
    # (line, number, reason) of every good row, in file order.
    rows: list[tuple[int, str, str | None]] = field(default_factory=list)
    # {"line", "number" (as written), "problem"} of every row skipped.
    problems: list[dict[str, Any]] = field(default_factory=list)


def parse(data: bytes) -> Parsed:
    """The rows of a DNC CSV file. Raises BadFile when it has no usable header."""
    text = data.decode("utf-8-sig", errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records = _records(reader)
    first = next(records, None)
    if first is None:
        raise BadFile("the file is empty (expected a header with a 'number' column)")
    line, header = first
    parsed = Parsed()
    if isinstance(header, str):
        raise BadFile(f"line {line}: the header is {header}")
    names = [name.strip().lower() for name in header]
    number_at = [index for index, name in enumerate(names) if name in NUMBER_COLUMNS]
    if not number_at:
        if len([cell for cell in header if cell.strip()]) == 1 and _is_number(header[0]):
            # No header: one number a line.
            number_index, reason_index = 0, None
            _row(parsed, line, header, number_index, reason_index)
        else:
            found = ", ".join(name for name in names if name) or "none"
            raise BadFile(
                f"no 'number' (or 'phone') column in the header (columns: {found}); "
                "give one number a line, with a header such as number,reason"
            )
    elif len(number_at) > 1:
        raise BadFile("more than one 'number' or 'phone' column in the header")
    else:
        number_index = number_at[0]
        reason_index = names.index(REASON_COLUMN) if REASON_COLUMN in names else None
    for line, record in records:
        if isinstance(record, str):
            parsed.problems.append({"line": line, "number": "", "problem": record})
            continue
        if not any(cell.strip() for cell in record):
            continue
        _row(parsed, line, record, number_index, reason_index)
    return parsed


def _row(
    parsed: Parsed, line: int, record: list[str], number_index: int, reason_index: int | None
) -> None:
    written = record[number_index].strip() if number_index < len(record) else ""
    shown = written.encode("utf-8", "backslashreplace").decode()

    def problem(text: str) -> None:
        parsed.problems.append({"line": line, "number": shown, "problem": text})

    if any(any("\udc80" <= char <= "\udcff" for char in cell) for cell in record):
        problem("not UTF-8 text")
        return
    try:
        number = normalized(written)
    except BadNumber as bad:
        problem(str(bad))
        return
    reason = None
    if reason_index is not None and reason_index < len(record):
        reason = record[reason_index].strip() or None
    parsed.rows.append((line, number, reason))


def _is_number(cell: str) -> bool:
    try:
        normalized(cell)
    except BadNumber:
        return False
    return True


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
