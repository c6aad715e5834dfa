"""Signed-out UI sessions, kept in the database so that every worker process and a
restart see them: a session cookie copied before its sign-out is refused everywhere.

Each is a row of `signed_out_sessions`, kept until the session would have expired
anyway (then it is deleted at the next sign-out). "Sign out everywhere" adds a row to
`ui_sign_outs`: every session issued before its time is refused. This module is the
only writer of both.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from bridge.storage.database import Database
from bridge.storage.tables import signed_out_sessions as table
from bridge.storage.tables import ui_sign_outs


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


async def revoke_all(database: Database, now: datetime | None = None) -> None:
    """Refuse every session issued until now (`now`), on every device."""
    engine = await database.engine()
    async with engine.begin() as connection:
        await connection.execute(insert(ui_sign_outs).values(at=now or datetime.now(UTC)))
        # Only the latest counts.
        latest = select(func.max(ui_sign_outs.c.id)).scalar_subquery()
        await connection.execute(delete(ui_sign_outs).where(ui_sign_outs.c.id < latest))


async def revoked(database: Database, session_id: str, issued_at: float | None = None) -> bool:
    """Signed out, alone or everywhere (`issued_at`: the session's unix time)."""
    engine = await database.engine()
    where = table.c.session_id == session_id
    async with engine.connect() as connection:
        row = (await connection.execute(select(table.c.session_id).where(where))).first()
        if row is not None:
            return True
        latest = (await connection.execute(select(func.max(ui_sign_outs.c.at)))).scalar()
    if latest is None:
        return False
    if latest.tzinfo is None:
        latest = latest.replace(tzinfo=UTC)
    return issued_at is None or issued_at <= latest.timestamp()
