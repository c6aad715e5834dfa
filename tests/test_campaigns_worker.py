"""bridge.campaigns.worker: claims, pace, in-flight and capacity limits, calling hours,
retries by outcome, the do-not-call list at claim time, lease takeover with the same
Idempotency-Key, and finishing, against the fake Twilio, with a clock the test moves."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update

from bridge.calllog.records import CallRecords
from bridge.campaigns import hours
from bridge.campaigns.assembly import worker_for
from bridge.campaigns.claims import JITTER, slot_interval
from bridge.campaigns.options import CampaignOptions
from bridge.campaigns.pacing import PacedTwilio
from bridge.campaigns.settle import NO_FINAL_STATUS, STALE_AFTER
from bridge.campaigns.store import NewRecipient, create_campaign
from bridge.campaigns.worker import PLACEMENT_UNKNOWN, CampaignWorker
from bridge.events.outbox import Outbox
from bridge.metrics import Metrics
from bridge.outbound.dialer import Dialer
from bridge.outbound.sealing import Sealer
from bridge.secret import Secret
from bridge.settings import Settings
from bridge.storage.database import Database
from bridge.storage.tables import (
    call_events,
    calls,
    campaign_attempts,
    campaign_recipients,
    campaigns,
    do_not_call,
    event_deliveries,
    event_outbox,
    idempotency_keys,
    pending_calls,
)
from tests.helpers import ACCOUNT_SID, API_TOKEN, OUR_NUMBER, Upstreams, make_settings

# A Wednesday: 10:00 in New York, 15:00 in London, 02:00 (Thursday) in Sydney.
START = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
NEW_YORK = [f"+1212555{n:04d}" for n in range(100, 160)]
LONDON = "+442079460123"
SYDNEY = "+61255501234"
RECEIVER = "https://receiver.example/events"


class Clock:
    def __init__(self, at: datetime = START) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        # Dialling at a pace slot moves the clock there, as a real wait would.
        self.advance(seconds)


@dataclass
class Bench:
    """A database, the fakes, and workers placing calls through them."""

    settings: Settings
    database: Database
    upstreams: Upstreams
    clock: Clock
    events: Outbox
    # One loop for the whole test: PostgreSQL connections belong to the loop they were made in.
    loop: asyncio.AbstractEventLoop = dataclasses.field(default_factory=asyncio.new_event_loop)

    def worker(self, name: str = "w1", **changes: Any) -> CampaignWorker:
        dialer = Dialer(
            settings=self.settings,
            database=self.database,
            elevenlabs=None,
            twilio=_twilio(self.settings, self.upstreams),
            sealer=Sealer(API_TOKEN),
            now=self.clock,
        )
        worker = worker_for(
            self.settings,
            database=self.database,
            dialer=dialer,
            records=CallRecords(self.database, now=self.clock),
            metrics=Metrics(),
            events=self.events,
            lease=changes.pop("lease", timedelta(seconds=30)),
        )
        worker.worker_id = name
        worker.ready = 0.0  # slots from now on, so the tests can name them
        worker.now = self.clock
        worker.sleep = self.clock.sleep
        worker.placement.keys.now = self.clock
        for key, value in changes.items():
            setattr(worker, key, value)
        return worker

    def run(self, work: Any) -> Any:
        return self.loop.run_until_complete(work)

    def campaign(self, numbers: list[str], **options: Any) -> str:
        parsed = CampaignOptions.model_validate(options)
        recipients = [
            NewRecipient(
                line=index + 2,
                phone=number,
                variables={"name": f"n{index}"},
                time_zones=hours.zones_for(number, parsed.timezone),
            )
            for index, number in enumerate(numbers)
        ]

        async def create() -> str:
            engine = await self.database.engine()
            async with engine.begin() as connection:
                return await create_campaign(
                    connection,
                    name="reminders",
                    agent_id="agent_c",
                    options=parsed,
                    recipients=recipients,
                    now=self.clock(),
                )

        campaign_id: str = self.run(create())
        return campaign_id

    def rows(self, query: Any) -> list[Any]:
        async def read() -> list[Any]:
            engine = await self.database.engine()
            async with engine.connect() as connection:
                return list((await connection.execute(query)).all())

        rows: list[Any] = self.run(read())
        return rows

    def execute(self, statement: Any) -> None:
        async def write() -> None:
            engine = await self.database.engine()
            async with engine.begin() as connection:
                await connection.execute(statement)

        self.run(write())

    def recipients(self, campaign_id: str) -> list[Any]:
        return self.rows(
            select(campaign_recipients)
            .where(campaign_recipients.c.campaign_id == campaign_id)
            .order_by(campaign_recipients.c.id)
        )

    def states(self, campaign_id: str) -> list[str]:
        return [row.state for row in self.recipients(campaign_id)]

    def end_calls(self, status: str = "completed", answered_by: str | None = None) -> int:
        """Twilio's final status callback for every call placed and not ended yet."""
        records = CallRecords(self.database, now=self.clock)
        ended = 0
        for row in self.rows(select(calls.c.call_sid).where(calls.c.status_rank < 4)):
            form = {"CallSid": row.call_sid, "CallStatus": status, "SequenceNumber": "3"}
            if answered_by:
                form["AnsweredBy"] = answered_by
            self.run(records.record_status(form))
            ended += 1
        return ended

    def event_types(self) -> list[str]:
        return [row.type for row in self.rows(select(event_outbox.c.type))]

    def event_bodies(self, event_type: str) -> list[dict[str, Any]]:
        rows = self.rows(select(event_outbox.c.body).where(event_outbox.c.type == event_type))
        return [json.loads(row.body)["data"] for row in rows]


