"""Signed-out UI sessions, kept in the database so that every worker process and a
restart see them: a session cookie copied before its sign-out is refused everywhere.

Each is a row of `idempotency_keys` under its own scope, kept until the session
would have expired anyway (then it is deleted at the next sign-out): no table of
its own for a handful of short rows.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import and_, delete, insert, select
from sqlalchemy.exc import IntegrityError

from bridge.storage.database import Database
from bridge.storage.tables import idempotency_keys as table

SCOPE = "ui_signed_out"


async def revoke(database: Database, session_id: str, expires: int) -> None:
    """Refuse session `session_id` from now on (it expires at unix time `expires`)."""
    engine = await database.engine()
    now = datetime.now(UTC)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                insert(table).values(
                    scope=SCOPE,
                    key=session_id,
                    request_hash="-",
                    state="done",
                    created_at=now,
                    expires_at=datetime.fromtimestamp(expires, UTC),
                )
            )
    except IntegrityError:
        pass  # signed out twice
    async with engine.begin() as connection:
        await connection.execute(
            delete(table).where(and_(table.c.scope == SCOPE, table.c.expires_at < now))
        )


async def revoked(database: Database, session_id: str) -> bool:
    engine = await database.engine()
    where = and_(table.c.scope == SCOPE, table.c.key == session_id)
    async with engine.connect() as connection:
        row = (await connection.execute(select(table.c.key).where(where))).first()
    return row is not None
