"""Reading the do-not-call list (the writes are in bridge.dnc's other modules)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.storage.tables import do_not_call

# Numbers per IN (...) query: well under every driver's parameter limit.
_CHUNK = 500
LISTED = "on the do-not-call list"


async def listed_reason(connection: AsyncConnection, number: str) -> str | None:
    """Why `number` must not be called (its reason, or LISTED), or None if it may be."""
    row = (
        await connection.execute(select(do_not_call.c.reason).where(do_not_call.c.number == number))
    ).first()
    if row is None:
        return None
    return f"{LISTED}: {row.reason}" if row.reason else LISTED


async def listed_among(connection: AsyncConnection, numbers: Iterable[str]) -> dict[str, str]:
    """The listed ones of `numbers`, each with why (as `listed_reason` says it)."""
    wanted = sorted(set(numbers))
    found: dict[str, str] = {}
    for start in range(0, len(wanted), _CHUNK):
        rows = await connection.execute(
            select(do_not_call.c.number, do_not_call.c.reason).where(
                do_not_call.c.number.in_(wanted[start : start + _CHUNK])
            )
        )
        for number, reason in rows:
            found[number] = f"{LISTED}: {reason}" if reason else LISTED
    return found