def _twilio(settings: Settings, upstreams: Upstreams) -> Any:
    from bridge.twilio.rest import TwilioREST

    return TwilioREST(
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token,
        api_base=settings.twilio_api_base,
        transport=upstreams.transport,
    )


CLEARED = (
    event_deliveries,
    event_outbox,
    campaign_attempts,
    campaign_recipients,
    campaigns,
    do_not_call,
    idempotency_keys,
    pending_calls,
    call_events,
    calls,
)


@pytest.fixture
def bench(database_url: str, tmp_path: Path) -> Iterator[Bench]:
    settings = make_settings(
        bridge_api_token=Secret(API_TOKEN),
        twilio_account_sid=ACCOUNT_SID,
        twilio_phone_number=OUR_NUMBER,
        twilio_api_base="http://twilio.test",
        elevenlabs_api_base="http://elevenlabs.test",
        database_url=database_url,
        outbound_allowed_countries=("US", "GB", "AU"),
    )
    database = Database(database_url)
    bench = Bench(
        settings=settings,
        database=database,
        upstreams=Upstreams(),
        clock=Clock(),
        events=Outbox(urls=(RECEIVER,), now=Clock()),
    )

    async def clear() -> None:
        # The PostgreSQL database is shared by the tests of this run.
        engine = await database.engine()
        async with engine.begin() as connection:
            for table in CLEARED:
                await connection.execute(delete(table))

    bench.run(clear())
    yield bench
    bench.run(database.dispose())
    bench.loop.close()


def test_a_campaign_is_dialled_settled_and_finished_with_its_events(bench: Bench) -> None:
    campaign_id = bench.campaign(NEW_YORK[:3], rate=10)
    worker = bench.worker()

    tick = bench.run(worker.run_once())

    assert len(tick.claims) == 3
    assert bench.states(campaign_id) == ["in_progress"] * 3
    assert bench.upstreams.dialled() == {number: 1 for number in NEW_YORK[:3]}
    created = list(bench.upstreams.twilio.calls.values())
    assert {call.param("Timeout") for call in created} == {"30"}
    attempts = bench.rows(select(campaign_attempts).order_by(campaign_attempts.c.id))
    recipients = bench.recipients(campaign_id)
    assert [a.idempotency_key for a in attempts] == [
        f"campaign:{campaign_id}:{r.id}:1" for r in recipients
    ]
    assert all(a.call_sid for a in attempts)
    assert bench.rows(select(campaigns.c.started_at))[0].started_at is not None

    bench.end_calls("completed")
    tick = bench.run(worker.run_once())

    assert [s.state for s in tick.settled] == ["completed"] * 3
    assert tick.finished == [campaign_id]
    assert bench.states(campaign_id) == ["completed"] * 3
    (campaign,) = bench.rows(select(campaigns))
    assert campaign.state == "finished" and campaign.finished_at is not None
    types = bench.event_types()
    assert types.count("campaign.started") == 1
    assert types.count("campaign.recipient.finished") == 3
    assert types.count("campaign.finished") == 1
    finished = bench.event_bodies("campaign.recipient.finished")[0]
    assert finished["state"] == "completed" and finished["attempts"] == 1
    assert finished["call_sid"].startswith("CA")
    assert bench.event_bodies("campaign.finished")[0]["recipients"] == {"completed": 3}
    # Nothing more to do: a pass changes nothing and dials nobody.
    bench.run(worker.run_once())
    assert sum(bench.upstreams.dialled().values()) == 3


