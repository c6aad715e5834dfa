"""The database: tables, the engine (SQLite or PostgreSQL) and Alembic migrations."""
