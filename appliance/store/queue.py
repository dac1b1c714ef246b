"""The forward queue: one persistent queue per destination in the shared database.

This module owns the queue's tables (`MIGRATIONS`, run by the instance store, whose index rows
they reference). Rows are created with the instance's index row (appliance.store.instances);
this module moves them on: due items for a destination, done / retry later / failed, the
destination's own state (held, backoff after a failed association, last error), the counts
shown by `appliance queue`, the undelivered instances with their errors, and the instances
retention may delete (every queue row done, never an unforwarded one).

Each row keeps its own last error. A row is `isolated` once the destination aborted or timed out
while that instance was in flight: from then on it is only ever sent alone, until it is
delivered, so one instance a PACS will not take cannot hold up the others.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass

from appliance.core.backoff import backoff_delay
from appliance.store.commitment_tables import NAMED_BY_PENDING
from appliance.store.database import Database, Migration

log = logging.getLogger(__name__)

# Run by the instance store with its own tables (forward_queue references instances).
MIGRATIONS = [
    Migration("forward", 1, """
CREATE TABLE forward_queue (
    instance_id INTEGER NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    destination TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL DEFAULT 0,
    enqueued_at REAL NOT NULL,
    done_at REAL,
    sent_syntax TEXT,
    last_error TEXT,
    PRIMARY KEY (instance_id, destination)
);
CREATE INDEX forward_queue_due ON forward_queue (destination, state, next_attempt);
CREATE TABLE forward_destinations (
    destination TEXT PRIMARY KEY,
    held INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    last_error_at REAL,
    last_success_at REAL
);
"""),
    # An instance in flight when the destination aborted or timed out: sent alone from now on.
    Migration("forward", 2, """