def test_the_pace_holds_across_workers_with_one_slot_every_1_over_rate(bench: Bench) -> None:
    campaign_id = bench.campaign(NEW_YORK[:10], rate=4, max_in_flight=100)
    first, second = bench.worker("w1"), bench.worker("w2")
    interval = slot_interval(4)
    assert interval == (1 + JITTER) / 4  # a little under the rate

    claims = bench.run(first.tick()).claims
    others = bench.run(second.tick()).claims

    # A horizon of 1 s: four slots, `interval` apart; none left for w2.
    offsets = [(c.slot - START).total_seconds() for c in claims]
    assert offsets == pytest.approx([0, interval, 2 * interval, 3 * interval])
    assert others == []
    (campaign,) = bench.rows(select(campaigns.c.next_dial_at))
    next_dial_at = campaign.next_dial_at.replace(tzinfo=UTC)
    assert (next_dial_at - START).total_seconds() == pytest.approx(4 * interval)

    bench.clock.advance(0.7)
    later = bench.run(second.tick()).claims
    offsets = [(c.slot - START).total_seconds() for c in later]
    assert offsets == pytest.approx([4 * interval, 5 * interval])
    assert len({c.recipient_id for c in claims + later}) == 6
    assert bench.states(campaign_id).count("dialing") == 6


def test_a_slot_reached_late_is_given_back_undialled(bench: Bench) -> None:
    campaign_id = bench.campaign(NEW_YORK[:1], rate=10)
    worker = bench.worker()
    (claim,) = bench.run(worker.tick()).claims
    bench.clock.advance(0.5)  # the worker was stalled past its slot

    assert bench.run(worker.place(claim)) == "late"

    (recipient,) = bench.recipients(campaign_id)
    assert (recipient.state, recipient.attempts) == ("pending", 0)
    assert bench.rows(select(campaign_attempts)) == []
    assert bench.upstreams.dialled() == {}
    (again,) = bench.run(worker.run_once()).claims
    assert again.attempt == 1 and bench.upstreams.dialled() == {NEW_YORK[0]: 1}


def test_max_in_flight_counts_dialing_and_in_progress_calls(bench: Bench) -> None:
    campaign_id = bench.campaign(NEW_YORK[:5], rate=100, max_in_flight=2)
    worker = bench.worker()

    assert len(bench.run(worker.run_once()).claims) == 2
    assert len(bench.run(worker.run_once()).claims) == 0
    bench.end_calls("completed")
    bench.clock.advance(1)

    tick = bench.run(worker.run_once())

    assert len(tick.settled) == 2
    assert len(tick.claims) == 2
    assert sorted(bench.states(campaign_id)) == ["completed"] * 2 + ["in_progress"] * 2 + [
        "pending"
    ]


def test_the_concurrency_cap_leaves_the_inbound_reserve(bench: Bench) -> None:
    bench.settings = dataclasses.replace(bench.settings, outbound_max_concurrent_calls=3)
    bench.campaign(NEW_YORK[:5], rate=100, max_in_flight=10)
    # An inbound call with an agent holds one slot; one more is the inbound reserve.
    bench.execute(
        insert(calls).values(
            id="inbound1",
            call_sid="CA" + "9" * 32,
            direction="inbound",
            outcome="agent",
            status="in-progress",
            status_rank=3,
            created_at=START,
        )
    )
    worker = bench.worker()

    assert len(bench.run(worker.run_once()).claims) == 1
    assert len(bench.run(worker.run_once()).claims) == 0


def test_closed_local_hours_schedule_the_recipient_for_their_next_opening(bench: Bench) -> None:
    campaign_id = bench.campaign([NEW_YORK[0], LONDON, SYDNEY], rate=10)
    worker = bench.worker()

    tick = bench.run(worker.run_once())

    assert [c.phone for c in tick.claims] == [NEW_YORK[0], LONDON]
    assert tick.scheduled == 1
    sydney = bench.recipients(campaign_id)[2]
    assert sydney.state == "scheduled"
    # 09:00 Thursday in Sydney (UTC+11 in March) is 22:00 Wednesday UTC.
    assert sydney.next_attempt_at.replace(tzinfo=UTC) == datetime(2026, 3, 4, 22, 0, tzinfo=UTC)

    bench.clock.at = datetime(2026, 3, 4, 22, 0, tzinfo=UTC)
    tick = bench.run(worker.run_once())
    assert [c.phone for c in tick.claims] == [SYDNEY]


