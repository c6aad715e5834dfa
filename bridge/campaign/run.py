"""The run: which rows to dial, paced starts, calls in flight, Ctrl-C, and the report."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from bridge.campaign.client import Answer, idempotency_key, post_call
from bridge.campaign.contacts import Contact, Contacts
from bridge.campaign.ledger import Result, ResultsFile, Status
from bridge.campaign.progress import Progress

# Answers that would be the same for every row (bad token, API disabled, wrong URL,
# mode not configured): the campaign stops instead of failing each row in turn.
STOP_STATUSES = frozenset({401, 404, 405, 503})
INTERRUPTED = "not dialled: the campaign was interrupted"
# The bridge's 409: a request with this row's key (another run of the campaign, here or on
# another machine) is being worked on. Whether that call is placed is not known yet.
IN_PROGRESS = "in progress elsewhere"


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
        elsewhere = any(result.error.startswith(IN_PROGRESS) for result in self.results)
        return 1 if self.stopped or self.count("failed") or elsewhere else 0


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
        """The whole campaign, holding the results file (ResultsBusy when another run has
        it) from reading the ledger to rewriting it."""
        self.results.lock()
        try:
            return await self._run()
        finally:
            self.results.unlock()

    async def _run(self) -> Report:
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
                self.progress.counts["skipped"] += 1  # counted, not listed one by one
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
            self.progress.note(f"interrupted: no new calls; waiting for {running} in flight")
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
        # A replay is a call an earlier run placed (its answer was lost or not written down).
        self._settle(
            self._result(contact, answer), earlier=answer.placed is True and answer.replayed
        )
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
        if answer.status == 409:
            # Not a failure: another run holds the key; a later run gets its outcome.
            return Result(
                contact.row,
                contact.number,
                "skipped",
                error=f"{IN_PROGRESS}: {error} (another run or request holds this number's "
                "key: not dialled here; run again to record its outcome, it will not be "
                "dialled twice)",
            )
        if answer.status == 422 and "Idempotency-Key" in error:
            error += (
                f" (this number was called in campaign {self.options.campaign!r} with other "
                "details: not dialled again)"
            )
        if answer.placed is None:
            error += (
                " (the call may have been placed: re-run to find out, it will not be dialled twice)"
            )
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
        if result.status != "placed":
            self.progress.note(
                f"{self.contacts.path}:{result.row}: {result.status}: {result.error}"
            )
