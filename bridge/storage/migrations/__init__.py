"""Alembic migrations of the bridge's database (see bridge.storage.migrate)."""