def test_start_at_holds_the_campaign_until_then(bench: Bench) -> None:
    start = START + timedelta(hours=1)
    campaign_id = bench.campaign(NEW_YORK[:1], start_at=start.isoformat())
    worker = bench.worker()

    assert bench.run(worker.run_once()).claims == []
    bench.clock.at = start
    assert len(bench.run(worker.run_once()).claims) == 1
    assert bench.states(campaign_id) == ["in_progress"]


@pytest.mark.parametrize(
    ("status", "answered_by", "retry_on", "first", "final"),
    [
        ("busy", None, ["busy"], "busy", "busy"),
        ("no-answer", None, ["busy", "no-answer"], "no-answer", "no_answer"),
        ("failed", None, ["failed"], "failed", "failed"),
        ("canceled", None, ["failed"], "failed", "failed"),
        ("completed", "machine_start", ["machine"], "machine", "machine"),
    ],
)
def test_an_outcome_in_retry_on_is_tried_again_after_the_delay_then_final(
    bench: Bench,
    status: str,
    answered_by: str | None,
    retry_on: list[str],
    first: str,
    final: str,
) -> None:
    campaign_id = bench.campaign(
        NEW_YORK[:1],
        machine_detection=True,
        retry={"on": retry_on, "attempts": 1, "delay": 600},
    )
    worker = bench.worker()
    bench.run(worker.run_once())
    bench.end_calls(status, answered_by)

    tick = bench.run(worker.run_once())

    assert [(s.outcome, s.state) for s in tick.settled] == [(first, "scheduled")]
    (recipient,) = bench.recipients(campaign_id)
    assert recipient.next_attempt_at.replace(tzinfo=UTC) == START + timedelta(seconds=600)
    bench.clock.advance(300)
    assert bench.run(worker.run_once()).claims == []

    bench.clock.advance(300)
    (claim,) = bench.run(worker.run_once()).claims
    assert claim.attempt == 2
    assert claim.key == f"campaign:{campaign_id}:{recipient.id}:2"
    bench.end_calls(status, answered_by)
    tick = bench.run(worker.run_once())

    assert [(s.outcome, s.state) for s in tick.settled] == [(first, final)]
    assert bench.states(campaign_id) == [final]
    attempts = bench.rows(select(campaign_attempts).order_by(campaign_attempts.c.attempt))
    assert [(a.attempt, a.outcome) for a in attempts] == [(1, first), (2, first)]
    assert bench.upstreams.dialled() == {NEW_YORK[0]: 2}


def test_an_outcome_not_in_retry_on_is_final_at_once(bench: Bench) -> None:
    campaign_id = bench.campaign(NEW_YORK[:2], rate=10, retry={"on": ["busy"]})
    worker = bench.worker()
    bench.run(worker.run_once())
    bench.end_calls("no-answer")

    bench.run(worker.run_once())

    assert bench.states(campaign_id) == ["no_answer", "no_answer"]


def test_a_machine_without_machine_detection_counts_as_completed(bench: Bench) -> None:
    campaign_id = bench.campaign(NEW_YORK[:1])
    worker = bench.worker()
    bench.run(worker.run_once())
    bench.end_calls("completed", "machine_start")

    bench.run(worker.run_once())

    assert bench.states(campaign_id) == ["completed"]


def test_a_retry_is_moved_into_the_calling_hours(bench: Bench) -> None:
    bench.clock.at = datetime(2026, 3, 5, 0, 30, tzinfo=UTC)  # 19:30 Wednesday in New York
    campaign_id = bench.campaign(NEW_YORK[:1], retry={"on": ["busy"], "delay": 3600})
    worker = bench.worker()
    bench.run(worker.run_once())
    bench.end_calls("busy")

    bench.run(worker.run_once())

    (recipient,) = bench.recipients(campaign_id)
    assert recipient.state == "scheduled"
    # 20:30 is past closing: 09:00 Thursday in New York (EST, UTC-5).
    assert recipient.next_attempt_at.replace(tzinfo=UTC) == datetime(2026, 3, 5, 14, 0, tzinfo=UTC)


