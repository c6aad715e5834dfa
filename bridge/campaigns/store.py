"""Writing a new campaign and reading one back. The only writer of `campaigns` rows
at creation; workers (bridge.campaigns.worker) move recipients along."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.campaigns.options import CampaignOptions
from bridge.outbound.sealing import Sealer
from bridge.secret import is_secret_variable
from bridge.storage.tables import campaign_recipients, campaigns

ID_PREFIX = "cmp_"
# Rows per INSERT: a 100,000-number campaign is written in a few hundred statements.
BATCH = 1000


def new_campaign_id() -> str:
    return f"{ID_PREFIX}{secrets.token_hex(12)}"


@dataclass(frozen=True)
class NewRecipient:
    """One number to call. `line`: where it came from (CSV line, or JSON index + 1).
    `state` is "pending", or a final state ("do_not_call", "invalid") with `error`."""

    line: int
    phone: str
    variables: dict[str, Any] = field(default_factory=dict)
    external_id: str | None = None
    time_zones: tuple[str, ...] = ()
    state: str = "pending"
    error: str | None = None


async def create_campaign(
    connection: AsyncConnection,
    *,
    name: str,
    agent_id: str | None,
    options: CampaignOptions,
    recipients: Sequence[NewRecipient],
    now: datetime,
    campaign_id: str | None = None,
    sealer: Sealer | None = None,
) -> str:
    """Insert the campaign and its recipients in `connection`'s transaction; its id.

    `secret__` variables are stored sealed (`sealer`), never in clear: without a
    sealer a recipient with one is refused (ValueError)."""
    campaign_id = campaign_id or new_campaign_id()
    start_at = options.starts_at(now)
    await connection.execute(
        insert(campaigns).values(
            id=campaign_id,
            name=name,
            agent_id=agent_id,
            mode=options.mode,
            options=options.model_dump(mode="json"),
            state="active",
            recipient_count=len(recipients),
            start_at=start_at,
            next_dial_at=start_at,
            created_at=now,
            updated_at=now,
        )
    )
    rows = [
        {
            "campaign_id": campaign_id,
            "line": recipient.line,
            "external_id": recipient.external_id,
            "phone": recipient.phone,
            "variables": sealed_variables(recipient.variables, sealer) or None,
            "time_zones": ",".join(recipient.time_zones),
            "state": recipient.state,
            "attempts": 0,
            "next_attempt_at": start_at if recipient.state == "pending" else None,
            "error": recipient.error,
            "updated_at": now,
            "finished_at": None if recipient.state == "pending" else now,
        }
        for recipient in recipients
    ]
    for start in range(0, len(rows), BATCH):
        await connection.execute(insert(campaign_recipients), rows[start : start + BATCH])
    return campaign_id


async def campaign_options(connection: AsyncConnection, campaign_id: str) -> CampaignOptions:
    options = await connection.scalar(
        select(campaigns.c.options).where(campaigns.c.id == campaign_id)
    )
    if options is None:
        raise KeyError(campaign_id)
    return CampaignOptions.model_validate(options)


def sealed_variables(variables: dict[str, Any], sealer: Sealer | None) -> dict[str, Any]:
    """`variables` with the `secret__` ones sealed, for the database."""
    if not any(is_secret_variable(name) for name in variables):
        return variables
    if sealer is None:
        raise ValueError("secret__ variables need BRIDGE_API_TOKEN (they are stored sealed)")
    sealed = sealer.seal({"dynamic_variables": variables})
    assert sealed is not None
    result: dict[str, Any] = sealed["dynamic_variables"]
    return result


def opened_variables(variables: dict[str, Any] | None, sealer: Sealer | None) -> dict[str, Any]:
    """A recipient's stored variables with the `secret__` ones opened, for its call.
    ValueError when they cannot be opened (no sealer, or the key changed)."""
    if not variables or not any(is_secret_variable(name) for name in variables):
        return dict(variables or {})
    if sealer is None:
        raise ValueError("secret__ variables are sealed and BRIDGE_API_TOKEN is not set")
    opened = sealer.unseal({"dynamic_variables": variables})
    assert opened is not None
    result: dict[str, Any] = opened["dynamic_variables"]
    return result