ALTER TABLE forward_queue ADD COLUMN isolated INTEGER NOT NULL DEFAULT 0;
"""),
]


@dataclass(frozen=True)
class QueueItem:
    instance_id: int
    path: str
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    attempts: int
    enqueued_at: float
    isolated: bool = False


@dataclass(frozen=True)
class DestinationCounts:
    destination: str
    pending: int
    failed: int
    done: int
    oldest_pending_at: float | None
    held: bool
    failures: int
    next_attempt: float
    last_error: str | None
    last_error_at: float | None
    last_success_at: float | None
    isolated: int = 0


@dataclass(frozen=True)
class InstanceError:
    """One not yet delivered instance with its own error (shown by `appliance queue`)."""

    sop_instance_uid: str
    state: str  # 'pending' or 'failed'
    isolated: bool
    attempts: int
    next_attempt: float
    error: str


@dataclass(frozen=True)
class StuckInstance:
    """One instance a destination has not taken yet although it was tried (pending with
    attempts, or failed), with what the index knows of it (the queue page's instance list)."""

    sop_instance_uid: str
    state: str  # 'pending' or 'failed'
    isolated: bool
    attempts: int
    next_attempt: float
    enqueued_at: float
    error: str
    patient_id: str
    patient_name: str
    study_uid: str
    path: str  # relative to the instances directory


# Undelivered rows as the queue page lists them: tried and not delivered
STUCK = "q.state = 'failed' OR (q.state = 'pending' AND q.attempts > 0)"
# ... and as `appliance queue` lists errors: failed, isolated, or sent back with an error
WITH_ERROR = ("q.state != 'done' AND (q.state = 'failed' OR q.isolated = 1 OR "
              "q.last_error IS NOT NULL)")


class ForwardQueue:
    """Queue operations; each call runs on the calling thread's database connection."""

    def __init__(self, db: Database):
        self.db = db

    def _ensure(self, conn: sqlite3.Connection, destination: str) -> None:
        conn.execute("INSERT OR IGNORE INTO forward_destinations (destination) VALUES (?)",
                     (destination,))

    # -- the worker's side ------------------------------------------------------------------

    def destination_state(self, destination: str) -> sqlite3.Row:
        with self.db.transaction() as conn:
            self._ensure(conn, destination)
            return conn.execute("SELECT * FROM forward_destinations WHERE destination = ?",
                                (destination,)).fetchone()

    def due(self, destination: str, limit: int, now: float | None = None,
            isolated: bool = False) -> list[QueueItem]:
        """Pending items whose time has come, oldest first: the ones sent in batches, or
        (`isolated=True`) the ones sent alone."""
        now = time.time() if now is None else now
        rows = self.db.connection().execute(
            "SELECT q.instance_id, i.path, i.sop_class_uid, i.sop_instance_uid, "
            "i.transfer_syntax, q.attempts, q.enqueued_at, q.isolated FROM forward_queue q "
            "JOIN instances i ON i.id = q.instance_id "
            "WHERE q.destination = ? AND q.state = 'pending' AND q.next_attempt <= ? "
            "AND q.isolated = ? ORDER BY q.enqueued_at, q.instance_id LIMIT ?",
            (destination, now, int(isolated), limit))
        return [QueueItem(*row[:7], isolated=bool(row[7])) for row in rows]

    def next_due_at(self, destination: str, isolated: bool = False) -> float | None:
        row = self.db.connection().execute(
            "SELECT MIN(next_attempt) FROM forward_queue WHERE destination = ? "
            "AND state = 'pending' AND isolated = ?", (destination, int(isolated))).fetchone()
        return row[0]

    def mark_done(self, destination: str, instance_id: int, syntax: str) -> None:
        self.mark_done_many(destination, [(instance_id, syntax)])

    def mark_done_many(self, destination: str, delivered: list[tuple[int, str]]) -> None:
        """These items (instance id, transfer syntax sent) were delivered: all recorded in one
        transaction, one durable commit (nothing to do for none)."""
        if not delivered:
            return
        now = time.time()
        with self.db.transaction() as conn:
            conn.executemany("UPDATE forward_queue SET state = 'done', done_at = ?, "
                             "sent_syntax = ?, last_error = NULL, isolated = 0 WHERE "
                             "instance_id = ? AND destination = ?",
                             [(now, syntax, instance_id, destination)
                              for instance_id, syntax in delivered])
            self._ensure(conn, destination)
            conn.execute("UPDATE forward_destinations SET failures = 0, next_attempt = 0, "
                         "last_success_at = ? WHERE destination = ?", (now, destination))

    def mark_retry(self, destination: str, errors: dict[int, str], initial: float,
                   maximum: float) -> None:
        """These items (instance id: its own error) failed this time: each tries again after
        its own backoff."""
        now = time.time()
        with self.db.transaction() as conn:
            for instance_id, error in errors.items():
                row = conn.execute("SELECT attempts FROM forward_queue WHERE instance_id = ? "
                                   "AND destination = ?", (instance_id, destination)).fetchone()
                if row is None:
                    continue
                attempts = row[0] + 1
                conn.execute("UPDATE forward_queue SET attempts = ?, next_attempt = ?, "
                             "last_error = ? WHERE instance_id = ? AND destination = ?",
                             (attempts, now + backoff_delay(attempts, initial, maximum), error,
                              instance_id, destination))
                self._note_error(conn, destination, self._about(conn, instance_id, error), now)

    def mark_isolated(self, destination: str, instance_id: int, reason: str) -> None:
        """The destination aborted or timed out while this item was in flight: it is sent
        alone from now on (at once, the first time), never in a batch with others again."""
        now = time.time()
        with self.db.transaction() as conn:
            conn.execute("UPDATE forward_queue SET isolated = 1, attempts = attempts + 1, "
                         "next_attempt = ?, last_error = ? WHERE instance_id = ? AND "
                         "destination = ? AND state = 'pending'",
                         (now, reason, instance_id, destination))
            self._note_error(conn, destination, self._about(conn, instance_id, reason), now)

    @staticmethod
    def _about(conn: sqlite3.Connection, instance_id: int, error: str) -> str:
        """An instance's error as the destination's last error: which instance, and why."""
        row = conn.execute("SELECT sop_instance_uid FROM instances WHERE id = ?",
                           (instance_id,)).fetchone()
        return f"{row[0]}: {error}" if row else error

    def mark_failed(self, destination: str, instance_id: int, reason: str) -> None:
        """The item cannot be delivered as things stand: no more automatic retries."""
        now = time.time()
        with self.db.transaction() as conn:
            conn.execute("UPDATE forward_queue SET state = 'failed', attempts = attempts + 1, "
                         "last_error = ? WHERE instance_id = ? AND destination = ?",
                         (reason, instance_id, destination))
            self._note_error(conn, destination, self._about(conn, instance_id, reason), now)

    def destination_failed(self, destination: str, error: str, initial: float,
                           maximum: float) -> float:
        """The association itself failed: back off the whole destination. Returns the delay."""
        now = time.time()
        with self.db.transaction() as conn:
            self._ensure(conn, destination)
            failures = conn.execute("SELECT failures FROM forward_destinations WHERE "
                                    "destination = ?", (destination,)).fetchone()[0] + 1
            delay = backoff_delay(failures, initial, maximum)
            conn.execute("UPDATE forward_destinations SET failures = ?, next_attempt = ? "
                         "WHERE destination = ?", (failures, now + delay, destination))
            self._note_error(conn, destination, error, now)
        return delay

    @staticmethod
    def _note_error(conn: sqlite3.Connection, destination: str, error: str, now: float) -> None:
        conn.execute("INSERT OR IGNORE INTO forward_destinations (destination) VALUES (?)",
                     (destination,))
        conn.execute("UPDATE forward_destinations SET last_error = ?, last_error_at = ? "
                     "WHERE destination = ?", (error, now, destination))

    def expire(self, destination: str, max_age: float) -> int:
        """Pending items older than `max_age` seconds become failed (kept for `retry`)."""
        cutoff = time.time() - max_age
        with self.db.transaction() as conn:
            cur = conn.execute(
                "UPDATE forward_queue SET state = 'failed', last_error = 'not delivered within "
                "the maximum age' || coalesce(': ' || last_error, '') WHERE destination = ? "
                "AND state = 'pending' AND enqueued_at < ?", (destination, cutoff))
        if cur.rowcount:
            log.error("%s: %d instances not delivered within %.0f hours marked failed",
                      destination, cur.rowcount, max_age / 3600)
        return cur.rowcount

    # -- the operator's side (appliance queue, web page, metrics) ------------------------

    def hold(self, destination: str, held: bool = True) -> None:
        with self.db.transaction() as conn:
            self._ensure(conn, destination)
            conn.execute("UPDATE forward_destinations SET held = ? WHERE destination = ?",
                         (int(held), destination))

    def retry_now(self, destination: str) -> int:
        """Failed items back to pending, and every wait cleared. Returns how many were failed."""
        now = time.time()
        with self.db.transaction() as conn:
            self._ensure(conn, destination)
            failed = conn.execute("SELECT COUNT(*) FROM forward_queue WHERE destination = ? "
                                  "AND state = 'failed'", (destination,)).fetchone()[0]
            conn.execute("UPDATE forward_queue SET state = 'pending', next_attempt = 0, "
                               "enqueued_at = CASE WHEN state = 'failed' THEN ? ELSE enqueued_at "
                               "END WHERE destination = ? AND state IN ('pending', 'failed')",
                               (now, destination))
            conn.execute("UPDATE forward_destinations SET failures = 0, next_attempt = 0 "
                         "WHERE destination = ?", (destination,))
        return failed

    def counts(self, destinations: list[str]) -> list[DestinationCounts]:
        """Per destination (the configured ones, then any others still holding rows)."""
        conn = self.db.connection()
        known = list(destinations)
        for (name,) in conn.execute("SELECT DISTINCT destination FROM forward_queue UNION "
                                    "SELECT destination FROM forward_destinations"):
            if name not in known:
                known.append(name)
        result = []
        for name in known:
            isolated = conn.execute("SELECT COUNT(*) FROM forward_queue WHERE destination = ? "
                                    "AND state = 'pending' AND isolated = 1",
                                    (name,)).fetchone()[0]
            states = dict(conn.execute("SELECT state, COUNT(*) FROM forward_queue WHERE "
                                       "destination = ? GROUP BY state", (name,)).fetchall())
            oldest = conn.execute("SELECT MIN(enqueued_at) FROM forward_queue WHERE "
                                  "destination = ? AND state = 'pending'", (name,)).fetchone()[0]
            dest = conn.execute("SELECT * FROM forward_destinations WHERE destination = ?",
                                (name,)).fetchone()
            result.append(DestinationCounts(
                name, states.get("pending", 0), states.get("failed", 0), states.get("done", 0),
                oldest, bool(dest and dest["held"]), dest["failures"] if dest else 0,
                dest["next_attempt"] if dest else 0.0, dest["last_error"] if dest else None,
                dest["last_error_at"] if dest else None,
                dest["last_success_at"] if dest else None, isolated))
        return result

    def backlog(self, destination: str) -> DestinationCounts:
        """What the LEDs, panel and console are told after every stored instance: pending
        count, oldest pending, held, next attempt (failed and done are left at 0: counting the
        done rows retention keeps would take ever longer, on the receiving thread)."""
        conn = self.db.connection()
        pending, oldest = conn.execute(
            "SELECT COUNT(*), MIN(enqueued_at) FROM forward_queue WHERE destination = ? AND "
            "state = 'pending'", (destination,)).fetchone()
        dest = conn.execute("SELECT held, failures, next_attempt FROM forward_destinations "
                            "WHERE destination = ?", (destination,)).fetchone()
        return DestinationCounts(destination, pending, 0, 0, oldest,
                                 bool(dest and dest["held"]), dest["failures"] if dest else 0,
                                 dest["next_attempt"] if dest else 0.0, None, None, None)

    def instance_errors(self, destination: str, limit: int = 20) -> tuple[list[InstanceError],
                                                                           int]:
        """Undelivered instances with their own error (failed ones, isolated ones, and pending
        ones a failure status sent back to wait), oldest first; and how many there are."""
        items, total = self._undelivered(destination, WITH_ERROR, limit, 0)
        return [InstanceError(s.sop_instance_uid, s.state, s.isolated, s.attempts,
                              s.next_attempt, s.error) for s in items], total

    def stuck(self, destination: str, limit: int = 100,
              offset: int = 0) -> tuple[list[StuckInstance], int]:
        """Instances tried and not delivered (pending with attempts, or failed), oldest first;
        and how many there are."""
        return self._undelivered(destination, STUCK, limit, offset)

    def _undelivered(self, destination: str, condition: str, limit: int,
                     offset: int) -> tuple[list[StuckInstance], int]:
        conn = self.db.connection()
        where = ("FROM forward_queue q JOIN instances i ON i.id = q.instance_id "
                 f"WHERE q.destination = ? AND ({condition})")
        total = conn.execute(f"SELECT COUNT(*) {where}", (destination,)).fetchone()[0]
        rows = conn.execute(
            f"SELECT i.sop_instance_uid, q.state, q.isolated, q.attempts, q.next_attempt, "
            f"q.enqueued_at, q.last_error, i.patient_id, i.patient_name, i.study_uid, i.path "
            f"{where} ORDER BY q.enqueued_at, q.instance_id LIMIT ? OFFSET ?",
            (destination, limit, offset)).fetchall()
        return [StuckInstance(r[0], r[1], bool(r[2]), r[3], r[4], r[5], r[6] or "", *r[7:])
                for r in rows], total

    def retry_instance(self, destination: str, sop_instance_uid: str) -> bool:
        """One undelivered instance due now (a failed one back to pending, counted from now
        for the maximum age), and the destination's own wait cleared. False: no such row."""
        now = time.time()
        with self.db.transaction() as conn:
            cur = conn.execute(
                "UPDATE forward_queue SET state = 'pending', next_attempt = 0, enqueued_at = "
                "CASE WHEN state = 'failed' THEN ? ELSE enqueued_at END WHERE destination = ? "
                "AND state != 'done' AND instance_id IN (SELECT id FROM instances WHERE "
                "sop_instance_uid = ?)", (now, destination, sop_instance_uid))
            if cur.rowcount:
                self._ensure(conn, destination)
                conn.execute("UPDATE forward_destinations SET failures = 0, next_attempt = 0 "
                             "WHERE destination = ?", (destination,))
        return bool(cur.rowcount)

    def skip_instance(self, destination: str, sop_instance_uid: str,
                      reason: str = "skipped by the operator") -> bool:
        """Give one undelivered instance up for this destination: failed, no more automatic
        tries (`retry_instance` or `retry` bring it back). False: no such row."""
        with self.db.transaction() as conn:
            cur = conn.execute(
                "UPDATE forward_queue SET state = 'failed', isolated = 0, last_error = ? || "
                "coalesce(' (last error: ' || last_error || ')', '') WHERE destination = ? "
                "AND state = 'pending' AND instance_id IN (SELECT id FROM instances WHERE "
                "sop_instance_uid = ?)", (reason, destination, sop_instance_uid))
        return bool(cur.rowcount)

    # -- retention ----------------------------------------------------------------------

    def forwarded(self, older_than: float | None = None, limit: int = 500) -> list[sqlite3.Row]:
        """Instances every destination has (no pending or failed row) and no pending Storage
        Commitment transaction names, oldest first."""
        sql = ("SELECT i.id, i.path, i.size FROM instances i WHERE NOT EXISTS (SELECT 1 FROM "
               "forward_queue q WHERE q.instance_id = i.id AND q.state != 'done') "
               f"AND NOT {NAMED_BY_PENDING}")
        args: list = []
        if older_than is not None:
            sql += " AND i.received_at < ?"
            args.append(older_than)
        sql += " ORDER BY i.received_at LIMIT ?"
        args.append(limit)
        return self.db.connection().execute(sql, args).fetchall()
