"""`bridge campaign`: one outbound call per row of a CSV file, paced and safe to re-run.

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
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import math
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TextIO

import httpx

Status = Literal["placed", "failed", "invalid", "skipped"]
RESULT_COLUMNS = ("row", "number", "status", "call_sid", "conversation_id", "error")
PHONE_COLUMN = "phone"
E164 = re.compile(r"^\+[1-9]\d{7,14}$")
# Answers that would be the same for every row (bad token, API disabled, wrong URL,
# mode not configured): the campaign stops instead of failing each row in turn.
STOP_STATUSES = frozenset({401, 404, 405, 503})
INTERRUPTED = "not dialled: the campaign was interrupted"


class CampaignError(Exception):
    """The campaign cannot start: unreadable file, no `phone` column, foreign results file."""


@dataclass(frozen=True)
class Contact:
    row: int
    number: str
    variables: dict[str, str]


@dataclass(frozen=True)
class Result:
    row: int
    number: str
    status: Status
    call_sid: str = ""
    conversation_id: str = ""
    error: str = ""

    def cells(self) -> list[str]:
        return [
            str(self.row),
            self.number,
            self.status,
            self.call_sid,
            self.conversation_id,
            self.error,
        ]


@dataclass
class Contacts:
    path: Path
    contacts: list[Contact] = field(default_factory=list)
    invalid: list[Result] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.contacts) + len(self.invalid)


# --- reading the contacts file -------------------------------------------------------------


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
    contacts = Contacts(path)
    for line, record in records:
        if isinstance(record, str):
            contacts.invalid.append(Result(line, "", "invalid", error=record))
            continue
        if not any(cell.strip() for cell in record):
            continue  # a blank row
        item = _contact(line, record, names, phone_index)
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
    if len(matches) != 1:
        found = ", ".join(named) or "none"
        problem = "no" if not matches else "more than one"
        raise CampaignError(
            f"{path}: {problem} '{PHONE_COLUMN}' column in the header (columns: {found}); "
            f"the '{PHONE_COLUMN}' column holds each row's number in E.164, like +14155550123"
        )
    return matches[0]


def _contact(line: int, record: list[str], names: list[str], phone: int) -> Contact | Result:
    number = record[phone].strip() if phone < len(record) else ""
    shown = number.encode("utf-8", "backslashreplace").decode()

    def invalid(error: str) -> Result:
        return Result(line, shown, "invalid", error=error)

    if _has_surrogates(record):
        return invalid("not UTF-8 text")
    extra = record[len(names) :]
    if any(cell.strip() for cell in extra):
        return invalid(f"{len(record)} fields, but the header has {len(names)}")
    if not number:
        return invalid("no phone number")
    if not E164.fullmatch(number):
        return invalid(f"phone {number!r} is not an E.164 number like +14155550123")
    variables = {
        name: cell.strip()
        for index, (name, cell) in enumerate(zip(names, record, strict=False))
        if name and index != phone and cell.strip()
    }
    return Contact(line, number, variables)


def _has_surrogates(cells: Iterable[str]) -> bool:
    return any(any("\udc80" <= char <= "\udcff" for char in cell) for cell in cells)


# --- the results file ----------------------------------------------------------------------


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
                f"{self.path}: exists and is not a results file of `bridge campaign` "
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


# --- placing one call through the bridge's API ---------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What `POST /calls` answered. `placed` is None when nobody can tell."""

    status: int | None
    body: dict[str, Any]
    placed: bool | None
    error: str = ""
    replayed: bool = False


async def post_call(
    client: httpx.AsyncClient, body: Mapping[str, Any], *, idempotency_key: str | None = None
) -> Answer:
    headers = {"idempotency-key": idempotency_key} if idempotency_key else {}
    try:
        response = await client.post("/calls", json=dict(body), headers=headers)
    except httpx.TransportError as exc:
        never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
        detail = str(exc) or type(exc).__name__
        return Answer(
            None, {}, placed=False if never_sent else None, error=f"cannot reach the bridge: {detail}"
        )
    try:
        data = response.json()
    except ValueError:
        data = None
    replayed = response.headers.get("idempotent-replayed") == "true"
    status = response.status_code
    if not isinstance(data, dict):
        # Not the bridge's answer: a proxy's error page. Past the proxy, who knows.
        text = " ".join(response.text.split())[:200]
        return Answer(
            status, {}, placed=None if status >= 500 else False, error=f"HTTP {status}: {text}"
        )
    if status == 201:
        return Answer(status, data, placed=True, replayed=replayed)
    message = data.get("error") if isinstance(data.get("error"), str) else response.text[:200]
    placed = None if data.get("placed") == "unknown" else False
    return Answer(status, data, placed=placed, error=f"HTTP {status}: {message}", replayed=replayed)


