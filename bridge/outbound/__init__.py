"""Placing calls: the dialer's three modes, the idempotent placement flow, pending
calls and their sealed secrets, the destination guard, and the AI caller API."""
