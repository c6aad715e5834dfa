"""`callbridge dnc add|remove|import|list`, in process on the local database (SQLite and
PostgreSQL) and over HTTP (--url); `callbridge call` to a listed number is refused."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete

from bridge.app import create_app
from bridge.fakes import FakeElevenLabs, FakeTwilio
from bridge.storage.database import Database
from bridge.storage.tables import campaign_attempts, campaign_recipients, campaigns, do_not_call
from tests.helpers import (
    ACCOUNT_SID,
    API_TOKEN,
    AUTH_TOKEN,
    ELEVENLABS_KEY,
    OUR_NUMBER,
    PUBLIC,
    Upstreams,
    clear_settings_environment,
    fresh_sqlite,
    outbound_settings,
    run_cli,
    running_server,
)

A, B = "+14155550121", "+14155550122"
CALLEE = "+14155550123"


@pytest.fixture
def local(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The environment of a machine whose DATABASE_URL is `database_url`, emptied."""
    clear_settings_environment(monkeypatch)
    monkeypatch.setenv("DATABASE_URL", database_url)

    async def empty() -> None:
        database = Database(database_url)
        engine = await database.engine()
        async with engine.begin() as connection:
            for table in (do_not_call, campaign_attempts, campaign_recipients, campaigns):
                await connection.execute(delete(table))
        await database.dispose()

    asyncio.run(empty())
    return database_url


def test_add_list_remove_in_process(local: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "dnc", "add", "+1 415 555 0121", "--reason", "by email")
    assert (code, out, err) == (0, f"{A}: on the do-not-call list\n", "")
    assert run_cli(capsys, "dnc", "add", A)[1] == f"{A}: on the do-not-call list already\n"
    run_cli(capsys, "dnc", "add", B)
    code, out, _ = run_cli(capsys, "dnc", "list")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2
    assert lines[0].startswith(f"{A}  ") and lines[0].endswith("cli      by email")
    code, out, err = run_cli(capsys, "dnc", "list", "--limit", "1", "--json")
    assert [item["number"] for item in json.loads(out)] == [A]
    assert "(more numbers: --cursor " in err
    cursor = err.split("--cursor ")[1].split(",")[0]
    code, out, _ = run_cli(capsys, "dnc", "list", "--cursor", cursor, "--json")
    assert [item["number"] for item in json.loads(out)] == [B]

    assert run_cli(capsys, "dnc", "remove", A) == (0, f"{A}: off the do-not-call list\n", "")
    code, out, err = run_cli(capsys, "dnc", "remove", A)
    assert (code, out) == (1, "")
    assert err == f"callbridge: {A} is not on the do-not-call list.\n"
    assert run_cli(capsys, "dnc", "list", "--all")[1].startswith(B)


def test_a_bad_number_is_a_usage_error(local: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "dnc", "add", "14155550121")
    assert (code, out) == (2, "")
    assert "did you mean +14155550121?" in err


def test_import_reports_bad_lines(
    local: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run_cli(capsys, "dnc", "add", A)
    path = tmp_path / "dnc.csv"
    path.write_text("phone,reason\n+14155550121,\n+14155550122,letter\nnope,\n")
    code, out, err = run_cli(capsys, "dnc", "import", str(path))
    assert code == 0
    assert out == "1 added, 1 already listed, 1 invalid; 0 waiting campaign call(s) cancelled\n"
    assert err == (f"{path}:4: skipped: 'nope' is not an E.164 number like +14155550123\n")
    code, out, _ = run_cli(capsys, "dnc", "list", "--source", "import")
    assert out.split()[:1] == [B]
    missing = run_cli(capsys, "dnc", "import", str(tmp_path / "missing.csv"))
    assert missing[0] == 1 and "cannot read" in missing[2]
    bad = tmp_path / "bad.csv"
    bad.write_text("name\nSam\n")
    code, _, err = run_cli(capsys, "dnc", "import", str(bad))
    assert code == 2
    assert "no 'number' (or 'phone') column" in err


def test_dnc_alone_prints_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "dnc")
    assert code == 2
    assert "add" in err and "import" in err


@pytest.fixture
def served_bridge(tmp_path: Path) -> Iterator[tuple[str, Upstreams]]:
    upstreams = Upstreams()
    app = create_app(outbound_settings(tmp_path), transport=upstreams.transport)
    with running_server(app) as url:
        yield url, upstreams


def test_call_over_http_to_a_listed_number_is_refused(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    served_bridge: tuple[str, Upstreams],
) -> None:
    clear_settings_environment(monkeypatch)
    url, upstreams = served_bridge
    monkeypatch.setenv("BRIDGE_API_TOKEN", API_TOKEN)
    code, out, _ = run_cli(capsys, "dnc", "add", CALLEE, "--reason", "said stop", "--url", url)
    assert (code, out) == (0, f"{CALLEE}: on the do-not-call list\n")
    code, out, err = run_cli(capsys, "call", CALLEE, "--url", url)
    assert (code, out) == (1, "")
    assert err.startswith(
        f"callbridge: call not placed: HTTP 403: {CALLEE} is on the do-not-call list: said stop"
    )
    assert upstreams.dialled() == {}
    assert run_cli(capsys, "dnc", "list", "--url", url)[1].startswith(CALLEE)


def test_call_in_process_to_a_listed_number_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clear_settings_environment(monkeypatch)
    twilio = FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
    elevenlabs = FakeElevenLabs(api_key=ELEVENLABS_KEY)
    with running_server(twilio.app) as twilio_url, running_server(elevenlabs.app) as xi:
        for name, value in {
            "BRIDGE_API_TOKEN": API_TOKEN,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_PHONE_NUMBER": OUR_NUMBER,
            "TWILIO_API_BASE": twilio_url,
            "ELEVENLABS_API_KEY": ELEVENLABS_KEY,
            "ELEVENLABS_AGENT_ID": "agent_default",
            "ELEVENLABS_API_BASE": xi,
            "PUBLIC_BASE_URL": PUBLIC,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'bridge.sqlite3'}",
        }.items():
            monkeypatch.setenv(name, value)
        fresh_sqlite(os.environ["DATABASE_URL"])
        assert run_cli(capsys, "dnc", "add", CALLEE)[0] == 0
        code, _, err = run_cli(capsys, "call", CALLEE)
        assert code == 1
        assert err.startswith(
            f"callbridge: call not placed: HTTP 403: {CALLEE} is on the do-not-call list\n"
        )
        assert twilio.calls == {}
        assert run_cli(capsys, "dnc", "remove", CALLEE)[0] == 0
        assert run_cli(capsys, "call", CALLEE)[0] == 0
        assert len(twilio.calls) == 1