def idempotency_key(campaign: str, number: str) -> str:
    digest = hashlib.sha256(f"{campaign}\n{number}".encode()).hexdigest()
    return f"campaign-{digest[:40]}"


# --- progress on stderr --------------------------------------------------------------------


class Progress:
    """One status line: rewritten in place on a terminal, printed every few seconds elsewhere."""

    def __init__(
        self,
        total: int,
        stream: TextIO | None = None,
        *,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        every: float = 5.0,
    ) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.clock = clock
        self.every = every
        self.counts: Counter[str] = Counter()
        self.earlier = 0
        self.in_flight = 0
        self._shown_at: float | None = None

    def line(self) -> str:
        done = sum(self.counts.values())
        placed = f"{self.counts['placed']} placed"
        if self.earlier:
            placed += f" ({self.earlier} before this run)"
        return (
            f"{done}/{self.total} rows: {placed}, {self.counts['failed']} failed, "
            f"{self.counts['invalid']} invalid, {self.counts['skipped']} skipped, "
            f"{self.in_flight} in flight"
        )

    def record(self, result: Result, *, earlier: bool = False) -> None:
        self.counts[result.status] += 1
        self.earlier += earlier
        self.show()

    def note(self, text: str) -> None:
        """A message on a line of its own, above the status line."""
        if self.tty and self._shown_at is not None:
            self.stream.write("\r\x1b[K")
        self.stream.write(text + "\n")
        if self.tty and self._shown_at is not None:
            self.show(force=True)
        self.stream.flush()

    def show(self, *, force: bool = False) -> None:
        now = self.clock()
        if self.tty:
            self.stream.write(f"\r\x1b[K{self.line()}")
        elif force or self._shown_at is None or now - self._shown_at >= self.every:
            self.stream.write(self.line() + "\n")
        else:
            return
        self._shown_at = now
        self.stream.flush()

    def finish(self) -> None:
        if self.tty:
            self.stream.write(f"\r\x1b[K{self.line()}\n")
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()


# --- the run -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    campaign: str
    rate: float = 1.0
    max_in_flight: int = 5
    call: Mapping[str, Any] = field(default_factory=dict)  # agent_id, mode, ... for every row

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise ValueError("rate must be a positive number of calls per second")
        if self.max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")


@dataclass
class Report:
    results: list[Result]  # one per row of the contacts file, in file order
    interrupted: bool = False
    stopped: str = ""  # why the campaign stopped launching calls early

    def count(self, status: Status) -> int:
        return sum(result.status == status for result in self.results)

    @property
    def exit_code(self) -> int:
        """130 interrupted; 0 when every valid row is placed (or a duplicate); else 1."""
        if self.interrupted:
            return 130
        return 1 if self.stopped or self.count("failed") else 0


def plan(contacts: Contacts, placed: Mapping[str, Result]) -> tuple[list[Contact], list[Result]]:
    """(rows to dial, rows settled without a call: duplicates and ones placed before)."""
    to_dial: list[Contact] = []
    settled: list[Result] = []
    first_row: dict[str, int] = {}
    for contact in contacts.contacts:
        if contact.number in first_row:
            error = f"duplicate of row {first_row[contact.number]}"
            settled.append(Result(contact.row, contact.number, "skipped", error=error))
            continue
        first_row[contact.number] = contact.row
        earlier = placed.get(contact.number)
        if earlier is not None:
            settled.append(replace(earlier, row=contact.row))
        else:
            to_dial.append(contact)
    return to_dial, settled


