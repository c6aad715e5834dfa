"""The call log: one record per call and its events (records), the batched inbound
writer, post-call webhooks, queries, retention, and the per-call log line."""
