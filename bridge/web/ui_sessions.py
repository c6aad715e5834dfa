"""Signed-out UI sessions, kept in the database so that every worker process and a
restart see them: a session cookie copied before its sign-out is refused everywhere.

Each is a row of `signed_out_sessions`, kept until the session would have expired
anyway (then it is deleted at the next sign-out). This module is its only writer.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from bridge.storage.database import Database
from bridge.storage.tables import signed_out_sessions as table


async def revoke(database: Database, session_id: str, expires: int) -> None:
    """Refuse session `session_id` from now on (it expires at unix time `expires`)."""
    engine = await database.engine()
    now = datetime.now(UTC)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                insert(table).values(
                    session_id=session_id, expires_at=datetime.fromtimestamp(expires, UTC)
                )
            )
    except IntegrityError:
        pass  # signed out twice
    async with engine.begin() as connection:
        await connection.execute(delete(table).where(table.c.expires_at < now))


async def revoked(database: Database, session_id: str) -> bool:
    engine = await database.engine()
    where = table.c.session_id == session_id
    async with engine.connect() as connection:
        row = (await connection.execute(select(table.c.session_id).where(where))).first()
    return row is not None
