"""`callbridge calls` and `db` on this machine's database: paging past one page, no token
needed (nor taken) to read it, and a database that does not exist is reported, never
created; the sandbox's env.sh names the sandbox as the default --url."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from bridge.cli.api import sqlite_file, target
from bridge.sandbox.credentials import Credentials, write_env_file
from bridge.storage import migrate
from bridge.storage.database import Database
from bridge.storage.tables import call_events, calls
from tests.helpers import clear_settings_environment, run_cli, running_server

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
CALLS = 450  # more than two of the API's pages of 200


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_settings_environment(monkeypatch)
    monkeypatch.delenv("CALLBRIDGE_URL", raising=False)


@pytest.fixture
def log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """A call log of CALLS calls in this machine's database; their ids, newest first."""
    url = f"sqlite:///{tmp_path / 'callbridge.sqlite3'}"
    monkeypatch.setenv("DATABASE_URL", url)
    ids = [f"call-{n:04d}" for n in range(CALLS)]

    async def fill() -> None:
        await migrate.upgrade(url)
        database = Database(url)
        engine = await database.engine()
        async with engine.begin() as connection:
            await connection.execute(
                insert(calls),
                [
                    {
                        "id": call_id,
                        "direction": "inbound",
                        "from_number": "+14155550123",
                        "to_number": "+14155550100",
                        "status": "completed",
                        "created_at": T0 + timedelta(seconds=n),
                    }
                    for n, call_id in enumerate(ids)
                ],
            )
        await database.dispose()

    asyncio.run(fill())
    yield ids[::-1]


def listed(out: str) -> list[str]:
    return [call["id"] for call in json.loads(out)]


def test_all_lists_every_call_page_by_page(
    log: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "calls", "--all", "--json")
    assert (code, err) == (0, "")
    assert listed(out) == log


def test_cursor_goes_on_where_the_last_listing_stopped(
    log: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "calls", "--limit", "250", "--json")
    assert code == 0
    assert listed(out) == log[:250]
    assert err.startswith("(more calls: the next ones with --cursor ")
    cursor = err.split("--cursor ")[1].split(",")[0]
    code, out, err = run_cli(capsys, "calls", "--cursor", cursor, "--all", "--json")
    assert (code, err) == (0, "")
    assert listed(out) == log[250:]