class Pacer:
    """Starts are at least 1/rate seconds apart; time lost waiting is not made up in a burst."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self.interval = 1.0 / rate
        self.clock = clock
        self.sleep = sleep
        self.last: float | None = None

    async def wait(self) -> None:
        now = self.clock()
        if self.last is not None:
            due = self.last + self.interval
            if due > now:
                await self.sleep(due - now)
            now = max(self.clock(), due)
        self.last = now


class Campaign:
    def __init__(
        self,
        contacts: Contacts,
        client: httpx.AsyncClient,
        results: ResultsFile,
        options: Options,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        progress: Progress | None = None,
    ) -> None:
        self.contacts = contacts
        self.client = client
        self.results = results
        self.options = options
        self.pacer = Pacer(options.rate, clock, sleep)
        self.progress = progress or Progress(contacts.total, clock=clock)
        self.outcomes: dict[int, Result] = {}
        self.stopped = ""

    async def run(self) -> Report:
        placed_before = self.results.placed()
        to_dial, settled = plan(self.contacts, placed_before)
        self.results.open()
        try:
            for result in sorted([*self.contacts.invalid, *settled], key=lambda r: r.row):
                self._settle(result, earlier=result.status == "placed")
            interrupted = await self._dial_all(to_dial)
        finally:
            self.results.close()
        reason = INTERRUPTED if interrupted else f"not dialled: {self.stopped}"
        for contact in to_dial:
            if contact.row not in self.outcomes:
                self.outcomes[contact.row] = Result(
                    contact.row, contact.number, "skipped", error=reason
                )
        report = Report(
            sorted(self.outcomes.values(), key=lambda r: r.row), interrupted, self.stopped
        )
        numbers = {contact.number for contact in self.contacts.contacts}
        kept = [result for result in placed_before.values() if result.number not in numbers]
        self.results.rewrite([*report.results, *kept])
        self.progress.finish()
        return report

    async def _dial_all(self, to_dial: list[Contact]) -> bool:
        """Dial every row; on cancellation (Ctrl-C) stop launching and wait for calls in
        flight. True when interrupted."""
        slots = asyncio.Semaphore(self.options.max_in_flight)
        tasks: set[asyncio.Task[None]] = set()
        try:
            for contact in to_dial:
                await slots.acquire()
                if not self.stopped:
                    await self.pacer.wait()
                if self.stopped:
                    break
                tasks.add(asyncio.create_task(self._dial(contact, slots)))
            if tasks:
                await asyncio.wait(tasks)
            return False
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            running = sum(not task.done() for task in tasks)
            self.progress.note(
                f"interrupted: no new calls; waiting for {running} in flight "
                "(Ctrl-C again to stop at once)"
            )
            if tasks:
                await asyncio.wait(tasks)  # unlike gather, leaves the calls running
            return True

    async def _dial(self, contact: Contact, slots: asyncio.Semaphore) -> None:
        self.progress.in_flight += 1
        try:
            body = {"to": contact.number, **self.options.call}
            if contact.variables:
                body["dynamic_variables"] = contact.variables
            key = idempotency_key(self.options.campaign, contact.number)
            try:
                answer = await post_call(self.client, body, idempotency_key=key)
            except Exception as exc:  # a bug must cost one row, not the campaign
                answer = Answer(None, {}, placed=None, error=f"unexpected error: {exc!r}")
        finally:
            self.progress.in_flight -= 1
            slots.release()
        self._settle(self._result(contact, answer))
        if not answer.placed and self._stops_campaign(answer) and not self.stopped:
            self.stopped = f"the bridge refused ({answer.error})"
            self.progress.note(f"stopping: {self.stopped}")

    def _result(self, contact: Contact, answer: Answer) -> Result:
        if answer.placed:
            body = answer.body
            return Result(
                contact.row,
                contact.number,
                "placed",
                call_sid=str(body.get("call_sid") or body.get("sip_call_id") or ""),
                conversation_id=str(body.get("conversation_id") or ""),
            )
        error = answer.error
        if answer.placed is None:
            error += " (the call may have been placed: re-run to find out, it will not be dialled twice)"
        return Result(contact.row, contact.number, "failed", error=error)

    @staticmethod
    def _stops_campaign(answer: Answer) -> bool:
        if answer.status is None:
            return answer.placed is False  # could not connect at all
        return answer.status in STOP_STATUSES and not answer.replayed

    def _settle(self, result: Result, *, earlier: bool = False) -> None:
        self.outcomes[result.row] = result
        self.results.append(result)
        self.progress.record(result, earlier=earlier)
        if result.status in ("invalid", "failed") or (
            result.status == "skipped" and not earlier
        ):
            self.progress.note(f"{self.contacts.path}:{result.row}: {result.status}: {result.error}")
