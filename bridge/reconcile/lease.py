"""A named lease in the `leases` table: one holder at a time across processes and
dynos, for `ttl` seconds unless renewed. A holder that dies (SIGKILL, a dyno
stopped) holds it until it expires; then anyone may take it over.

Taking it is one statement that works on SQLite and PostgreSQL: insert the row, or,
when it exists, take it over only if it has expired (or is ours already), and read
back whether it is ours (`INSERT … ON CONFLICT DO UPDATE … WHERE … RETURNING`)."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, delete, update
from sqlalchemy.dialects import postgresql, sqlite

from bridge.storage.database import Database
from bridge.storage.tables import leases


def holder_name() -> str:
    """This process, recognisably in the table: host, pid and a random tail."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(4)}"


class Lease:
    def __init__(
        self,
        database: Database,
        name: str,
        *,
        ttl: float,
        holder: str | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.database = database
        self.name = name
        self.ttl = ttl
        self.holder = holder or holder_name()
        self.now = now

    async def acquire(self) -> bool:
        """True when this holder has the lease now (taken, taken over, or kept)."""
        engine = await self.database.engine()
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        now = self.now()
        statement = dialect.insert(leases).values(
            name=self.name, holder=self.holder, expires_at=now + timedelta(seconds=self.ttl)
        )
        statement = statement.on_conflict_do_update(
            index_elements=["name"],
            set_={"holder": statement.excluded.holder, "expires_at": statement.excluded.expires_at},
            where=(leases.c.expires_at < now) | (leases.c.holder == self.holder),
        ).returning(leases.c.holder)
        async with engine.begin() as connection:
            taken = (await connection.execute(statement)).scalar()
        return taken == self.holder

    async def renew(self) -> bool:
        """Push the expiry `ttl` ahead; False when the lease is no longer ours."""
        engine = await self.database.engine()
        async with engine.begin() as connection:
            result = await connection.execute(
                update(leases)
                .where(and_(leases.c.name == self.name, leases.c.holder == self.holder))
                .values(expires_at=self.now() + timedelta(seconds=self.ttl))
            )
        return bool(result.rowcount)

    async def release(self) -> None:
        engine = await self.database.engine()
        async with engine.begin() as connection:
            await connection.execute(
                delete(leases).where(
                    and_(leases.c.name == self.name, leases.c.holder == self.holder)
                )
            )
