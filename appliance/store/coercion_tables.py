"""The de-identification UID map of the shared database (issue 19, `deidentify = true` on a
route): every original UID the Basic Profile replaces gets one new UID, kept here so the same
original always maps to the same new one: the instances of one study arrive in one new study,
and a second send of an instance carries the same new UIDs as the first.

- `deid_uids`: original UID -> replacement (a `2.25.` UUID-derived UID, PS3.5 B.2), and when
  it was made. Rows are never deleted (retention removes instances, not their mapping), so an
  instance stored again later still gets its first replacement.
"""

from __future__ import annotations

import threading
import time
import uuid

from appliance.store.database import Database, Migration

OWNER = "coercion"
MIGRATIONS = [Migration(OWNER, 1, """
CREATE TABLE deid_uids (
    original TEXT PRIMARY KEY,
    replacement TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL
);
""")]


def new_uid() -> str:
    """A fresh UID in the 2.25 form (UUID as a decimal integer)."""
    return f"2.25.{uuid.uuid4().int}"


class UidMap:
    """Original UID -> its one replacement; safe to share between threads (each uses its own
    connection; two threads mapping the same new UID at once agree on the first insert)."""

    def __init__(self, db: Database, cache_size: int = 4096):
        self.db = db
        self.cache_size = cache_size
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()

    def __call__(self, original: str) -> str:
        with self._lock:
            cached = self._cache.get(original)
        if cached is not None:
            return cached
        row = self.db.connection().execute(
            "SELECT replacement FROM deid_uids WHERE original = ?", (original,)).fetchone()
        if row is None:
            with self.db.transaction() as conn:
                conn.execute("INSERT OR IGNORE INTO deid_uids (original, replacement, "
                             "created_at) VALUES (?, ?, ?)", (original, new_uid(), time.time()))
                row = conn.execute("SELECT replacement FROM deid_uids WHERE original = ?",
                                   (original,)).fetchone()
        with self._lock:
            if len(self._cache) >= self.cache_size:
                self._cache.clear()
            self._cache[original] = row[0]
        return row[0]
