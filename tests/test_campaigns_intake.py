"""A campaign's recipients from CSV and JSON: bad rows by line or index, duplicates,
time zones (override, none known, never open), the do-not-call list."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import insert

from bridge.campaigns import intake
from bridge.campaigns.options import CampaignOptions
from bridge.storage.database import Database
from bridge.storage.tables import do_not_call

NOW = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)  # a Monday: 09:00 in California


def take(
    database_url: str,
    rows: list[intake.Row],
    options: CampaignOptions | None = None,
    listed: dict[str, str | None] | None = None,
) -> intake.Intake:
    async def go() -> intake.Intake:
        database = Database(database_url)
        engine = await database.engine()
        async with engine.begin() as connection:
            for number, reason in (listed or {}).items():
                await connection.execute(
                    insert(do_not_call).values(
                        number=number, reason=reason, source="api", created_at=NOW
                    )
                )
            made = await intake.intake(connection, rows, options or CampaignOptions(), NOW)
            await connection.rollback()  # the shared PostgreSQL database stays as it was
        await database.dispose()
        return made

    return asyncio.run(go())


def test_csv_rows_name_their_lines_and_say_what_is_wrong() -> None:
    data = (
        b"phone,name,slot\n"
        b"+1 (415) 555-0101,Ada,Tue\n"
        b"4155550102,Bob,Wed\n"
        b"\n"
        b"+14155550103,Cy\n"
        b"+14155550104,D\xff,Thu\n"
        b",Eve,Fri\n"
    )
    rows = intake.csv_rows(data)
    assert [(row.line, row.number, row.variables, row.error) for row in rows] == [
        (2, "+14155550101", {"name": "Ada", "slot": "Tue"}, None),
        (
            3,
            None,
            {},
            "phone '4155550102' is not an E.164 number like +14155550123",
        ),
        (5, None, {}, "2 fields, but the header has 3"),
        (6, None, {}, "not UTF-8 text"),
        (7, None, {}, "no phone number"),
    ]


@pytest.mark.parametrize(
    ("data", "message", "line"),
    [
        (b"", "the file is empty", None),
        (b"name\nAda\n", "no 'phone' column in the header (columns: name)", None),
        (b'"phone\n', "the header is not valid CSV in UTF-8", 1),
    ],
)
def test_a_csv_that_cannot_be_used(data: bytes, message: str, line: int | None) -> None:
    with pytest.raises(intake.BadFile) as raised:
        intake.csv_rows(data)
    assert raised.value.message.startswith(message)
    assert raised.value.line == line


@pytest.mark.parametrize(
    ("item", "error"),
    [
        ({"phone": "+14155550101", "variables": {"a": 1, "b": None}, "id": "x"}, None),
        ({}, "phone: required, a string like +14155550123"),
        ({"phone": 14155550101}, "phone: required, a string like +14155550123"),
        ({"phone": ""}, "phone: no phone number"),
        ({"phone": "+14155550101", "id": ""}, "id: must be a string of 1 to 255 characters"),
        ({"phone": "+14155550101", "variables": []}, "variables: must be an object"),
        (
            {"phone": "+14155550101", "variables": {"x": {"y": 1}}},
            "variables.x: must be a string, a finite number, a boolean or null",
        ),
        ({"phone": "+14155550101", "to": "+1"}, "unknown field(s): to"),
        (["+14155550101"], 'must be an object like {"phone": "+14155550123"}'),
    ],
)
def test_json_rows(item: Any, error: str | None) -> None:
    (row,) = intake.json_rows([item])
    assert row.line == 1
    assert row.error == error
    assert (row.number is None) == (error is not None)


def test_intake_skips_bad_rows_and_duplicates_and_marks_listed_numbers(database_url: str) -> None:
    listed = f"+1202555{uuid.uuid4().int % 10_000:04d}"
    rows = intake.json_rows(
        [
            {"phone": "+14155550101"},
            {"phone": "bad"},
            {"phone": listed},
            {"phone": "+14155550101", "variables": {"again": True}},
            {"phone": "+80012345678"},
        ]
    )
    made = take(database_url, rows, listed={listed: "asked on a call"})
    assert [(r.line, r.phone, r.state, r.error, r.time_zones) for r in made.recipients] == [
        (1, "+14155550101", "pending", None, ("America/Los_Angeles",)),
        (
            3,
            listed,
            "do_not_call",
            "on the do-not-call list: asked on a call",
            ("America/New_York",),
        ),
    ]
    assert (made.callable, made.do_not_call) == (1, 1)
    assert [item.as_json("index") for item in made.invalid] == [
        {
            "index": 1,
            "phone": "bad",
            "error": "phone: phone 'bad' is not an E.164 number like +14155550123",
        },
        {
            "index": 4,
            "phone": "+80012345678",
            "error": "no time zone is known for +80012345678: set options.timezone",
        },
    ]
    assert [item.as_json("line") for item in made.duplicates] == [
        {"line": 4, "phone": "+14155550101", "error": "duplicate of line 1"}
    ]


def test_the_timezone_option_overrides_the_numbers_zones(database_url: str) -> None:
    rows = intake.json_rows([{"phone": "+80012345678"}, {"phone": "+14155550101"}])
    made = take(database_url, rows, CampaignOptions(timezone="Europe/Berlin"))
    assert [r.time_zones for r in made.recipients] == [("Europe/Berlin",), ("Europe/Berlin",)]
    assert made.invalid == []


def test_a_number_whose_zones_are_never_open_at_once_is_invalid(database_url: str) -> None:
    # A Russian mobile number spans UTC+2 to UTC+12: three morning hours never overlap.
    options = CampaignOptions.model_validate({"calling_hours": {"open": "09:00", "close": "12:00"}})
    made = take(database_url, intake.json_rows([{"phone": "+79161234567"}]), options)
    assert made.recipients == []
    (skipped,) = made.invalid
    assert "are never open in all of" in skipped.error and "set options.timezone" in skipped.error
