"""A callee who says "don't call me again" mid-call (`POST /calls/opt-out`, an
ElevenLabs server tool): their number goes on the list, their waiting campaign calls
stop, in one transaction.

The callee is the other end of the call in the call log: the `to` number of an
outbound call, the `from` number of an inbound one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge import phone
from bridge.dnc.entries import Added, add, clean_reason
from bridge.storage.tables import calls

DEFAULT_REASON = "asked not to be called again during call {call_sid}"


class NoSuchCall(LookupError):
    pass


class NoNumber(ValueError):
    """The call's other end has no number to list (withheld, a SIP or client caller)."""


@dataclass(frozen=True)
class OptedOut:
    number: str
    direction: str
    # The call's Twilio SID as the call log has it (None for a call known only by its
    # conversation id).
    call_sid: str | None
    added: Added


async def opt_out(
    connection: AsyncConnection, call_sid: str, *, reason: str | None, now: datetime
) -> OptedOut:
    """List the callee of `call_sid` (a Twilio call SID, or the conversation id of a
    native call). Raises NoSuchCall, or NoNumber when the callee has none."""
    row = (
        await connection.execute(
            select(calls.c.call_sid, calls.c.direction, calls.c.from_number, calls.c.to_number)
            .where(or_(calls.c.call_sid == call_sid, calls.c.conversation_id == call_sid))
            .limit(1)
        )
    ).first()
    if row is None:
        raise NoSuchCall(call_sid)
    number = (row.to_number if row.direction == "outbound" else row.from_number) or ""
    if not phone.is_e164(number) or phone.is_anonymous(number):
        raise NoNumber(f"the {_other_end(row.direction)} of call {call_sid} has no phone number")
    added = await add(
        connection,
        number,
        reason=clean_reason(reason) or DEFAULT_REASON.format(call_sid=call_sid),
        source="opt_out",
        now=now,
    )
    return OptedOut(number=number, direction=row.direction, call_sid=row.call_sid, added=added)


def _other_end(direction: str) -> str:
    return "callee" if direction == "outbound" else "caller"
