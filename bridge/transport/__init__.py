"""HTTP transports for upstream clients: the pooled keep-alive transport, the aiohttp
option, and per-endpoint timing."""
