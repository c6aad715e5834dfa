"""Outgoing events: the durable outbox (outbox), when to retry (schedule), and the
background sender that delivers them signed per Standard Webhooks (sender)."""
