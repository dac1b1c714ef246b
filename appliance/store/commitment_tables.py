"""The Storage Commitment tables of the shared database (PS3.4 Annex J; served by
appliance.commitment): kept here, beside the instances and the forward queue, because
retention's query reads them (an instance a pending commitment names is never deleted) and so
they exist wherever the instance store's database is opened.

- `commitment_transactions`: one row per N-ACTION accepted: Transaction UID (not unique: a
  conflicting repeat gets its own row, answered with 0x0131), the requester's AE title, the
  engine's association id it came on, `state` (pending until every item is decided, then
  committed or failed), when it was received, decided and reported, and why a report could
  not be sent yet.
- `commitment_items`: the Referenced SOP Sequence of each, in order, with each item's result
  (pending, committed, failed) and Failure Reason.
- `instance_hashes`: the content hash (SHA-256) and size of each stored instance: taken by the
  DICOM engine while it wrote the file and recorded in the instance row's own transaction
  (`record_hash`), else by the commitment service after the store; `received_at` says which
  copy (a replaced duplicate is hashed again).
"""

from __future__ import annotations

import sqlite3

from appliance.store.database import Migration

OWNER = "commitment"
MIGRATIONS = [Migration(OWNER, 1, """
CREATE TABLE commitment_transactions (
    id INTEGER PRIMARY KEY,
    transaction_uid TEXT NOT NULL,
    calling_aet TEXT NOT NULL,
    association_id INTEGER,
    state TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'committed', 'failed')),
    received_at REAL NOT NULL,
    decided_at REAL,
    reported_at REAL,
    report_via TEXT,
    report_error TEXT,
    next_report_at REAL NOT NULL DEFAULT 0
);
CREATE INDEX commitment_transactions_uid ON commitment_transactions (transaction_uid);
CREATE INDEX commitment_transactions_state ON commitment_transactions (state, reported_at);
CREATE TABLE commitment_items (
    transaction_id INTEGER NOT NULL REFERENCES commitment_transactions (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    sop_class_uid TEXT NOT NULL,
    sop_instance_uid TEXT NOT NULL,
    result TEXT NOT NULL DEFAULT 'pending'
        CHECK (result IN ('pending', 'committed', 'failed')),
    failure_reason INTEGER,
    PRIMARY KEY (transaction_id, position)
);
CREATE INDEX commitment_items_instance ON commitment_items (sop_instance_uid);
CREATE TABLE instance_hashes (
    instance_id INTEGER PRIMARY KEY REFERENCES instances (id) ON DELETE CASCADE,
    received_at REAL NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL
);
""")]

#: SQL: true for an instance row `i` that a pending commitment transaction names.
NAMED_BY_PENDING = (
    "EXISTS (SELECT 1 FROM commitment_items ci JOIN commitment_transactions ct "
    "ON ct.id = ci.transaction_id WHERE ct.state = 'pending' "
    "AND ci.sop_instance_uid = i.sop_instance_uid)")


def record_hash(conn: sqlite3.Connection, instance_id: int, received_at: float, size: int,
                digest: str) -> None:
    """Record the SHA-256 (hex) and size of the copy of an instance received at
    `received_at` (replacing an older copy's)."""
    conn.execute("INSERT OR REPLACE INTO instance_hashes (instance_id, received_at, size, "
                 "sha256) VALUES (?, ?, ?, ?)", (instance_id, received_at, size, digest))