def test_limit_and_all_do_not_go_together(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        run_cli(capsys, "calls", "--all", "--limit", "5")
    assert exited.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_a_cursor_from_elsewhere_is_a_usage_error(
    log: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "calls", "--cursor", "nonsense")
    assert (code, out) == (2, "")
    assert err == "callbridge: cursor is not one this API returned\n"


def test_the_local_log_needs_no_token(
    log: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BRIDGE_API_TOKEN", raising=False)
    code, out, err = run_cli(capsys, "calls", "--limit", "1")
    assert code == 0
    assert out.splitlines()[1].split()[2] == "inbound"
    code, out, err = run_cli(capsys, "calls", "show", log[0])
    assert (code, err) == (0, "")
    assert out.startswith(f"call {log[0]}\n")


@pytest.mark.parametrize("argv", [["calls"], ["calls", "show", "CA123"]])
def test_a_token_without_url_is_a_usage_error(
    log: list[str], capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, err = run_cli(capsys, *argv, "--token", "X")
    assert (code, out) == (2, "")
    assert err.startswith("callbridge: --token is for a bridge at --url (or $CALLBRIDGE_URL);")
    assert "outbound API" not in err


# --- a database that does not exist -----------------------------------------------------------


REMOTE = " For a running bridge, pass --url or set CALLBRIDGE_URL."


@pytest.mark.parametrize(
    ("argv", "remote"),
    [
        (["calls"], REMOTE),
        (["calls", "show", "CA123"], REMOTE),
        (["call", "+14155550123"], REMOTE),
        (["db", "prune", "--days", "30"], ""),
    ],
)
def test_no_command_but_serve_and_db_upgrade_creates_the_database(
    tmp_path: Path, argv: list[str], remote: str
) -> None:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("DATABASE_URL", "CALLBRIDGE_URL", "BRIDGE_API_TOKEN")
    }
    result = subprocess.run(
        [str(Path(sys.executable).parent / "callbridge"), *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "callbridge: no database at callbridge.sqlite3 (DATABASE_URL is not set): "
        f"`callbridge db upgrade` creates it, and `callbridge serve` does too.{remote}\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_db_current_reports_a_missing_database_without_creating_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "none.sqlite3"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{database}")
    code, out, err = run_cli(capsys, "db", "current")
    assert (code, out) == (1, f"database: no schema; newest: {migrate.head_revision()}\n")
    assert err == (
        f"callbridge: no database at {database} (DATABASE_URL): `callbridge db upgrade` "
        "creates it, and `callbridge serve` does too.\n"
    )
    assert not database.exists()


def test_db_upgrade_creates_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "new.sqlite3"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{database}")
    code, out, _ = run_cli(capsys, "db", "upgrade")
    assert code == 0 and out.startswith("database at revision ")
    assert database.exists()
    code, out, _ = run_cli(capsys, "db", "current")
    assert code == 0


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///./callbridge.sqlite3", Path("callbridge.sqlite3")),
        ("sqlite:////var/lib/bridge.db", Path("/var/lib/bridge.db")),
        ("sqlite+aiosqlite:///x.db", Path("x.db")),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("postgresql://u:p@db/bridge", None),
        ("postgres://u:p@db/bridge", None),
    ],
)
def test_sqlite_file(url: str, path: Path | None) -> None:
    assert sqlite_file(url) == path


# --- the sandbox's env.sh -----------------------------------------------------------------------


def test_env_sh_names_the_sandbox_as_the_default_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = Credentials.new()
    env_file = write_env_file(tmp_path, credentials, "http://127.0.0.1:8123")
    sourced = subprocess.run(
        ["/bin/sh", "-c", f". '{env_file}' && env"],
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert "CALLBRIDGE_URL=http://127.0.0.1:8123" in sourced
    assert f"BRIDGE_API_TOKEN={credentials.bridge_api_token}" in sourced
    monkeypatch.setenv("CALLBRIDGE_URL", "http://127.0.0.1:8123")
    monkeypatch.setenv("BRIDGE_API_TOKEN", credentials.bridge_api_token)
    no_options = argparse.Namespace(url=None, token=None)
    assert target(no_options) == ("http://127.0.0.1:8123", credentials.bridge_api_token)


@pytest.mark.parametrize(
    ("environ", "url"),
    [
        ({"CALLBRIDGE_URL": "http://127.0.0.1:8123"}, "http://127.0.0.1:8123/twilio/inbound"),
        (
            {"CALLBRIDGE_URL": "http://127.0.0.1:8123/", "PUBLIC_BASE_URL": "https://b.example"},
            "http://127.0.0.1:8123/twilio/inbound",
        ),
        ({"PUBLIC_BASE_URL": "https://b.example"}, "https://b.example/twilio/inbound"),
    ],
)
def test_simulate_inbound_posts_to_callbridge_url_first(environ: dict[str, str], url: str) -> None:
    from bridge.cli.simulate import inbound_url

    assert inbound_url(None, environ) == url


def test_a_bad_callbridge_url_is_named() -> None:
    from bridge.cli.errors import UsageError
    from bridge.cli.simulate import inbound_url

    with pytest.raises(UsageError, match=r"^CALLBRIDGE_URL='sandbox': expected a URL like "):
        inbound_url(None, {"CALLBRIDGE_URL": "sandbox"})


# --- caller-controlled text on the operator's terminal ------------------------------------------

# What a caller can put in a call record (a SIP From, a transcript, a summary) and what a
# terminal would obey: an OSC 52 clipboard write, a screen clear, an 8-bit CSI, a bell, a
# line that pretends to be another call, a right-to-left override.
HOSTILE = [
    "\x1b]52;c;cm0gLXJmIH4K\x07",
    "\x1b[2J\x1b[H",
    "\x9b31m",
    "\r\n2025-03-01 12:00:00  inbound  +1→+2",
    "evil\u202etxt.exe",
    "\x00\x7f",
]
SAFE = {"\n"}  # the lines the CLI itself prints
SUMMARY = " ".join(HOSTILE)


def terminal_controls(text: str) -> set[str]:
    def control(char: str) -> bool:
        code = ord(char)
        return code < 0x20 or 0x7F <= code <= 0x9F or 0x202A <= code <= 0x202E

    surrogates = {char for char in text if 0xD800 <= ord(char) <= 0xDFFF}
    return {char for char in text if control(char) and char not in SAFE} | surrogates


@pytest.fixture
def hostile_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A call in this machine's call log whose every caller-written field is hostile."""
    url = f"sqlite:///{tmp_path / 'callbridge.sqlite3'}"
    monkeypatch.setenv("DATABASE_URL", url)

    async def fill() -> None:
        await migrate.upgrade(url)
        database = Database(url)
        engine = await database.engine()
        async with engine.begin() as connection:
            await connection.execute(
                insert(calls),
                {
                    "id": "call-hostile",
                    "call_sid": "CA" + "1" * 32,
                    "direction": "inbound",
                    "from_number": "sip:" + HOSTILE[0],
                    "to_number": HOSTILE[3],
                    "rule": HOSTILE[4],
                    "status": "completed",
                    "created_at": T0,
                    "summary": SUMMARY,
                    "error": HOSTILE[1],
                    "transcript": [{"role": HOSTILE[2], "message": text} for text in HOSTILE],
                },
            )
            await connection.execute(
                insert(call_events),
                {"call_id": "call-hostile", "kind": HOSTILE[0], "at": T0, "data": {"x": HOSTILE}},
            )
        await database.dispose()

    asyncio.run(fill())
    return "call-hostile"


@pytest.mark.parametrize(
    "argv", [["calls"], ["calls", "show", "call-hostile"]], ids=["list", "show"]
)
def test_caller_text_cannot_drive_the_terminal(
    hostile_call: str, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, err = run_cli(capsys, *argv)
    assert (code, err) == (0, "")
    assert terminal_controls(out) == set()
    assert "\\x1b]52;c;" in out  # shown, escaped, not dropped
    lines = out.splitlines()
    assert not any(line.startswith("2025-03-01 12:00:00  inbound  +1→+2") for line in lines)


@pytest.mark.parametrize(
    "argv", [["calls", "--json"], ["calls", "show", "call-hostile", "--json"]], ids=["list", "show"]
)
def test_json_escapes_caller_text_and_keeps_it_exact(
    hostile_call: str, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, err = run_cli(capsys, *argv)
    assert (code, err) == (0, "")
    assert terminal_controls(out) == set()
    body = json.loads(out)
    call = body[0] if isinstance(body, list) else body
    assert call["from"] == "sip:" + HOSTILE[0]
    assert call["summary"] == SUMMARY
    if "transcript" in call:
        assert [turn["message"] for turn in call["transcript"]] == HOSTILE


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Ada said: hello", "Ada said: hello"),
        ("naïve café 東京 👋", "naïve café 東京 👋"),
        ("\x1b]52;c;aGk=\x07", "\\x1b]52;c;aGk=\\x07"),
        ("\x1b[2J", "\\x1b[2J"),
        ("a\tb\r\nc", "a\\tb\\r\\nc"),
        ("\x9b1m\x7f\x00", "\\x9b1m\\x7f\\x00"),
        ("abc\u202edef\u2066\u2028", "abc\\u202edef\\u2066\\u2028"),
        ("\udc80", "\\udc80"),
    ],
)
def test_printable(text: str, shown: str) -> None:
    from bridge.cli.terminal import printable

    assert printable(text) == shown


def test_a_bridge_at_url_cannot_drive_the_terminal_through_its_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def listing(request: Any) -> JSONResponse:
        return JSONResponse({"calls": [{"id": "x"}], "next_cursor": HOSTILE[1]})

    async def one(request: Any) -> JSONResponse:
        return JSONResponse({"error": "no call " + HOSTILE[0]}, status_code=404)

    app = Starlette(routes=[Route("/calls", listing), Route("/calls/{sid}", one)])
    with running_server(app) as url:
        code, _, err = run_cli(capsys, "calls", "--limit", "1", "--url", url, "--token", "t")
        assert code == 0
        assert terminal_controls(err) == set() and "\\x1b[2J" in err
        code, _, err = run_cli(capsys, "calls", "show", "x", "--url", url, "--token", "t")
        assert code == 1
        assert terminal_controls(err) == set() and "\\x1b]52" in err
