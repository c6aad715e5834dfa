"""Dialling a campaign call at its slot, right before the request to Twilio.

The worker starts placing a call LEAD ahead of its slot, so that the bridge's own
bookkeeping (its Idempotency-Key, the pending call) is written by then; the Twilio
client of the worker's dialer then waits for the slot itself before it sends the
request, and sends nothing once the slot is more than LATE past (the worker gives the
claim back for a new slot). What reaches Twilio is paced by the slots, not by how long
the database took, even on a machine too busy to keep time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bridge.twilio.rest import CreatedCall, TwilioError, TwilioREST

# How long ahead of its slot a call's placement starts.
LEAD = timedelta(seconds=1.0)
# A call reached later than this after its slot is not dialled: dialling it late
# could crowd more than the campaign's rate into one second.
LATE = timedelta(seconds=0.1)


@dataclass
class Slot:
    at: datetime
    missed: bool = False  # set when the request was not sent for being late


# The slot of the campaign call being placed in this task (None: not a campaign call).
SLOT: ContextVar[Slot | None] = ContextVar("campaign_slot", default=None)


class PacedTwilio(TwilioREST):
    """A Twilio client whose `create_call` waits for the campaign call's slot."""

    def __init__(
        self,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.now = now
        self.sleep = sleep

    async def create_call(self, **kwargs: Any) -> CreatedCall:
        slot = SLOT.get()
        if slot is not None:
            wait = (slot.at - self.now()).total_seconds()
            if wait > 0:
                await self.sleep(wait)
            # A stalled process may wake up long after it meant to.
            if self.now() - slot.at > LATE:
                slot.missed = True
                raise TwilioError(
                    "the campaign call's dial slot had passed: not sent", not_sent=True
                )
        return await super().create_call(**kwargs)
