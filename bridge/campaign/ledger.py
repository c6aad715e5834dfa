"""The results file, the campaign's ledger: one outcome per row of the contacts file.

Outcomes are appended as they happen, so a crash loses none that were known, and the
file is rewritten in row order at the end. Numbers it lists as `placed` are not
dialled again by a later run.

The file is meant to be opened in a spreadsheet, and a cell that starts with `=`, `+`,
`-` or `@` (or a tab or CR before one) is a formula there: an invalid phone cell copied
from the contacts file, like `=HYPERLINK(...)`, would run. Such cells are written with
a leading `'`, which spreadsheets show as text. A valid E.164 number is the exception:
it starts with `+` but holds only digits after it, which no spreadsheet can turn into
a function call, and it is the ledger's key for the numbers placed, so it is kept
exactly as dialled.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TextIO

from bridge import phone
from bridge.campaign.errors import CampaignError

Status = Literal["placed", "failed", "invalid", "skipped"]
RESULT_COLUMNS = ("row", "number", "status", "call_sid", "conversation_id", "error")
# What a spreadsheet reads as the start of a formula (full-width forms included, which
# some accept as well), and the whitespace it may skip before one.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


@dataclass(frozen=True)
class Result:
    row: int
    number: str
    status: Status
    call_sid: str = ""
    conversation_id: str = ""
    error: str = ""

    def cells(self) -> list[str]:
        """The row as written: cells a spreadsheet would run as formulas made text."""
        return [
            as_text(cell)
            for cell in (
                str(self.row),
                self.number,
                self.status,
                self.call_sid,
                self.conversation_id,
                self.error,
            )
        ]


def as_text(cell: str) -> str:
    """`cell`, with a leading `'` when a spreadsheet would take it for a formula; a valid
    E.164 number (`+` and digits, nothing to evaluate) is left as it is."""
    if cell.startswith(FORMULA_STARTS) and not phone.E164.fullmatch(cell):
        return "'" + cell
    return cell


def default_results_path(contacts: Path) -> Path:
    return contacts.with_name(f"{contacts.stem}.results.csv")


class ResultsFile:
    """The ledger: read what earlier runs placed, append outcomes, rewrite at the end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._journal: TextIO | None = None

    def placed(self) -> dict[str, Result]:
        """The `placed` rows of earlier runs, by number (the last one wins)."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise CampaignError(f"{self.path}: cannot read: {exc.strerror or exc}") from None
        rows = csv.reader(io.StringIO(text, newline=""))
        header = next(rows, None)
        if header is None:
            return {}
        if tuple(header) != RESULT_COLUMNS:
            raise CampaignError(
                f"{self.path}: exists and is not a results file of `callbridge campaign` "
                f"(expected the header {','.join(RESULT_COLUMNS)}); not overwriting it"
            )
        placed: dict[str, Result] = {}
        for cells in rows:
            # A line cut short by a crash is ignored: its row is simply tried again.
            if len(cells) != len(RESULT_COLUMNS) or cells[2] != "placed":
                continue
            row, number, _, call_sid, conversation_id, error = cells
            placed[number] = Result(
                int(row) if row.isdigit() else 0, number, "placed", call_sid, conversation_id, error
            )
        return placed

    def open(self) -> None:
        exists = self.path.exists() and self.path.stat().st_size > 0
        if exists:
            with self.path.open("rb") as existing:
                existing.seek(-1, os.SEEK_END)
                ends_cleanly = existing.read(1) in (b"\n", b"\r")
        try:
            self._journal = self.path.open("a", encoding="utf-8", newline="")
        except OSError as exc:
            raise CampaignError(f"{self.path}: cannot write: {exc.strerror or exc}") from None
        if not exists:
            self._write([list(RESULT_COLUMNS)])
        elif not ends_cleanly:
            self._journal.write("\n")

    def append(self, result: Result) -> None:
        if self._journal is not None:
            self._write([result.cells()])

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    def rewrite(self, results: Iterable[Result]) -> None:
        """Replace the journal with one line per row, atomically."""
        self.close()
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        with temporary.open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(RESULT_COLUMNS)
            writer.writerows(result.cells() for result in results)
        os.replace(temporary, self.path)

    def _write(self, rows: list[list[str]]) -> None:
        assert self._journal is not None
        csv.writer(self._journal, lineterminator="\n").writerows(rows)
        self._journal.flush()
