"""The `pending_calls` table: a Twilio-mode call waiting to be answered.

The only writer of that table. The dialer adds a row before Twilio rings the
callee; the outbound answer takes it (once: its sealed `secret__` variables do not
stay longer than they must); a final status callback, or age, drops it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, insert, select, update

from bridge.storage.database import Database
from bridge.storage.tables import pending_calls


class PendingCalls:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def add(self, **values: Any) -> None:
        engine = await self.database.engine()
        async with engine.begin() as connection:
            await connection.execute(insert(pending_calls).values(**values))

    async def set_call_sid(self, pending_id: str, call_sid: str) -> None:
        engine = await self.database.engine()
        async with engine.begin() as connection:
            await connection.execute(
                update(pending_calls)
                .where(pending_calls.c.id == pending_id)
                .values(call_sid=call_sid)
            )

    async def drop(self, pending_id: str) -> None:
        engine = await self.database.engine()
        async with engine.begin() as connection:
            await connection.execute(delete(pending_calls).where(pending_calls.c.id == pending_id))

    async def take(self, pending_id: str) -> Row[Any] | None:
        """The row, deleted as it is read; None when there is none (or it was taken)."""
        engine = await self.database.engine()
        async with engine.begin() as connection:
            row = (
                await connection.execute(
                    select(pending_calls).where(pending_calls.c.id == pending_id)
                )
            ).first()
            if row is not None:
                await connection.execute(
                    delete(pending_calls).where(pending_calls.c.id == pending_id)
                )
        return row

    async def forget(self, call_sid: str, *, created_before: datetime) -> None:
        """Drop the rows of `call_sid`, and any created before `created_before`."""
        engine = await self.database.engine()
        async with engine.begin() as connection:
            await connection.execute(
                delete(pending_calls).where(
                    (pending_calls.c.call_sid == call_sid)
                    | (pending_calls.c.created_at < created_before)
                )
            )
