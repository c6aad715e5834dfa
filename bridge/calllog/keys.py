"""Finding a call by what a user holds: its Twilio call SID, the bridge's id, or its
conversation id (`GET /calls/{key}`, its audio, `callbridge calls show`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.storage.tables import calls


async def call_by_key(connection: AsyncConnection, key: str) -> Row[Any] | None:
    """The newest call whose call SID, else id, else conversation id is `key`."""
    if "\x00" in key:  # never stored (bridge.calllog.records), and PostgreSQL refuses it
        return None
    for column in (calls.c.call_sid, calls.c.id, calls.c.conversation_id):
        query = (
            select(calls)
            .where(column == key)
            .order_by(calls.c.created_at.desc(), calls.c.id.desc())
            .limit(1)
        )
        row = (await connection.execute(query)).first()
        if row is not None:
            return row
    return None
