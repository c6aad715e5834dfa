"""Signing what the bridge sends to the business's own systems (outgoing events and
the lookup hook) per the Standard Webhooks specification, with its reference
implementation, so receivers verify with any Standard Webhooks library.

Headers: `webhook-id` (stable across retries, for the receiver to deduplicate),
`webhook-timestamp` (unix seconds) and `webhook-signature`: `v1,<base64 HMAC-SHA256>`
of `{id}.{timestamp}.{body}`, one per secret (space separated) during a rotation.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks import Webhook

from bridge.secret import Secret


class WebhookSigner:
    def __init__(self, secrets: Sequence[Secret]) -> None:
        if not secrets:
            raise ValueError("a signer needs at least one secret")
        # The library keeps the decoded key; it never prints it.
        self._signers = [Webhook(secret.reveal()) for secret in secrets]

    def headers(self, message_id: str, timestamp: datetime, body: bytes) -> dict[str, str]:
        """The three Standard Webhooks headers for `body` sent at `timestamp`."""
        at = timestamp.astimezone(UTC)
        text = body.decode()
        signatures = " ".join(
            signer.sign(msg_id=message_id, timestamp=at, data=text) for signer in self._signers
        )
        return {
            "webhook-id": message_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": signatures,
        }
