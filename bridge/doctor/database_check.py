"""The database DATABASE_URL names can be reached and has the code's schema.

Read only: a SQLite file that does not exist yet is not created here (`callbridge db
upgrade`, or `callbridge serve`, creates it); only its folder is checked."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bridge.doctor.environment import Environment
from bridge.doctor.results import CheckResult, failed, passed
from bridge.settings.diagnostics import without_password
from bridge.storage.database import async_database_url
from bridge.storage.migrate import current_revision, head_revision

# Named as a setting: it is the check of DATABASE_URL (default: a SQLite file here).
NAME, TITLE = "settings.DATABASE_URL", "settings DATABASE_URL"
FIX_URL = (
    "set DATABASE_URL to a database URL like postgresql://user:password@host/name, or "
    "unset it for the SQLite file ./callbridge.sqlite3"
)
FIX_UPGRADE = "run `callbridge db upgrade` (on Heroku it runs in the release phase)"


async def check_database(env: Environment, *, timeout: float) -> CheckResult:
    url = env.settings.database_url
    shown = without_password(url)
    try:
        parsed = make_url(async_database_url(url))
    except (ArgumentError, ValueError) as exc:
        return failed(NAME, TITLE, f"{shown} is not a database URL ({exc})", FIX_URL)
    if parsed.get_backend_name() == "sqlite":
        missing = _sqlite_not_there_yet(shown, parsed.database or "")
        if missing is not None:
            return missing
    try:
        async with asyncio.timeout(timeout):
            revision = await current_revision(url)
    except TimeoutError:
        return failed(NAME, TITLE, f"{shown}: no answer within {timeout:g} s", FIX_URL)
    except Exception as exc:  # any driver's error: reported, as the server would meet it
        return failed(
            NAME, TITLE, f"{shown}: could not connect: {type(exc).__name__}: {exc}", FIX_URL
        )
    head = head_revision()
    if revision == head:
        return passed(NAME, TITLE, f"{shown}: reachable, schema up to date ({head})")
    state = "has no schema yet" if revision is None else f"is at revision {revision}"
    detail = f"{shown}: reachable, but the database {state}; the code needs {head}"
    return failed(NAME, TITLE, detail, FIX_UPGRADE)


def _sqlite_not_there_yet(shown: str, database: str) -> CheckResult | None:
    """The line for a SQLite file that does not exist (connecting would create it),
    None when there is a file to open."""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    path = Path(database)
    if path.exists():
        return None
    folder = path.absolute().parent
    if not folder.is_dir():
        return failed(NAME, TITLE, f"{shown}: the folder {folder} does not exist", FIX_URL)
    if not os.access(folder, os.W_OK | os.X_OK):
        return failed(NAME, TITLE, f"{shown}: cannot create a file in {folder}", FIX_URL)
    detail = (
        f"{shown}: no database file yet; `callbridge db upgrade` (or `callbridge serve`) "
        f"creates {path.absolute()}"
    )
    return passed(NAME, TITLE, detail)
