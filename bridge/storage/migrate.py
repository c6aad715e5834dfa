"""Database migrations (Alembic): `callbridge db upgrade`, and the startup check.

Migrations run in the Procfile's release phase and from `callbridge db upgrade`
(`callbridge serve` runs it first, so a local SQLite file needs no setup). A server
started on a database that is behind refuses to run and says what to do.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from bridge.storage.database import create_engine

MIGRATIONS = Path(__file__).parent / "migrations"


class NotMigrated(RuntimeError):
    """The database is not at the code's schema version."""


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # Alembic interpolates %; a password may contain one.
    config.set_main_option("bridge.database_url", database_url.replace("%", "%%"))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("")).get_current_head()
    assert head is not None
    return head


async def current_revision(database_url: str) -> str | None:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_revision_of)
    finally:
        await engine.dispose()


def _revision_of(connection: Connection) -> str | None:
    revision: str | None = MigrationContext.configure(connection).get_current_revision()
    return revision


async def upgrade(database_url: str) -> None:
    """Bring the database to the newest schema (a no-op when it is there)."""
    # env.py runs its own event loop; give it a thread of its own.
    await asyncio.to_thread(command.upgrade, alembic_config(database_url), "head")


async def ensure_current(database_url: str) -> None:
    current = await current_revision(database_url)
    head = head_revision()
    if current != head:
        state = "has no schema yet" if current is None else f"is at revision {current}"
        raise NotMigrated(
            f"the database {state}; the code needs {head}. Run `callbridge db upgrade` "
            "(on Heroku it runs in the release phase)."
        )
