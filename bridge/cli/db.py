"""`callbridge db upgrade` and `callbridge db current`: the database schema."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from bridge.cli.api import require_database
from bridge.cli.errors import Failed, UsageError

if TYPE_CHECKING:
    from bridge.calllog.retention import Pruned
    from bridge.settings import Settings


def add_parser(commands: Any) -> None:
    db = commands.add_parser("db", help="the database schema (DATABASE_URL)")
    db_commands = db.add_subparsers(title="db commands")
    upgrade = db_commands.add_parser("upgrade", help="migrate the database to the newest schema")
    upgrade.set_defaults(handler=_upgrade)
    current = db_commands.add_parser("current", help="show the schema revision and the newest")
    current.set_defaults(handler=_current)
    prune = db_commands.add_parser(
        "prune", help="delete transcripts and recordings older than N days (personal data)"
    )
    prune.add_argument("--days", type=int, default=None, help="default: $RETENTION_DAYS")
    prune.set_defaults(handler=_prune)


def upgrade_database(settings: Settings) -> str:
    """Create or migrate the database: with `serve`, the only commands that create one."""
    import asyncio

    from bridge.storage import migrate

    asyncio.run(migrate.upgrade(settings.database_url))
    return migrate.head_revision()


def _upgrade(args: argparse.Namespace) -> int:
    from bridge.settings import Settings

    settings = Settings.from_env()
    revision = upgrade_database(settings)
    print(f"database at revision {revision} (the newest)")
    return 0


def _current(args: argparse.Namespace) -> int:
    import asyncio

    from bridge.settings import Settings
    from bridge.storage import migrate

    settings = Settings.from_env()
    head = migrate.head_revision()
    try:
        require_database(settings.database_url, url_option=False)
    except Failed as missing:  # reported as a database without a schema, not created
        print(f"database: no schema; newest: {head}")
        print(f"callbridge: {missing}", file=sys.stderr)
        return 1
    current = asyncio.run(migrate.current_revision(settings.database_url))
    print(f"database: {current or 'no schema'}; newest: {head}")
    return 0 if current == head else 1


def _prune(args: argparse.Namespace) -> int:
    import asyncio

    from bridge.audio.opening import open_audio_store
    from bridge.audio.store import AudioStoreError
    from bridge.calllog.retention import prune
    from bridge.settings import Settings
    from bridge.storage.database import Database

    settings = Settings.from_env()
    days = args.days or settings.retention_days
    if not days:
        raise UsageError("give --days N or set RETENTION_DAYS")
    if days < 1:
        raise UsageError("--days must be at least 1")
    require_database(settings.database_url, url_option=False)
    database = Database(settings.database_url)

    async def run() -> Pruned:
        try:
            return await prune(database, store=open_audio_store(settings), days=days)
        finally:
            await database.dispose()

    try:
        result = asyncio.run(run())
    except AudioStoreError as exc:
        raise Failed(
            f"{exc}; the call log still names all that is left: run it again when the store is back"
        ) from None
    print(
        f"older than {days} days: {result.calls} call(s) cleared, "
        f"{result.audio_files} audio file(s) deleted from {settings.audio_store_url}, "
        f"{result.recordings} recording(s) cleared, {result.events} webhook body(ies) emptied"
    )
    return 0
