"""Persistent state in one SQLite (WAL) database: each component owns its tables."""

from appliance.store.database import Database, DatabaseError, Migration

__all__ = ["Database", "DatabaseError", "Migration"]
