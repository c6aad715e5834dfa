"""`callbridge campaign`: contacts, pacing, the results ledger and safe re-runs, against the
real app in process with fake Twilio and ElevenLabs behind it."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.app import create_app
from bridge.campaign import (
    RESULT_COLUMNS,
    Campaign,
    CampaignError,
    Contacts,
    Options,
    Progress,
    Report,
    Result,
    ResultsFile,
    default_results_path,
    idempotency_key,
    read_contacts,
)
from tests.helpers import (
    BEARER,
    CONTACTS,
    GOOD,
    Upstreams,
    outbound_settings,
    results_rows,
)

DATA = Path(__file__).parent / "data"


# --- the bridge in process, with fake upstreams ------------------------------------------------


Hook = Callable[[int], Awaitable[None]]


class Recorder(httpx.AsyncBaseTransport):
    """In front of the app: records what the campaign sent, when, and how many at once.

    `before(n)` runs before the n-th request reaches the bridge; `lose(n)` says
    whether the bridge's answer to it is lost on the way back (a dropped connection).
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        clock: Callable[[], float] = lambda: 0.0,
        *,
        before: Hook | None = None,
        lose: Callable[[int], bool] = lambda n: False,
        hold: float = 0.0,
    ) -> None:
        self.inner = inner
        self.clock = clock
        self.before = before
        self.lose = lose
        self.hold = hold
        self.bodies: list[dict[str, Any]] = []
        self.keys: list[str] = []
        self.times: list[float] = []
        self.current = 0
        self.peak = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.content))
        self.keys.append(request.headers.get("idempotency-key", ""))
        self.times.append(self.clock())
        number = len(self.bodies)
        self.current += 1
        self.peak = max(self.peak, self.current)
        try:
            if self.before is not None:
                await self.before(number)
            if self.hold:
                await asyncio.sleep(self.hold)
            response = await self.inner.handle_async_request(request)
            if self.lose(number):
                await response.aread()
                raise httpx.ReadError("connection reset by peer", request=request)
            return response
        finally:
            self.current -= 1


