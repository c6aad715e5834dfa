"""One reconciliation run: what the bridge missed, fetched and stored as if it had
arrived, in three steps (each in bridge.reconcile.candidates' order, oldest first):

1. `transcript`: a call with a conversation id and no transcript, `grace` after it
   ended: `GET /v1/convai/conversations/{id}`, stored through the post-call
   webhook's own path (bridge.calllog.post_call.from_conversation; one
   transcription per conversation, so a late webhook changes nothing);
2. `status`: a call with a Twilio call SID and no final status: Twilio's Call
   resource, stored like a status callback (`record_status(source="reconcile")`,
   never backwards);
3. `conversation`: the conversations of the agents in use since `since` that the
   call log does not know (`GET /v1/convai/conversations`, cursor paging): each
   fetched and stored the same way, matched to a call by its call SID when it has one.

A run is bounded (`Bounds`: wall time, list pages, requests per second) and
idempotent. An upstream fault (no answer, 5xx, 429) ends that upstream's part of
the run, leaving the rest for the next; an answer that does not complete a call (a
404, a conversation still in progress, a call still live) counts one attempt on it
(candidates.BACKOFF). What it recovered goes to the metrics and one logfmt line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from bridge.calllog.log_lines import logfmt
from bridge.calllog.post_call import from_conversation
from bridge.calllog.records import FINAL, CallRecords
from bridge.events.outbox import Outbox
from bridge.metrics import Metrics
from bridge.reconcile import candidates
from bridge.reconcile.candidates import Candidate, Window
from bridge.reconcile.conversations import Conversations
from bridge.reconcile.twilio_calls import TwilioCalls
from bridge.reconcile.upstream import Fault, Missing
from bridge.storage.database import Database

logger = logging.getLogger("bridge.reconcile")

KINDS = ("transcript", "status", "conversation")
# A conversation in one of these states is over; any other is looked at again later.
OVER = frozenset({"done", "failed"})
MARK_CHUNK = 500  # calls marked per statement


@dataclass(frozen=True, slots=True)
class Bounds:
    seconds: float = 120.0  # wall time of a run
    pages: int = 50  # conversation list pages, over all agents
    per_second: float = 10.0  # requests to the upstreams, together
    batch: int = 200  # calls read from the database at a time
    concurrency: int = 4  # calls being fetched and stored at once
    agents: int = 20  # agents whose conversations are listed
    unended: float = 600.0  # a call without an end: this long after its start (+ grace)


@dataclass(slots=True)
class Outcome:
    recovered: Counter[str] = field(default_factory=Counter)
    checked: int = 0  # calls and conversations looked at
    not_yet: int = 0  # looked at, not completed (an attempt counted)
    faults: int = 0  # upstream faults; what they stopped waits for the next run
    pages: int = 0
    requests: int = 0
    seconds: float = 0.0
    stopped: str | None = None  # "time", "pages" or "lease" when a bound ended the run
    down: set[str] = field(default_factory=set)  # upstreams not asked again this run
    # Calls looked at: completed by a step, or not (yet) by some step.
    done: set[str] = field(default_factory=set, repr=False)
    not_done: set[str] = field(default_factory=set, repr=False)

    @property
    def result(self) -> str:
        if self.faults:
            return "faults"
        return "bounded" if self.stopped else "complete"

    def fields(self) -> dict[str, object]:
        return {
            "event": "reconcile",
            "result": self.result,
            **{f"recovered_{kind}": self.recovered[kind] for kind in KINDS},
            "checked": self.checked,
            "not_yet": self.not_yet,
            "faults": self.faults,
            "pages": self.pages,
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "stopped": self.stopped,
        }


class Reconciler:
    """`conversations` or `twilio` None: that upstream is not configured and its steps
    are skipped. `also`: more work to do inside the same run and lease (e.g. retrying
    due recordings); each is awaited once per run, its failure logged."""

    def __init__(
        self,
        database: Database,
        *,
        conversations: Conversations | None,
        twilio: TwilioCalls | None,
        default_agent_id: str = "",
        bounds: Bounds | None = None,
        metrics: Metrics | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        also: Sequence[Callable[[], Awaitable[object]]] = (),
        events: Outbox | None = None,
    ) -> None:
        self.database = database
        self.conversations = conversations
        self.twilio = twilio
        self.default_agent_id = default_agent_id
        self.bounds = bounds or Bounds()
        self.metrics = metrics
        self.now = now
        self.also = list(also)
        self.records = CallRecords(database, now=now, events=events)

    async def run(
        self,
        *,
        since: timedelta,
        grace: float,
        keep_going: Callable[[], bool] = lambda: True,
        requests: Callable[[], int] = lambda: 0,
    ) -> Outcome:
        """One run. `keep_going` False stops it early (a lost lease); `requests` is
        how many upstream requests have been sent so far (for the log line)."""
        started, outcome = time.monotonic(), Outcome()
        deadline = started + self.bounds.seconds
        first_request = requests()
        now = self.now()
        window = Window(
            now=now,
            since=now - since,
            grace=timedelta(seconds=grace),
            unended=timedelta(seconds=self.bounds.unended if grace else 0),
        )

        def go_on() -> bool:
            if not keep_going():
                outcome.stopped = "lease"
            elif time.monotonic() >= deadline:
                outcome.stopped = "time"
            return outcome.stopped is None

        try:
            if self.conversations is not None:
                await self._transcripts(self.conversations, window, outcome, go_on)
            if self.twilio is not None and go_on():
                await self._statuses(self.twilio, window, outcome, go_on)
            if self.conversations is not None and "elevenlabs" not in outcome.down and go_on():
                await self._unknown(self.conversations, window, outcome, go_on)
            await self._mark(outcome)
            for work in self.also:
                if not go_on():
                    break
                try:
                    await work()
                except Exception:
                    logger.exception("event=reconcile_step_failed step=%r", work)
        finally:
            outcome.seconds = time.monotonic() - started
            outcome.requests = requests() - first_request
            if self.metrics is not None:
                for kind, count in outcome.recovered.items():
                    self.metrics.reconcile_recovered.labels(kind).inc(count)
        level = logging.WARNING if outcome.faults else logging.INFO
        logger.log(level, logfmt(outcome.fields()))
        if self.metrics is not None:
            self.metrics.reconcile_runs.labels(outcome.result).inc()
        return outcome

    async def _transcripts(
        self,
        conversations: Conversations,
        window: Window,
        outcome: Outcome,
        go_on: Callable[[], bool],
    ) -> None:
        where = candidates.missing_transcript(window)

        async def fetch(call: Candidate) -> bool:
            assert call.conversation_id is not None
            return await self._fetch_conversation(
                conversations, call.conversation_id, "transcript", outcome
            )

        async for batch in candidates.batches(self.database, where, size=self.bounds.batch):
            fault = await self._each(batch, fetch, outcome, go_on)
            if fault is not None:
                self._fault("elevenlabs", fault, outcome)
                return
            if outcome.stopped:
                return

    async def _statuses(
        self, twilio: TwilioCalls, window: Window, outcome: Outcome, go_on: Callable[[], bool]
    ) -> None:
        where = candidates.not_final(window)

        async def fetch(call: Candidate) -> bool:
            return await self._fetch_call(twilio, call, outcome)

        async for batch in candidates.batches(self.database, where, size=self.bounds.batch):
            fault = await self._each(batch, fetch, outcome, go_on)
            if fault is not None:
                self._fault("twilio", fault, outcome)
                return
            if outcome.stopped:
                return

    async def _each(
        self,
        batch: list[Candidate],
        work: Callable[[Candidate], Awaitable[bool]],
        outcome: Outcome,
        go_on: Callable[[], bool],
    ) -> Fault | None:
        """`work` on each call of the batch, `Bounds.concurrency` at a time (the pacer
        still bounds the rate); the first upstream fault ends it and is returned."""
        calls = iter(batch)
        faults: list[Fault] = []

        async def worker() -> None:
            for call in calls:
                if faults or not go_on():
                    return
                outcome.checked += 1
                try:
                    complete = await work(call)
                except Fault as fault:
                    faults.append(fault)
                    return
                (outcome.done if complete else outcome.not_done).add(call.id)

        async with asyncio.TaskGroup() as group:
            for _ in range(max(1, self.bounds.concurrency)):
                group.create_task(worker())
        return faults[0] if faults else None

    async def _unknown(
        self,
        conversations: Conversations,
        window: Window,
        outcome: Outcome,
        go_on: Callable[[], bool],
    ) -> None:
        agents = await candidates.agents_in_use(
            self.database, window.since, default=self.default_agent_id, limit=self.bounds.agents
        )
        after = int(window.since.timestamp())
        try:
            for agent_id in agents:
                cursor: str | None = None
                while go_on():
                    if outcome.pages >= self.bounds.pages:
                        outcome.stopped = "pages"
                        return
                    page = await conversations.page(agent_id, after_unix=after, cursor=cursor)
                    outcome.pages += 1
                    over = [
                        str(item["conversation_id"])
                        for item in page.conversations
                        if item.get("status") in OVER
                        and isinstance(item.get("conversation_id"), str)
                        and item["conversation_id"]
                    ]
                    seen = await candidates.known(self.database, over)
                    for conversation_id in over:
                        if conversation_id in seen or not go_on():
                            continue
                        outcome.checked += 1
                        if not await self._fetch_conversation(
                            conversations, conversation_id, "conversation", outcome
                        ):
                            outcome.not_yet += 1
                    if page.next_cursor is None:
                        break
                    cursor = page.next_cursor
        except Fault as fault:
            self._fault("elevenlabs", fault, outcome)

    async def _fetch_conversation(
        self, conversations: Conversations, conversation_id: str, kind: str, outcome: Outcome
    ) -> bool:
        """Fetch and store one conversation; True when it is over and stored."""
        try:
            conversation = await conversations.get(conversation_id)
        except Missing:
            return False
        if conversation.get("status") not in OVER:
            return False
        conversation.setdefault("conversation_id", conversation_id)
        stored = await from_conversation(conversation).store(self.records)
        if not stored.duplicate:
            outcome.recovered[kind] += 1
        return True

    async def _fetch_call(self, twilio: TwilioCalls, call: Candidate, outcome: Outcome) -> bool:
        """Fetch Twilio's record of the call and store its status; True when final."""
        assert call.call_sid is not None
        try:
            resource = await twilio.fetch(call.call_sid)
        except Missing:
            return False
        status = resource.get("status")
        if not isinstance(status, str) or not status:
            return False
        fresh = await self.records.record_status(
            _status_form(call.call_sid, resource),
            source="reconcile",
            ended_at=_twilio_time(resource.get("end_time")),
        )
        if status not in FINAL:
            return False
        if fresh:
            outcome.recovered["status"] += 1
        return True

    async def _mark(self, outcome: Outcome) -> None:
        """One attempt per call and run, whichever steps looked at it: a call another
        step still has to complete is not done."""
        not_done = sorted(outcome.not_done)
        done = sorted(outcome.done - outcome.not_done)
        outcome.not_yet += len(not_done)
        for start in range(0, max(len(done), len(not_done)), MARK_CHUNK):
            await self.records.record_reconciled(done[start : start + MARK_CHUNK], done=True)
            await self.records.record_reconciled(not_done[start : start + MARK_CHUNK], done=False)

    def _fault(self, upstream: str, fault: Fault, outcome: Outcome) -> None:
        outcome.faults += 1
        outcome.down.add(upstream)
        logger.warning(
            logfmt(
                {
                    "event": "reconcile_upstream_fault",
                    "upstream": upstream,
                    "status": fault.status,
                    "error": str(fault),
                }
            )
        )


def _status_form(call_sid: str, resource: dict[str, Any]) -> dict[str, str]:
    """A Call resource as the status callback form it stands in for."""
    form = {
        "CallSid": call_sid,
        "CallStatus": str(resource["status"]),
        "CallDuration": _text(resource.get("duration")),
        "From": _text(resource.get("from")),
        "To": _text(resource.get("to")),
        "Direction": "inbound" if resource.get("direction") == "inbound" else "outbound-api",
        "AnsweredBy": _text(resource.get("answered_by")),
    }
    return {key: value for key, value in form.items() if value}


def _text(value: object) -> str:
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""


def _twilio_time(value: object) -> datetime | None:
    """Twilio's RFC 2822 times (`Wed, 02 Dec 2026 09:00:00 +0000`)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
