"""bridge.dnc.entries and bridge.dnc.imports: numbers written as people write them,
adding (which stops waiting campaign calls), removing, pages; reading a CSV file.
On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select

from bridge.campaigns import states
from bridge.campaigns.options import CampaignOptions
from bridge.campaigns.store import NewRecipient, create_campaign
from bridge.dnc import entries, imports
from bridge.dnc.entries import BadCursor, BadNumber
from bridge.dnc.numbers import listed_reason
from bridge.storage.database import Database
from bridge.storage.tables import campaign_attempts, campaign_recipients, campaigns, do_not_call

T0 = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)
A, B, C = "+14155550121", "+14155550122", "+14155550123"


def test_the_states_repeated_here_are_the_campaigns_own() -> None:
    assert set(entries.WAITING_STATES) == states.WAITING
    assert entries.DO_NOT_CALL_STATE in states.FINAL


@pytest.mark.parametrize(
    ("written", "number"),
    [
        ("+14155550123", "+14155550123"),
        ("  +1 (415) 555-0123 ", "+14155550123"),
        ("+44 20.7123.4567", "+442071234567"),
    ],
)
def test_numbers_are_read_as_people_write_them(written: str, number: str) -> None:
    assert entries.normalized(written) == number


@pytest.mark.parametrize(
    ("written", "words"),
    [
        ("", "no number"),
        ("14155550123", "did you mean +14155550123?"),
        ("0044 20 7123 4567", "did you mean +442071234567?"),
        ("call me", "is not an E.164 number"),
        ("+1415555012345678", "is not an E.164 number"),
    ],
)
def test_bad_numbers_say_why(written: str, words: str) -> None:
    with pytest.raises(BadNumber, match=words.replace("+", r"\+").replace("?", r"\?")):
        entries.normalized(written)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    engine = await database.engine()
    async with engine.begin() as connection:  # PostgreSQL is shared: start empty
        await connection.execute(delete(do_not_call))
        await connection.execute(delete(campaign_attempts))
        await connection.execute(delete(campaign_recipients))
        await connection.execute(delete(campaigns))
    yield database
    await database.dispose()


async def a_campaign(database: Database, numbers: list[str]) -> str:
    engine = await database.engine()
    async with engine.begin() as connection:
        return await create_campaign(
            connection,
            name="reminders",
            agent_id=None,
            options=CampaignOptions(),
            recipients=[
                NewRecipient(line=line, phone=number, time_zones=("America/Los_Angeles",))
                for line, number in enumerate(numbers, start=2)
            ],
            now=T0,
        )


async def recipient_states(database: Database) -> dict[str, tuple[str, str | None]]:
    engine = await database.engine()
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(
                campaign_recipients.c.phone,
                campaign_recipients.c.state,
                campaign_recipients.c.error,
            )
        )
        return {phone: (state, error) for phone, state, error in rows}


@pytest.mark.anyio
async def test_adding_a_number_stops_its_waiting_calls_only(database: Database) -> None:
    await a_campaign(database, [A, B, C])
    engine = await database.engine()
    async with engine.begin() as connection:
        # B is being dialled, C is scheduled for a retry.
        await connection.execute(
            campaign_recipients.update()
            .where(campaign_recipients.c.phone == B)
            .values(state="dialing")
        )
        await connection.execute(
            campaign_recipients.update()
            .where(campaign_recipients.c.phone == C)
            .values(state="scheduled", next_attempt_at=T0 + timedelta(hours=1))
        )
    async with engine.begin() as connection:
        added = [
            await entries.add(
                connection, number, reason="  asked\n by email ", source="api", now=T0
            )
            for number in (A, B, C)
        ]
    assert [item.added for item in added] == [True, True, True]
    assert [item.stopped for item in added] == [1, 0, 1]
    assert added[0].reason == "asked by email"
    found = await recipient_states(database)
    assert found[A] == ("do_not_call", "on the do-not-call list: asked by email")
    assert found[B] == ("dialing", None)  # the worker checks again before each attempt
    assert found[C][0] == "do_not_call"
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                select(campaign_recipients).where(campaign_recipients.c.phone == C)
            )
        ).one()
        assert row.next_attempt_at is None
        assert row.finished_at is not None
        assert await listed_reason(connection, A) == "on the do-not-call list: asked by email"


@pytest.mark.anyio
async def test_adding_a_listed_number_again_keeps_its_first_entry(database: Database) -> None:
    engine = await database.engine()
    async with engine.begin() as connection:
        first = await entries.add(connection, A, reason="first", source="cli", now=T0)
    async with engine.begin() as connection:
        again = await entries.add(
            connection, A, reason="second", source="api", now=T0 + timedelta(days=1)
        )
    assert (first.added, again.added) == (True, False)
    assert (again.reason, again.source) == ("first", "cli")
    assert again.created_at.replace(tzinfo=UTC) == T0


@pytest.mark.anyio
async def test_remove_and_pages(database: Database) -> None:
    engine = await database.engine()
    numbers = [f"+1415555{n:04d}" for n in range(7)]
    async with engine.begin() as connection:
        done = await entries.add_many(
            connection,
            [(number, None) for number in reversed(numbers)] + [(numbers[0], "dupe")],
            source="import",
            now=T0,
        )
    assert (done.added, done.already_listed, done.stopped) == (7, 0, 0)
    async with engine.connect() as connection:
        first = await entries.page(connection, limit=3)
        second = await entries.page(connection, limit=3, cursor=first.next_cursor)
        third = await entries.page(connection, limit=3, cursor=second.next_cursor)
        assert await entries.page(connection, source="api") == entries.Page([], None)
        with pytest.raises(BadCursor):
            await entries.page(connection, cursor="bm90LW91cnM")
    listed = [item["number"] for page in (first, second, third) for item in page.entries]
    assert listed == numbers
    assert third.next_cursor is None
    assert first.entries[0] == {
        "number": numbers[0],
        "reason": None,
        "source": "import",
        "created_at": "2026-06-03T12:00:00+00:00",
    }
    async with engine.begin() as connection:
        assert await entries.remove(connection, numbers[0]) is True
        assert await entries.remove(connection, numbers[0]) is False
        assert await entries.entry(connection, numbers[0]) is None
        assert (await entries.entry(connection, numbers[1]) or {})["source"] == "import"


@pytest.mark.anyio
async def test_add_many_counts_what_was_there_and_stops_waiting_calls(database: Database) -> None:
    await a_campaign(database, [A, B])
    engine = await database.engine()
    async with engine.begin() as connection:
        await entries.add(connection, A, reason="earlier", source="api", now=T0)
    async with engine.begin() as connection:
        done = await entries.add_many(
            connection, [(A, "again"), (B, "import"), (C, None)], source="import", now=T0
        )
    assert (done.added, done.already_listed, done.stopped) == (2, 1, 1)
    found = await recipient_states(database)
    assert found[B] == ("do_not_call", "on the do-not-call list: import")


def test_a_csv_with_a_header_and_bad_lines() -> None:
    data = (
        "Phone,Reason,extra\r\n"
        "+1 415 555 0121,asked by email,x\r\n"
        "\r\n"
        "14155550122,,\r\n"
        '"+14155550123","said ""stop""",\r\n'
        "\xff\xfe,bad bytes,\r\n"
    ).encode("latin-1")
    parsed = imports.parse(data.replace(b"\xc3", b""))
    assert parsed.rows == [
        (2, "+14155550121", "asked by email"),
        (5, "+14155550123", 'said "stop"'),
    ]
    assert [(item["line"], item["problem"]) for item in parsed.problems] == [
        (4, "'14155550122' is not an E.164 number like +14155550123 (did you mean +14155550122?)"),
        (6, "not UTF-8 text"),
    ]


def test_a_csv_of_numbers_without_a_header() -> None:
    parsed = imports.parse(b"\xef\xbb\xbf+14155550121\n+14155550122\nnope\n")
    assert [number for _, number, _ in parsed.rows] == ["+14155550121", "+14155550122"]
    assert parsed.problems[0]["line"] == 3


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "the file is empty"),
        (b"name,email\nSam,sam@example.com\n", "no 'number' (or 'phone') column"),
        (b"number,phone\n+14155550121,+14155550122\n", "more than one"),
    ],
)
def test_a_csv_that_cannot_be_used(data: bytes, words: str) -> None:
    with pytest.raises(imports.BadFile, match=words.replace("(", r"\(").replace(")", r"\)")):
        imports.parse(data)