class FakeClock:
    """Time that passes only when the campaign sleeps (or a test says so)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        until = self.now + seconds
        for _ in range(50):  # as in real time, the other tasks run meanwhile
            await asyncio.sleep(0)
        self.now = max(self.now, until)


@asynccontextmanager
async def bridge(
    tmp_path: Path,
    upstreams: Upstreams,
    wrap: Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport] = lambda t: t,
    headers: dict[str, str] = BEARER,
) -> AsyncIterator[httpx.AsyncClient]:
    """The real app, its lifespan running, and a client to it (through `wrap`)."""
    app = create_app(outbound_settings(tmp_path), transport=upstreams.transport)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=wrap(httpx.ASGITransport(app=app)),
            base_url="http://bridge",
            headers=headers,
        ) as client,
    ):
        yield client


def make_campaign(
    path: Path,
    client: httpx.AsyncClient,
    *,
    clock: FakeClock | None = None,
    rate: float = 1000.0,
    max_in_flight: int = 5,
    call: dict[str, Any] | None = None,
    results: Path | None = None,
) -> tuple[Campaign, io.StringIO]:
    clock = clock or FakeClock()
    contacts = read_contacts(path)
    stream = io.StringIO()
    campaign = Campaign(
        contacts,
        client,
        ResultsFile(results or default_results_path(path)),
        Options(
            campaign="spring-reminders", rate=rate, max_in_flight=max_in_flight, call=call or {}
        ),
        clock=clock,
        sleep=clock.sleep,
        progress=Progress(contacts.total, stream, tty=False, clock=clock),
    )
    return campaign, stream


def contacts_file(tmp_path: Path, numbers: list[str], name: str = "contacts.csv") -> Path:
    path = tmp_path / name
    lines = ["phone,name", *(f"{number},Person {i}" for i, number in enumerate(numbers))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- reading the contacts file -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "contacts", "invalid"),
    [
        pytest.param(
            "\ufeffName , Phone \r\nAda,+14155550101\r\n".encode(),
            [(2, "+14155550101", {"Name": "Ada"})],
            [],
            id="bom-crlf-header-case-and-spaces",
        ),
        pytest.param(
            b"phone,name\n\n+14155550101,Ada\n,,\n+14155550102,\n",
            [(3, "+14155550101", {"name": "Ada"}), (5, "+14155550102", {})],
            [],
            id="blank-rows-ignored-line-numbers-kept",
        ),
        pytest.param(
            b'phone,note\n+14155550101,"two\nlines"\n4155550102,x\n',
            [(2, "+14155550101", {"note": "two\nlines"})],
            [(4, "4155550102", "phone '4155550102' is not an E.164 number like +14155550123")],
            id="multi-line-field",
        ),
        pytest.param(
            b"phone,name,city\n+14155550101,Ada\n+14155550102,Bob,,\n+14155550103,Cy,Rome,x\n",
            [(3, "+14155550102", {"name": "Bob"})],
            [
                # A cell too few is as suspect as a cell too many.
                (2, "+14155550101", "2 fields, but the header has 3"),
                (4, "+14155550103", "4 fields, but the header has 3"),
            ],
            id="field-counts",
        ),
        pytest.param(
            b"phone,name,,\n+14155550101,Ada\n+14155550102,Bob,,\n",
            [(2, "+14155550101", {"name": "Ada"}), (3, "+14155550102", {"name": "Bob"})],
            [],
            id="trailing-unnamed-columns-need-no-cells",
        ),
        pytest.param(
            b'phone,name\n+14155550101,"Ada"x\n+14155550102,Bob\n',
            [(3, "+14155550102", {"name": "Bob"})],
            [(2, "", "not valid CSV: ',' expected after '\"'")],
            id="bad-quoting",
        ),
        pytest.param(
            b'phone,name\n+14155550102,Bob\n"+14155550101,Ada\n',
            [(2, "+14155550102", {"name": "Bob"})],
            [(3, "", "not valid CSV: unexpected end of data")],
            id="unclosed-quote",
        ),
        pytest.param(
            b"phone,name\n+14155550101,Ren\xe9\n+14155550102,Bob\n",
            [(3, "+14155550102", {"name": "Bob"})],
            [(2, "+14155550101", "not UTF-8 text")],
            id="not-utf8",
        ),
        pytest.param(
            b"phone,name\n,Ada\n  ,Bob\n+0123456789,C\n+1415555,D\n+1 415 555 010x,E\n"
            b"14155550101,F\n(415) 555-0102,G\n",
            [],
            [
                (2, "", "no phone number"),
                (3, "", "no phone number"),
                (4, "+0123456789", "phone '+0123456789' is not an E.164 number like +14155550123"),
                (5, "+1415555", "phone '+1415555' is not an E.164 number like +14155550123"),
                (
                    6,
                    "+1 415 555 010x",
                    "phone '+1 415 555 010x' is not an E.164 number like +14155550123",
                ),
                (
                    7,
                    "14155550101",
                    "phone '14155550101' is not an E.164 number like +14155550123 "
                    "(did you mean +14155550101?)",
                ),
                (
                    8,
                    "(415) 555-0102",
                    "phone '(415) 555-0102' is not an E.164 number like +14155550123",
                ),
            ],
            id="bad-phones",
        ),
        pytest.param(
            b"phone,name\n+1 415 555 0101,A\n+1-415-555-0102,B\n+1 (415) 555.0103,C\n"
            b"\xc2\xa0+1\xc2\xa0415\xc2\xa0555\xc2\xa00104,D\n",
            [
                (2, "+14155550101", {"name": "A"}),
                (3, "+14155550102", {"name": "B"}),
                (4, "+14155550103", {"name": "C"}),
                (5, "+14155550104", {"name": "D"}),
            ],
            [],
            id="phones-written-with-separators",
        ),
        pytest.param(
            b"phone,,secret__pin, name \n +14155550101 ,ignored,1234,  Ada  \n",
            [(2, "+14155550101", {"secret__pin": "1234", "name": "Ada"})],
            [],
            id="unnamed-columns-ignored-values-trimmed",
        ),
    ],
)
def test_read_contacts(
    tmp_path: Path,
    data: bytes,
    contacts: list[tuple[int, str, dict[str, str]]],
    invalid: list[tuple[int, str, str]],
) -> None:
    path = tmp_path / "contacts.csv"
    path.write_bytes(data)
    read = read_contacts(path)
    assert [(c.row, c.number, c.variables) for c in read.contacts] == contacts
    assert [(r.row, r.number, r.error) for r in read.invalid] == invalid
    assert {r.status for r in read.invalid} <= {"invalid"}
    assert read.total == len(contacts) + len(invalid)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty (expected a header with a 'phone' column)"),
        (
            b"name,number\nAda,+14155550101\n",
            "no 'phone' column in the header (columns: name, number); the 'phone' column "
            "holds each row's number in E.164, like +14155550123",
        ),
        (b"phone,Phone\n", "more than one 'phone' column in the header (columns: phone, Phone)"),
        (b"phone,name,name\n", "duplicate column name(s): name"),
        (
            b"name;phone;slot\nAda;+14155550101;Tuesday\n",
            "the columns are separated by semicolons (name;phone;slot), as spreadsheets in "
            "some languages save CSV; save it with commas",
        ),
        (b'"phone\n', "1: the header is not valid CSV in UTF-8"),
    ],
)
def test_unusable_contacts_file_is_fatal(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "contacts.csv"
    path.write_bytes(data)
    with pytest.raises(CampaignError) as raised:
        read_contacts(path)
    assert str(raised.value).startswith(f"{path}")
    assert message in str(raised.value)


def test_missing_contacts_file(tmp_path: Path) -> None:
    with pytest.raises(CampaignError, match="cannot read: No such file or directory"):
        read_contacts(tmp_path / "nope.csv")


def test_a_foreign_results_file_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    path.write_text("name,phone\nAda,+14155550101\n", encoding="utf-8")
    with pytest.raises(CampaignError, match="is not a results file of `callbridge campaign`"):
        ResultsFile(path).placed()
    assert path.read_text(encoding="utf-8") == "name,phone\nAda,+14155550101\n"


@pytest.mark.parametrize(
    ("left", "right", "same"),
    [
        (("spring", "+14155550101"), ("spring", "+14155550101"), True),
        (("spring", "+14155550101"), ("spring", "+14155550102"), False),
        (("spring", "+14155550101"), ("autumn", "+14155550101"), False),
    ],
)
def test_idempotency_key_is_campaign_and_number(
    left: tuple[str, str], right: tuple[str, str], same: bool
) -> None:
    assert (idempotency_key(*left) == idempotency_key(*right)) is same
    assert idempotency_key(*left).startswith("campaign-") and len(idempotency_key(*left)) == 49


# --- a run against the app ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_campaign_places_good_rows_and_reports_the_rest(
    tmp_path: Path, upstreams: Upstreams
) -> None:
    path = tmp_path / "contacts.csv"
    path.write_bytes(CONTACTS.read_bytes())
    recorder: Recorder | None = None

    def wrap(inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        nonlocal recorder
        recorder = Recorder(inner)
        return recorder

    async with bridge(tmp_path, upstreams, wrap) as client:
        campaign, progress = make_campaign(path, client)
        report = await campaign.run()
    assert recorder is not None

    assert report.exit_code == 1  # the premium-rate row was refused
    assert upstreams.dialled() == {"+14155550101": 1, "+14155550102": 1, "+14155550104": 1}
    rows = results_rows(tmp_path / "contacts.results.csv")
    assert list(rows[0]) == list(RESULT_COLUMNS)
    sids = {row["number"]: row["call_sid"] for row in rows if row["status"] == "placed"}
    for number, sid in sids.items():
        assert upstreams.twilio.calls[sid].param("To") == number
    assert [{name: value for name, value in row.items() if name != "call_sid"} for row in rows] == [
        row_dict(2, "+14155550101", "placed"),
        row_dict(3, "+14155550102", "placed"),
        row_dict(
            4,
            "4155550103",
            "invalid",
            "phone '4155550103' is not an E.164 number like +14155550123",
        ),
        row_dict(5, "", "invalid", "no phone number"),
        row_dict(
            6,
            "+19005550100",
            "failed",
            "HTTP 403: +19005550100 is a premium-rate number; the bridge never dials those",
        ),
        row_dict(7, "+14155550101", "skipped", "duplicate of row 2"),
        row_dict(8, "+14155550104", "placed"),
    ]
    assert all(row["call_sid"] == "" for row in rows if row["status"] != "placed")
    # Every other non-empty cell went along as a dynamic variable, as a string.
    assert sorted(recorder.bodies, key=lambda body: str(body["to"])) == [
        {
            "to": "+14155550101",
            "dynamic_variables": {"name": "Ada", "appointment": "Tuesday 10:00"},
        },
        {
            "to": "+14155550102",
            "dynamic_variables": {
                "name": "Grace",
                "appointment": "Wednesday 11:30",
                "notes": 'says "hi", often',
            },
        },
        {"to": "+14155550104", "dynamic_variables": {"name": "Linus"}},
        {
            "to": "+19005550100",
            "dynamic_variables": {"name": "Premium", "appointment": "Monday 08:00"},
        },
    ]
    assert len(set(recorder.keys)) == 4 and all(recorder.keys)

    lines = progress.getvalue().splitlines()
    assert (
        f"{path}:4: invalid: phone '4155550103' is not an E.164 number like +14155550123" in lines
    )
    assert f"{path}:5: invalid: no phone number" in lines
    assert f"{path}:7: skipped: duplicate of row 2" in lines
    assert any(line.startswith(f"{path}:6: failed: HTTP 403: ") for line in lines)
    assert lines[-1] == "7/7 rows: 3 placed, 1 failed, 2 invalid, 1 skipped, 0 in flight"


def row_dict(row: int, number: str, status: str, error: str = "") -> dict[str, str]:
    return {
        "row": str(row),
        "number": number,
        "status": status,
        "conversation_id": "",
        "error": error,
    }


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("mode", "path", "sid_prefix"),
    [
        ("elevenlabs", "/v1/convai/twilio/outbound-call", "CA"),
        ("sip", "/v1/convai/sip-trunk/outbound-call", "sipcall_"),
    ],
)
async def test_native_modes_record_the_conversation(
    tmp_path: Path, upstreams: Upstreams, mode: str, path: str, sid_prefix: str
) -> None:
    contacts = contacts_file(tmp_path, GOOD[:2])
    async with bridge(tmp_path, upstreams) as client:
        campaign, _ = make_campaign(
            contacts, client, call={"mode": mode, "agent_id": "agent_survey"}
        )
        report = await campaign.run()
    assert report.exit_code == 0
    sent = upstreams.elevenlabs.outbound_requests
    assert [request["path"] for request in sent] == [path, path]
    assert sorted(request["body"]["to_number"] for request in sent) == GOOD[:2]
    assert {request["body"]["agent_id"] for request in sent} == {"agent_survey"}
    assert sent[0]["body"]["conversation_initiation_client_data"]["dynamic_variables"]["name"]
    for row in results_rows(default_results_path(contacts)):
        assert row["status"] == "placed"
        assert row["call_sid"].startswith(sid_prefix)
        assert row["conversation_id"].startswith("conv_")


# --- pacing and concurrency --------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("rate", "max_in_flight", "call_seconds", "starts", "sleeps"),
    [
        (1.0, 5, 0.0, [0, 1, 2, 3], [1, 1, 1]),
        (2.0, 5, 0.0, [0, 0.5, 1, 1.5], [0.5, 0.5, 0.5]),
        (4.0, 5, 0.1, [0, 0.25, 0.5, 0.75], [0.25, 0.25, 0.25]),
        # Waiting for a free slot costs time that is not made up later in a burst.
        (2.0, 1, 2.0, [0, 2, 4, 6], []),
    ],
)
async def test_calls_start_on_schedule(
    tmp_path: Path,
    upstreams: Upstreams,
    rate: float,
    max_in_flight: int,
    call_seconds: float,
    starts: list[float],
    sleeps: list[float],
) -> None:
    clock = FakeClock()
    recorder: Recorder | None = None

    async def slow_call(_: int) -> None:
        clock.now += call_seconds

    def wrap(inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        nonlocal recorder
        recorder = Recorder(inner, clock, before=slow_call)
        return recorder

    contacts = contacts_file(tmp_path, GOOD[:4])
    async with bridge(tmp_path, upstreams, wrap) as client:
        campaign, _ = make_campaign(
            contacts, client, clock=clock, rate=rate, max_in_flight=max_in_flight
        )
        report = await campaign.run()
    assert recorder is not None
    assert report.exit_code == 0
    assert recorder.times == pytest.approx(starts)
    assert clock.sleeps == pytest.approx(sleeps)


@pytest.mark.anyio
@pytest.mark.parametrize("max_in_flight", [1, 3, 5])
async def test_calls_in_flight_are_capped(
    tmp_path: Path, upstreams: Upstreams, max_in_flight: int
) -> None:
    recorder: Recorder | None = None

    def wrap(inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        nonlocal recorder
        recorder = Recorder(inner, hold=0.02)
        return recorder

    numbers = [f"+1415555{n:04d}" for n in range(200, 212)]
    contacts = contacts_file(tmp_path, numbers)
    async with bridge(tmp_path, upstreams, wrap) as client:
        campaign, _ = make_campaign(contacts, client, max_in_flight=max_in_flight)
        report = await campaign.run()
    assert recorder is not None
    assert report.exit_code == 0
    assert recorder.peak == max_in_flight
    assert upstreams.dialled() == dict.fromkeys(numbers, 1)


# --- interruptions and re-runs -----------------------------------------------------------------


async def run_interrupted_after(
    tmp_path: Path, upstreams: Upstreams, contacts: Path, requests: int
) -> Report:
    """A run cancelled (as Ctrl-C does) when the n-th request goes out."""
    task: asyncio.Task[Report] | None = None

    async def interrupt(number: int) -> None:
        if number == requests and task is not None:
            task.cancel()

    async with bridge(
        tmp_path, upstreams, lambda inner: Recorder(inner, before=interrupt)
    ) as client:
        campaign, _ = make_campaign(contacts, client, rate=1.0)
        task = asyncio.create_task(campaign.run())
        return await task


@pytest.mark.anyio
async def test_interrupted_then_resumed_dials_every_row_once(
    tmp_path: Path, upstreams: Upstreams
) -> None:
    contacts = contacts_file(tmp_path, GOOD)
    first = await run_interrupted_after(tmp_path, upstreams, contacts, requests=3)

    assert first.interrupted and first.exit_code == 130
    placed_first = [result.number for result in first.results if result.status == "placed"]
    assert placed_first == GOOD[:3]  # the call that tripped the interrupt still finished
    assert {result.status for result in first.results} == {"placed", "skipped"}
    assert all(
        result.error == "not dialled: the campaign was interrupted"
        for result in first.results
        if result.status == "skipped"
    )
    ledger = results_rows(default_results_path(contacts))
    assert [row["row"] for row in ledger] == [str(row) for row in range(2, 8)]
    assert [row["number"] for row in ledger if row["status"] == "placed"] == placed_first

    recorder: Recorder | None = None

    def wrap(inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        nonlocal recorder
        recorder = Recorder(inner)
        return recorder

    async with bridge(tmp_path, upstreams, wrap) as client:
        campaign, progress = make_campaign(contacts, client)
        second = await campaign.run()
    assert recorder is not None
    assert second.exit_code == 0
    assert sorted(body["to"] for body in recorder.bodies) == sorted(set(GOOD) - set(placed_first))
    assert upstreams.dialled() == dict.fromkeys(GOOD, 1)
    assert [row["status"] for row in results_rows(default_results_path(contacts))] == ["placed"] * 6
    assert progress.getvalue().splitlines()[-1] == (
        f"6/6 rows: 6 placed ({len(placed_first)} before this run), 0 failed, 0 invalid, "
        "0 skipped, 0 in flight"
    )


@pytest.mark.anyio
async def test_a_lost_answer_is_replayed_not_redialled(
    tmp_path: Path, upstreams: Upstreams
) -> None:
    contacts = contacts_file(tmp_path, GOOD[:3])

    def wrap(inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        return Recorder(inner, lose=lambda n: n == 2)

    async with bridge(tmp_path, upstreams, wrap) as client:
        campaign, _ = make_campaign(contacts, client, max_in_flight=1)
        first = await campaign.run()
    assert first.exit_code == 1
    lost = first.results[1]
    assert lost.status == "failed"
    assert lost.error == (
        "cannot reach the bridge: connection reset by peer (the call may have been placed: "
        "re-run to find out, it will not be dialled twice)"
    )
    assert len(upstreams.twilio.calls) == 3  # the bridge did place it

    async with bridge(tmp_path, upstreams) as client:
        campaign, _ = make_campaign(contacts, client)
        second = await campaign.run()
    assert second.exit_code == 0
    assert upstreams.dialled() == dict.fromkeys(GOOD[:3], 1)
    assert second.results[1].call_sid in upstreams.twilio.calls


@pytest.mark.anyio
async def test_without_the_results_file_the_keys_still_prevent_a_second_call(
    tmp_path: Path, upstreams: Upstreams
) -> None:
    contacts = contacts_file(tmp_path, GOOD[:4])
    await run_interrupted_after(tmp_path, upstreams, contacts, requests=2)
    default_results_path(contacts).unlink()  # as if the process died before writing anything

    async with bridge(tmp_path, upstreams) as client:
        campaign, progress = make_campaign(contacts, client)
        report = await campaign.run()
    assert report.exit_code == 0
    assert upstreams.dialled() == dict.fromkeys(GOOD[:4], 1)
    sids = [result.call_sid for result in report.results]
    assert len(set(sids)) == 4 and all(sid in upstreams.twilio.calls for sid in sids)
    # The bridge replayed the first two: they count as placed before this run.
    assert progress.getvalue().splitlines()[-1] == (
        "4/4 rows: 4 placed (2 before this run), 0 failed, 0 invalid, 0 skipped, 0 in flight"
    )


@pytest.mark.anyio
@pytest.mark.parametrize("keep_results", [True, False])
async def test_edits_between_runs_do_not_redial(
    tmp_path: Path, upstreams: Upstreams, keep_results: bool
) -> None:
    contacts = contacts_file(tmp_path, GOOD[:3])
    async with bridge(tmp_path, upstreams) as client:
        campaign, _ = make_campaign(contacts, client)
        assert (await campaign.run()).exit_code == 0
    if not keep_results:
        default_results_path(contacts).unlink()
    # A new row on top shifts every row; a placed row gets another name; one row is new.
    contacts.write_text(
        f"phone,name\n{GOOD[4]},New\n{GOOD[0]},Person 0\n{GOOD[1]},Renamed\n{GOOD[2]},Person 2\n",
        encoding="utf-8",
    )
    async with bridge(tmp_path, upstreams) as client:
        campaign, _ = make_campaign(contacts, client)
        report = await campaign.run()
    assert upstreams.dialled() == dict.fromkeys([*GOOD[:3], GOOD[4]], 1)
    statuses = [(result.row, result.number, result.status) for result in report.results]
    renamed = "placed" if keep_results else "failed"
    assert statuses == [
        (2, GOOD[4], "placed"),
        (3, GOOD[0], "placed"),
        (4, GOOD[1], renamed),
        (5, GOOD[2], "placed"),
    ]
    if not keep_results:
        assert report.results[2].error == (
            "HTTP 422: This Idempotency-Key was already used with a different request. "
            "(this number was called in campaign 'spring-reminders' with other details: "
            "not dialled again)"
        )


@pytest.mark.anyio
async def test_rows_removed_from_the_file_stay_in_the_ledger(
    tmp_path: Path, upstreams: Upstreams
) -> None:
    contacts = contacts_file(tmp_path, GOOD[:2])
    async with bridge(tmp_path, upstreams) as client:
        campaign, _ = make_campaign(contacts, client)
        await campaign.run()
    contacts.write_text(f"phone\n{GOOD[1]}\n", encoding="utf-8")
    async with bridge(tmp_path, upstreams) as client:
        campaign, _ = make_campaign(contacts, client)
        await campaign.run()
    ledger = results_rows(default_results_path(contacts))
    assert [(row["row"], row["number"], row["status"]) for row in ledger] == [
        ("2", GOOD[1], "placed"),
        ("2", GOOD[0], "placed"),
    ]
    contacts.write_text(f"phone\n{GOOD[0]}\n{GOOD[1]}\n", encoding="utf-8")
    async with bridge(tmp_path, upstreams) as client:
        campaign, _ = make_campaign(contacts, client)
        assert (await campaign.run()).exit_code == 0
    assert upstreams.dialled() == dict.fromkeys(GOOD[:2], 1)


def test_a_ledger_cut_short_by_a_crash_is_read_and_appended_to(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    path.write_text(
        "row,number,status,call_sid,conversation_id,error\n"
        "2,+14155550110,placed,CA1,,\n"
        "3,+14155550111,failed,,,HTTP 502: x\n"
        "3,+14155550111,placed,CA2,,\n"
        "4,+14155550112,pla",
        encoding="utf-8",
    )
    ledger = ResultsFile(path)
    assert {number: result.call_sid for number, result in ledger.placed().items()} == {
        "+14155550110": "CA1",
        "+14155550111": "CA2",
    }
    ledger.open()
    ledger.append(Result(4, "+14155550112", "placed", call_sid="CA3"))
    ledger.close()
    assert path.read_text(encoding="utf-8").splitlines()[-2:] == [
        "4,+14155550112,pla",
        "4,+14155550112,placed,CA3,,",
    ]
    assert set(ResultsFile(path).placed()) == {"+14155550110", "+14155550111", "+14155550112"}


# --- a bridge that refuses every call ------------------------------------------------------------


@pytest.mark.anyio
async def test_a_bad_token_stops_the_campaign(tmp_path: Path, upstreams: Upstreams) -> None:
    contacts = contacts_file(tmp_path, GOOD[:4])
    recorder: Recorder | None = None

    def wrap(inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        nonlocal recorder
        recorder = Recorder(inner)
        return recorder

    headers = {"authorization": "Bearer wrong"}
    async with bridge(tmp_path, upstreams, wrap, headers=headers) as client:
        campaign, progress = make_campaign(contacts, client, max_in_flight=1)
        report = await campaign.run()
    assert recorder is not None
    assert report.exit_code == 1
    assert len(recorder.bodies) == 1
    assert upstreams.twilio.calls == {}
    refused = "the bridge refused (HTTP 401: Missing or invalid bearer token.)"
    assert report.stopped == refused
    assert [(result.status, result.error) for result in report.results] == [
        ("failed", "HTTP 401: Missing or invalid bearer token."),
        *[("skipped", f"not dialled: {refused}")] * 3,
    ]
    assert f"stopping: {refused}" in progress.getvalue().splitlines()


def test_progress_on_a_terminal_rewrites_one_line() -> None:
    stream = io.StringIO()
    progress = Progress(2, stream, tty=True)
    progress.record(Result(2, "+14155550110", "placed"))
    progress.note("contacts.csv:3: invalid: no phone number")
    progress.record(Result(3, "", "invalid", error="no phone number"))
    progress.finish()
    assert stream.getvalue().split("\r\x1b[K") == [
        "",
        "1/2 rows: 1 placed, 0 failed, 0 invalid, 0 skipped, 0 in flight",
        "contacts.csv:3: invalid: no phone number\n",
        "1/2 rows: 1 placed, 0 failed, 0 invalid, 0 skipped, 0 in flight",
        "2/2 rows: 1 placed, 0 failed, 1 invalid, 0 skipped, 0 in flight",
        "2/2 rows: 1 placed, 0 failed, 1 invalid, 0 skipped, 0 in flight\n",
    ]


@pytest.mark.parametrize(
    ("notes", "expected"),
    [
        # The last status line already has the final counts: not printed again.
        ([], ["1/1 rows: 1 placed, 0 failed, 0 invalid, 0 skipped, 0 in flight"]),
        # A note came after it: the counts end the output once more.
        (
            ["stopping: the bridge refused (HTTP 401: no)"],
            [
                "1/1 rows: 1 placed, 0 failed, 0 invalid, 0 skipped, 0 in flight",
                "stopping: the bridge refused (HTTP 401: no)",
                "1/1 rows: 1 placed, 0 failed, 0 invalid, 0 skipped, 0 in flight",
            ],
        ),
    ],
)
def test_progress_elsewhere_prints_the_final_line_once(
    notes: list[str], expected: list[str]
) -> None:
    stream = io.StringIO()
    progress = Progress(1, stream, tty=False, clock=lambda: 0.0)
    progress.record(Result(2, "+14155550110", "placed"))
    for note in notes:
        progress.note(note)
    progress.finish()
    assert stream.getvalue().splitlines() == expected


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="rate"):
        Options(campaign="x", rate=0)
    with pytest.raises(ValueError, match="max_in_flight"):
        Options(campaign="x", max_in_flight=0)
    assert Contacts(Path("x.csv")).total == 0


# --- the same campaign run elsewhere at the same time ---------------------------------------------


@pytest.mark.anyio
async def test_a_number_in_progress_elsewhere_is_not_failed(
    tmp_path: Path, upstreams: Upstreams
) -> None:
    # Two runs of one campaign with their own results files (two machines, say): each
    # number's key is held by whichever run asked first, and the other gets the 409.
    contacts = contacts_file(tmp_path, GOOD[:4])
    upstreams.twilio.latency = 0.3
    async with bridge(tmp_path, upstreams) as client:
        runs = [
            make_campaign(contacts, client, results=tmp_path / f"{name}.csv")[0]
            for name in ("here", "there")
        ]
        reports = await asyncio.gather(*(run.run() for run in runs))
    assert upstreams.dialled() == dict.fromkeys(GOOD[:4], 1)
    for number in GOOD[:4]:
        outcomes = sorted(
            (result.status, result.error)
            for report in reports
            for result in report.results
            if result.number == number
        )
        assert outcomes == [
            ("placed", ""),
            (
                "skipped",
                "in progress elsewhere: HTTP 409: A request with this Idempotency-Key is still "
                "being processed. (another run or request holds this number's key: not dialled "
                "here; run again to record its outcome, it will not be dialled twice)",
            ),
        ]
    for report in reports:
        assert report.exit_code == (1 if report.count("skipped") else 0)

    upstreams.twilio.latency = 0.0
    async with bridge(tmp_path, upstreams) as client:
        again, _ = make_campaign(contacts, client, results=tmp_path / "there.csv")
        report = await again.run()
    assert report.exit_code == 0
    assert [result.status for result in report.results] == ["placed"] * 4
    assert upstreams.dialled() == dict.fromkeys(GOOD[:4], 1)
