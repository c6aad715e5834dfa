"""Answering a call: inbound calls (route, act, fall back), the answer of an outbound
call, and moving a live call to a person (transfer)."""
