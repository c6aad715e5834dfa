"""Server-side campaigns: durable, paced across every worker, inside each callee's local
calling hours, retried by outcome, never to a number on the do-not-call list.

Modules: `states` (recipient and campaign states), `options` (what a campaign may
ask for, validated), `hours` (calling hours in the callee's own time zones).
"""