def test_a_number_listed_after_the_campaign_was_made_is_not_dialled(bench: Bench) -> None:
    campaign_id = bench.campaign(NEW_YORK[:2], rate=10)
    bench.execute(
        insert(do_not_call).values(
            number=NEW_YORK[1], reason="asked not to be called", source="api", created_at=START
        )
    )
    worker = bench.worker()

    tick = bench.run(worker.run_once())

    assert tick.not_to_call == 1
    assert bench.states(campaign_id) == ["in_progress", "do_not_call"]
    assert bench.recipients(campaign_id)[1].error.endswith("asked not to be called")
    assert bench.upstreams.dialled() == {NEW_YORK[0]: 1}
    (event,) = bench.event_bodies("campaign.recipient.finished")
    assert event["state"] == "do_not_call" and event["attempts"] == 0


def test_an_expired_claim_is_taken_over_with_the_same_attempt_and_key(bench: Bench) -> None:
    campaign_id = bench.campaign(NEW_YORK[:2], rate=10)
    dead, alive = bench.worker("dead"), bench.worker("alive")
    # The first worker claims and dies before dialling.
    taken = bench.run(dead.tick()).claims
    assert len(taken) == 2
    bench.clock.advance(10)
    assert bench.run(alive.tick()).claims == []  # still within the lease

    bench.clock.advance(30)
    tick = bench.run(alive.tick())

    assert tick.takeovers == 2
    assert [(c.recipient_id, c.attempt, c.key) for c in tick.claims] == [
        (c.recipient_id, c.attempt, c.key) for c in taken
    ]
    for claim in tick.claims:
        assert bench.run(alive.place(claim)) == "placed"
    assert bench.states(campaign_id) == ["in_progress", "in_progress"]
    assert bench.upstreams.dialled() == {NEW_YORK[0]: 1, NEW_YORK[1]: 1}
    assert len(bench.rows(select(campaign_attempts))) == 2


def test_a_stalled_first_worker_and_its_taker_over_dial_once(bench: Bench) -> None:
    campaign_id = bench.campaign(NEW_YORK[:1], rate=10)
    stalled, other = bench.worker("stalled"), bench.worker("other")
    (claim,) = bench.run(stalled.tick()).claims
    bench.clock.advance(40)
    (again,) = bench.run(other.tick()).claims

    assert bench.run(other.place(again)) == "placed"
    # The stalled worker wakes up long past its slot: it dials nothing.
    assert bench.run(stalled.place(claim)) == "late"
    assert bench.upstreams.dialled() == {NEW_YORK[0]: 1}
    assert bench.states(campaign_id) == ["in_progress"]


def test_a_placement_replayed_with_the_same_key_dials_nothing_new(bench: Bench) -> None:
    campaign_id = bench.campaign(NEW_YORK[:1], rate=10)
    first, second = bench.worker("first"), bench.worker("second")
    (claim,) = bench.run(first.tick()).claims

    assert bench.run(first.place(claim)) == "placed"
    # Another worker with the same claim (say, its lease expired mid-placement).
    assert bench.run(second.place(claim)) == "placed"

    assert bench.upstreams.dialled() == {NEW_YORK[0]: 1}
    assert bench.states(campaign_id) == ["in_progress"]


def test_an_unknown_placement_keeps_the_claim_and_its_replay_never_dials_again(
    bench: Bench,
) -> None:
    campaign_id = bench.campaign(NEW_YORK[:1], rate=10)
    bench.upstreams.twilio.script = ["status:500"]
    worker = bench.worker()

    (claim,) = bench.run(worker.tick()).claims
    assert bench.run(worker.place(claim)) == "unknown"
    assert bench.states(campaign_id) == ["dialing"]

    bench.clock.advance(40)
    (again,) = bench.run(worker.tick()).claims
    assert again.key == claim.key
    assert bench.run(worker.place(again)) == "refused"

    (recipient,) = bench.recipients(campaign_id)
    assert recipient.state == "failed" and recipient.error == PLACEMENT_UNKNOWN
    creates = [r for r in bench.upstreams.twilio.requests if r.path.endswith("/Calls.json")]
    assert len(creates) == 1


def test_a_refused_call_fails_the_recipient_without_a_retry(bench: Bench) -> None:
    campaign_id = bench.campaign(NEW_YORK[:1], retry={"on": ["failed"]})
    bench.upstreams.twilio.script = ["status:400"]
    worker = bench.worker()

    tick = bench.run(worker.run_once())

    assert len(tick.claims) == 1
    (recipient,) = bench.recipients(campaign_id)
    assert recipient.state == "failed"
    assert "400" in recipient.error or "Bad Request" in recipient.error


