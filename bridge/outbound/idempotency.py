"""`Idempotency-Key`, with the semantics of the well-known payment APIs.

The same key and body return the first response without doing the work again;
the same key with another body is a 422; a duplicate that arrives while the
first is still being worked on is a 409. Keys live 24 hours. Kept in the
database so that every worker process and restart sees them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from bridge.storage.database import Database
from bridge.storage.tables import idempotency_keys

TTL = timedelta(hours=24)
# A request holds its key this long at most; placing a call takes seconds.
LEASE = timedelta(minutes=2)
ABANDONED_STATUS = 500
ABANDONED = {
    "error": "The bridge stopped while handling the first request with this "
    "Idempotency-Key; the call may have been placed.",
    "placed": "unknown",
}
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Replay:
    status: int
    body: dict[str, Any]


class KeyConflict(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def server_key(api_token: str) -> bytes:
    """The key request fingerprints are made with, the same in every process."""
    return hashlib.sha256(b"callbridge idempotency " + api_token.encode()).digest()


def request_hash(scope: str, body: Any, key: bytes = b"") -> str:
    """A keyed fingerprint of the request: with a server-side key, the stored value
    does not let someone who can read the database guess `secret__` variables."""
    canonical = json.dumps([scope, body], sort_keys=True, separators=(",", ":"))
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


class IdempotencyKeys:
    def __init__(
        self,
        database: Database,
        *,
        key: bytes = b"",
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        lease: timedelta = LEASE,
    ) -> None:
        self.database = database
        self.key = key
        self.now = now
        # How long a request holding a key may take before it counts as abandoned
        # (campaign workers use their claim lease, so takeovers agree with it).
        self.lease = lease

    def fingerprint(self, scope: str, body: Any) -> str:
        return request_hash(scope, body, self.key)

    async def begin(self, scope: str, key: str, fingerprint: str) -> Replay | None:
        """None: go ahead (the key is now held). A Replay: answer with it. Or KeyConflict."""
        engine = await self.database.engine()
        now = self.now()
        table = idempotency_keys
        where = and_(table.c.scope == scope, table.c.key == key)
        for _ in range(3):
            try:
                async with engine.begin() as connection:
                    await connection.execute(
                        insert(table).values(
                            scope=scope,
                            key=key,
                            request_hash=fingerprint,
                            state="in_progress",
                            created_at=now,
                            expires_at=now + TTL,
                        )
                    )
                return None
            except IntegrityError:
                pass  # the key is taken: see by whom
            async with engine.begin() as connection:
                row = (await connection.execute(select(table).where(where))).first()
                if row is None:
                    continue  # released meanwhile
                if _aware(row.expires_at) <= now:
                    await connection.execute(delete(table).where(where))
                    continue
            if row.request_hash != fingerprint:
                raise KeyConflict(
                    422, "This Idempotency-Key was already used with a different request."
                )
            if row.state != "done":
                if _aware(row.created_at) + self.lease > now:
                    raise KeyConflict(
                        409, "A request with this Idempotency-Key is still being processed."
                    )
                # The worker holding it died mid-request: what it did is unknown, and
                # every retry gets that answer rather than a second attempt.
                await self.finish(scope, key, ABANDONED_STATUS, ABANDONED)
                return Replay(status=ABANDONED_STATUS, body=ABANDONED)
            return Replay(status=row.response_status, body=row.response_body)
        raise KeyConflict(409, "This Idempotency-Key is busy; try again.")

    async def finish(self, scope: str, key: str, status: int, body: dict[str, Any]) -> None:
        engine = await self.database.engine()
        table = idempotency_keys
        async with engine.begin() as connection:
            await connection.execute(
                update(table)
                .where(and_(table.c.scope == scope, table.c.key == key))
                .values(state="done", response_status=status, response_body=body)
            )

    async def release(self, scope: str, key: str) -> None:
        """Forget the key: the request did nothing, so a retry may do it."""
        engine = await self.database.engine()
        table = idempotency_keys
        async with engine.begin() as connection:
            await connection.execute(
                delete(table).where(and_(table.c.scope == scope, table.c.key == key))
            )


def _aware(moment: datetime) -> datetime:
    # SQLite hands datetimes back without their zone; they were stored in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
