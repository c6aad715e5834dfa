"""The campaign events a worker writes, through the outbox, in the transaction of the
change that causes them (`campaign.recipient.finished`, `campaign.finished`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.events.outbox import Outbox


async def recipient_finished(
    connection: AsyncConnection,
    events: Outbox | None,
    *,
    campaign_id: str,
    recipient: Any,
    state: str,
    attempts: int,
    call_sid: str | None,
    error: str | None = None,
    call_successful: str | None = None,
) -> None:
    """A recipient reached a final state (once per recipient)."""
    if events is None:
        return
    data: dict[str, Any] = {
        "campaign_id": campaign_id,
        "recipient_id": recipient.id,
        "external_id": recipient.external_id,
        "phone": recipient.phone,
        "state": state,
        "attempts": attempts,
        "call_sid": call_sid,
        "call_successful": call_successful,
    }
    if error:
        data["error"] = error
    await events.enqueue(
        connection,
        "campaign.recipient.finished",
        data,
        dedupe_key=f"campaign.recipient.finished:{recipient.id}",
    )


async def campaign_finished(
    connection: AsyncConnection,
    events: Outbox | None,
    *,
    campaign_id: str,
    name: str,
    state: str,
    counts: dict[str, int],
) -> None:
    if events is None:
        return
    await events.enqueue(
        connection,
        "campaign.finished",
        {"campaign_id": campaign_id, "name": name, "state": state, "recipients": counts},
        dedupe_key=f"campaign.finished:{campaign_id}",
    )
