"""Storage Commitment transactions kept in the shared database (tables:
appliance.store.commitment_tables), so a pending one survives a restart.

A transaction is `pending` until each of its items is decided, then `committed` (all were) or
`failed` (at least one was not); its report is due from then until it is sent (`reported_at`).
A Transaction UID seen before from the same AE title with the same instances is the requester
asking again (its report did not reach it): the kept transaction is reported again. Any other
reuse of a Transaction UID gets a transaction of its own whose every item fails with 0x0131
(duplicate transaction UID).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass

from appliance.commitment.checker import COMMITTED, DUPLICATE_TRANSACTION_UID, FAILED, PENDING
from appliance.commitment.request import CommitmentRequest
from appliance.store.database import Database

STATES = (PENDING, COMMITTED, FAILED)


@dataclass(frozen=True)
class Item:
    position: int
    sop_class_uid: str
    sop_instance_uid: str
    result: str
    failure_reason: int | None


@dataclass(frozen=True)
class Transaction:
    id: int
    transaction_uid: str
    calling_aet: str
    association_id: int | None
    state: str
    received_at: float
    decided_at: float | None
    reported_at: float | None
    report_via: str | None
    report_error: str | None


def _transaction(row: sqlite3.Row) -> Transaction:
    return Transaction(row["id"], row["transaction_uid"], row["calling_aet"],
                       row["association_id"], row["state"], row["received_at"],
                       row["decided_at"], row["reported_at"], row["report_via"],
                       row["report_error"])


class CommitmentStore:
    """Reads and writes the commitment tables (migrated with the instance store's)."""

    def __init__(self, db: Database):
        self.db = db

    def add(self, request: CommitmentRequest, calling_aet: str,
            association_id: int | None) -> tuple[Transaction, str]:
        """Keep a request; returns the transaction and what it is: "new", "repeat" (reported
        again) or "duplicate" (0x0131 for every item)."""
        now = time.time()
        items = [list(item) for item in request.items]
        with self.db.transaction() as tx:
            for row in tx.execute("SELECT * FROM commitment_transactions WHERE "
                                  "transaction_uid = ? ORDER BY id",
                                  (request.transaction_uid,)).fetchall():
                kept = [[r["sop_class_uid"], r["sop_instance_uid"]] for r in tx.execute(
                    "SELECT sop_class_uid, sop_instance_uid FROM commitment_items WHERE "
                    "transaction_id = ? ORDER BY position", (row["id"],))]
                if row["calling_aet"] == calling_aet and json.dumps(kept) == json.dumps(items):
                    tx.execute("UPDATE commitment_transactions SET association_id = ?, "
                               "reported_at = NULL, report_via = NULL, report_error = NULL, "
                               "next_report_at = 0 WHERE id = ?", (association_id, row["id"]))
                    return self._get(tx, row["id"]), "repeat"
            duplicate = tx.execute("SELECT 1 FROM commitment_transactions WHERE "
                                   "transaction_uid = ?",
                                   (request.transaction_uid,)).fetchone() is not None
            state, decided = (FAILED, now) if duplicate else (PENDING, None)
            transaction_id = tx.execute(
                "INSERT INTO commitment_transactions (transaction_uid, calling_aet, "
                "association_id, state, received_at, decided_at) VALUES (?, ?, ?, ?, ?, ?)",
                (request.transaction_uid, calling_aet, association_id, state, now,
                 decided)).lastrowid
            tx.executemany(
                "INSERT INTO commitment_items (transaction_id, position, sop_class_uid, "
                "sop_instance_uid, result, failure_reason) VALUES (?, ?, ?, ?, ?, ?)",
                [(transaction_id, n, cls, inst, FAILED if duplicate else PENDING,
                  DUPLICATE_TRANSACTION_UID if duplicate else None)
                 for n, (cls, inst) in enumerate(request.items)])
            return self._get(tx, transaction_id), "duplicate" if duplicate else "new"

    @staticmethod
    def _get(conn: sqlite3.Connection, transaction_id: int) -> Transaction:
        return _transaction(conn.execute("SELECT * FROM commitment_transactions WHERE id = ?",
                                         (transaction_id,)).fetchone())

    def get(self, transaction_id: int) -> Transaction:
        return self._get(self.db.connection(), transaction_id)

    def items(self, transaction_id: int) -> list[Item]:
        return [Item(r["position"], r["sop_class_uid"], r["sop_instance_uid"], r["result"],
                     r["failure_reason"])
                for r in self.db.connection().execute(
                    "SELECT * FROM commitment_items WHERE transaction_id = ? ORDER BY position",
                    (transaction_id,))]

    def pending(self) -> list[Transaction]:
        return [_transaction(r) for r in self.db.connection().execute(
            "SELECT * FROM commitment_transactions WHERE state = 'pending' ORDER BY id")]

    def decide(self, transaction_id: int, results: dict[int, tuple[str, int | None]]) -> str:
        """Record decided items (position -> (result, reason)); the transaction's state after."""
        with self.db.transaction() as tx:
            tx.executemany("UPDATE commitment_items SET result = ?, failure_reason = ? WHERE "
                           "transaction_id = ? AND position = ?",
                           [(result, reason, transaction_id, position)
                            for position, (result, reason) in results.items()])
            counts = dict(tx.execute("SELECT result, COUNT(*) FROM commitment_items WHERE "
                                     "transaction_id = ? GROUP BY result", (transaction_id,)))
            if counts.get(PENDING):
                return PENDING
            state = FAILED if counts.get(FAILED) else COMMITTED
            tx.execute("UPDATE commitment_transactions SET state = ?, decided_at = ? WHERE "
                       "id = ? AND state = 'pending'", (state, time.time(), transaction_id))
            return state

    def due_reports(self, now: float | None = None) -> list[Transaction]:
        """Decided transactions whose report is not sent and whose next try is due."""
        return [_transaction(r) for r in self.db.connection().execute(
            "SELECT * FROM commitment_transactions WHERE state != 'pending' AND reported_at "
            "IS NULL AND next_report_at <= ? ORDER BY id",
            (time.time() if now is None else now,))]

    def reported(self, transaction_id: int, via: str) -> None:
        with self.db.transaction() as tx:
            tx.execute("UPDATE commitment_transactions SET reported_at = ?, report_via = ?, "
                       "report_error = NULL WHERE id = ?", (time.time(), via, transaction_id))

    def report_failed(self, transaction_id: int, error: str, retry_in: float) -> None:
        with self.db.transaction() as tx:
            tx.execute("UPDATE commitment_transactions SET report_error = ?, next_report_at = ? "
                       "WHERE id = ?", (error, time.time() + retry_in, transaction_id))

    def retry_reports(self) -> int:
        """Make every waiting report due now (after a reload: a peer may have been added)."""
        with self.db.transaction() as tx:
            return tx.execute("UPDATE commitment_transactions SET next_report_at = 0 WHERE "
                              "state != 'pending' AND reported_at IS NULL").rowcount

    def counts(self) -> dict[str, int]:
        """Transactions per state, plus "unreported" (decided, report not sent yet)."""
        conn = self.db.connection()
        counts = {state: 0 for state in STATES}
        counts.update(dict(conn.execute("SELECT state, COUNT(*) FROM commitment_transactions "
                                        "GROUP BY state")))
        counts["unreported"] = conn.execute(
            "SELECT COUNT(*) FROM commitment_transactions WHERE state != 'pending' AND "
            "reported_at IS NULL").fetchone()[0]
        return counts

    def recent(self, limit: int = 50) -> list[Transaction]:
        """Pending and unreported ones first, then the latest."""
        return [_transaction(r) for r in self.db.connection().execute(
            "SELECT * FROM commitment_transactions ORDER BY (reported_at IS NULL) DESC, id DESC "
            "LIMIT ?", (limit,))]
