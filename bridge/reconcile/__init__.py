"""Reconciliation: what the bridge missed, fetched from its upstreams and stored as if
it had arrived (bridge.reconcile.run). Post-call webhooks are not retried by
ElevenLabs and a status callback answered 5xx is not retried by Twilio, so a deploy,
a crash or a database outage would otherwise lose transcripts and final statuses.

`callbridge reconcile` runs it once; the server runs it in the background
(bridge.reconcile.background), one process at a time under a database lease
(bridge.reconcile.lease).
"""

from bridge.reconcile.run import Bounds, Outcome, Reconciler

__all__ = ["Bounds", "Outcome", "Reconciler"]