def test_a_call_with_no_final_status_for_hours_is_settled_as_failed(bench: Bench) -> None:
    campaign_id = bench.campaign(NEW_YORK[:1])
    worker = bench.worker()
    bench.run(worker.run_once())

    bench.clock.advance(STALE_AFTER.total_seconds() + 1)
    bench.run(worker.run_once())

    (recipient,) = bench.recipients(campaign_id)
    assert recipient.state == "failed" and recipient.error == NO_FINAL_STATUS


def test_paused_campaigns_wait_and_cancelled_ones_finish_once_calls_end(bench: Bench) -> None:
    paused = bench.campaign(NEW_YORK[:1])
    cancelled = bench.campaign(NEW_YORK[1:3], rate=10)
    worker = bench.worker()
    bench.execute(update(campaigns).where(campaigns.c.id == paused).values(state="paused"))
    bench.run(worker.run_once())
    # Cancelled while its calls are in progress (bridge.campaigns.control's part).
    bench.execute(update(campaigns).where(campaigns.c.id == cancelled).values(state="cancelled"))

    assert bench.states(paused) == ["pending"]
    assert bench.run(worker.run_once()).finished == []
    bench.end_calls("busy")
    tick = bench.run(worker.run_once())

    assert tick.finished == [cancelled]
    # A retry is not scheduled for a cancelled campaign.
    assert bench.states(cancelled) == ["busy", "busy"]
    rows = {row.id: row for row in bench.rows(select(campaigns))}
    assert rows[cancelled].state == "cancelled" and rows[cancelled].finished_at is not None
    assert rows[paused].finished_at is None


def test_the_call_carries_the_campaign_options_and_variables(bench: Bench) -> None:
    bench.campaign(
        NEW_YORK[:1],
        machine_detection=True,
        on_machine="message",
        machine_message="Call us back.",
        ring_timeout=20,
    )
    worker = bench.worker()

    bench.run(worker.run_once())

    (call,) = bench.upstreams.twilio.calls.values()
    assert call.param("MachineDetection") == "DetectMessageEnd"
    assert call.param("Timeout") == "20"
    (pending,) = bench.rows(select(pending_calls))
    assert pending.agent_id == "agent_c"
    assert pending.on_machine == "message"


def test_a_twilio_request_past_its_slot_is_not_sent_and_the_claim_waits_for_a_new_one(
    bench: Bench,
) -> None:
    campaign_id = bench.campaign(NEW_YORK[:2], rate=10)
    worker = bench.worker()
    stalls = [0.3]  # the second call waits for its slot, and wakes up 0.3 s late

    async def stalled_sleep(seconds: float) -> None:
        bench.clock.advance(seconds + stalls.pop(0))

    worker.placement.dialer.twilio = PacedTwilio(
        account_sid=ACCOUNT_SID,
        auth_token=bench.settings.twilio_auth_token,
        api_base="http://twilio.test",
        transport=bench.upstreams.transport,
        now=bench.clock,
        sleep=stalled_sleep,
    )
    first, second = bench.run(worker.tick()).claims

    assert bench.run(worker.place(first)) == "placed"
    assert bench.run(worker.place(second)) == "late"

    assert bench.upstreams.dialled() == {NEW_YORK[0]: 1}
    recipient = bench.recipients(campaign_id)[1]
    assert (recipient.state, recipient.attempts) == ("pending", 0)
    # Its Idempotency-Key was released and its pending call dropped: nothing was sent.
    assert len(bench.rows(select(idempotency_keys))) == 1
    assert len(bench.rows(select(pending_calls))) == 1


def test_a_sealed_secret_variable_reaches_the_call_and_is_never_stored_in_clear(
    bench: Bench,
) -> None:
    campaign_id = bench.campaign(NEW_YORK[:1])
    sealed = Sealer(API_TOKEN).seal({"dynamic_variables": {"secret__pin": "4321", "name": "A"}})
    assert sealed is not None
    bench.execute(
        update(campaign_recipients)
        .where(campaign_recipients.c.campaign_id == campaign_id)
        .values(variables=sealed["dynamic_variables"])
    )
    worker = bench.worker()

    bench.run(worker.run_once())

    assert bench.states(campaign_id) == ["in_progress"]
    (pending,) = bench.rows(select(pending_calls))
    assert "4321" not in json.dumps(pending.client_data)
    opened = Sealer(API_TOKEN).unseal(pending.client_data)
    assert opened is not None
    assert opened["dynamic_variables"] == {"secret__pin": "4321", "name": "A"}
