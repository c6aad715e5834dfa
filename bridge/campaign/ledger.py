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

One run at a time uses a results file: a run holds a lock on `.NAME.lock` beside it
(an OS lock, released when the process ends however it ends; the empty file stays)
from reading the ledger to rewriting it, and a second run is refused. Otherwise the
run that finished last would rewrite the ledger without the other's outcomes.
"""

from __future__ import annotations

import csv
import io
import os
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TextIO

from bridge import phone
from bridge.campaign.errors import CampaignError, ResultsBusy

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
        self._lock: int | None = None  # the lock file's descriptor, while held
        self._holds = 0

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(f".{self.path.name}.lock")

    def lock(self) -> None:
        """Take the results file for this run, or raise ResultsBusy when another run has
        it. Taken again by the same object, it is held until unlocked as many times."""
        if self._lock is not None:
            self._holds += 1
            return
        try:
            # Not through a link someone planted: the pid written below would land there.
            flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
            descriptor = os.open(self.lock_path, flags, 0o644)
        except OSError as exc:
            raise CampaignError(f"{self.path}: cannot write: {exc.strerror or exc}") from None
        if not _try_lock(descriptor):
            holder = _holder(descriptor)
            os.close(descriptor)
            process = f" (process {holder})" if holder else ""
            raise ResultsBusy(
                f"{self.path}: another `callbridge campaign`{process} is using this results "
                "file; wait for it to finish, then run again (rows it placed are not dialled "
                "twice)"
            )
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()}\n".encode())
        self._lock, self._holds = descriptor, 1

    def unlock(self) -> None:
        self._holds -= 1
        if self._holds == 0 and self._lock is not None:
            os.close(self._lock)  # closing releases the lock
            self._lock = None

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
        """Replace the journal with one line per row, atomically (through a new file of
        this run's own: never one another process made, nor a link it planted)."""
        self.close()
        descriptor, name = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
        )
        try:
            with open(descriptor, "w", encoding="utf-8", newline="") as out:
                writer = csv.writer(out, lineterminator="\n")
                writer.writerow(RESULT_COLUMNS)
                writer.writerows(result.cells() for result in results)
            # mkstemp's file is private (0600): give it the journal's mode, as before.
            mode = self.path.stat().st_mode & 0o777 if self.path.exists() else 0o644
            os.chmod(name, mode)
            os.replace(name, self.path)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise

    def _write(self, rows: list[list[str]]) -> None:
        assert self._journal is not None
        csv.writer(self._journal, lineterminator="\n").writerows(rows)
        self._journal.flush()


def _try_lock(descriptor: int) -> bool:
    """An exclusive lock on the open file, if nobody else holds one."""
    if sys.platform == "win32":
        import msvcrt

        try:
            msvcrt.locking(descriptor, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holder(descriptor: int) -> str:
    """The process id the run holding the lock wrote into the lock file, if readable."""
    try:
        text = os.pread(descriptor, 32, 0).decode("ascii", "replace").strip()
    except (OSError, AttributeError):
        return ""
    return text if text.isdigit() else ""
