"""The MPPS forward queue (table `mpps_forward`, in the shared SQLite database): what is still
to be sent to the RIS peers of `[mpps] forward_to`.

`enqueue` is called by MppsStore inside the transaction that keeps an N-CREATE or N-SET, so a
request the modality was told succeeded always has its rows (one per peer): the data set as
received (its bytes and transfer syntax), the operation, and a sequence number that orders the
rows of one procedure step. The forwarder (forwarder.py) sends only the first row of each
procedure step (its `head`): an N-SET waits while the step's N-CREATE (or an earlier N-SET) is
still here. A row is deleted once the peer has answered it; a failure counts an attempt and
puts its next attempt off (the doubling backoff of the image forwarder, `core.backoff`).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from appliance.core.backoff import backoff_delay
from appliance.store.database import Database, Migration

OWNER = "mpps"
N_CREATE, N_SET = "N-CREATE", "N-SET"
MIGRATION = Migration(OWNER, 2, (
    "CREATE TABLE mpps_forward (\n"
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "  peer TEXT NOT NULL,\n"
    "  sop_instance_uid TEXT NOT NULL,\n"
    "  operation TEXT NOT NULL,\n"
    "  transfer_syntax TEXT NOT NULL,\n"
    "  data BLOB NOT NULL,\n"
    "  attempts INTEGER NOT NULL DEFAULT 0,\n"
    "  next_attempt REAL NOT NULL DEFAULT 0,\n"
    "  last_error TEXT NOT NULL DEFAULT '',\n"
    "  created_at REAL NOT NULL\n"
    ");\n"
    "CREATE INDEX mpps_forward_step ON mpps_forward (peer, sop_instance_uid, seq);\n"))


@dataclass(frozen=True)
class ForwardRow:
    """One request waiting for one peer."""

    seq: int
    peer: str
    sop_instance_uid: str
    operation: str
    transfer_syntax: str
    data: bytes
    attempts: int
    next_attempt: float
    last_error: str


@dataclass(frozen=True)
class Received:
    """A request's data set as received (its bytes in `transfer_syntax`) and the peers it is to
    be forwarded to."""

    peers: tuple[str, ...]
    transfer_syntax: str
    data: bytes


def enqueue(tx: sqlite3.Connection, received: Received | None, uid: str,
            operation: str) -> None:
    """One row per peer, on `tx` (the caller's open transaction)."""
    if received is None:
        return
    now = time.time()
    for peer in received.peers:
        tx.execute("INSERT INTO mpps_forward (peer, sop_instance_uid, operation, "
                   "transfer_syntax, data, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                   (peer, uid, operation, received.transfer_syntax, bytes(received.data), now))


class ForwardQueue:
    """The forwarder's view of `mpps_forward` (the table exists: MppsStore's migrations)."""

    def __init__(self, db: Database):
        self.db = db

    def heads(self, peer: str, now: float | None = None, limit: int = 100) -> list[ForwardRow]:
        """The first row of each of `peer`'s procedure steps that is due, oldest first."""
        now = time.time() if now is None else now
        rows = self.db.connection().execute(
            "SELECT * FROM mpps_forward q WHERE peer=? AND next_attempt<=? AND seq = "
            "(SELECT MIN(seq) FROM mpps_forward WHERE peer=q.peer AND "
            "sop_instance_uid=q.sop_instance_uid) ORDER BY seq LIMIT ?",
            (peer, now, limit)).fetchall()
        return [_row(r) for r in rows]

    def delivered(self, seq: int) -> None:
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM mpps_forward WHERE seq=?", (seq,))

    def failed(self, row: ForwardRow, error: str, initial: float, maximum: float) -> float:
        """Count an attempt and put the next one off; returns the delay."""
        attempts = row.attempts + 1
        delay = backoff_delay(attempts, initial, maximum)
        with self.db.transaction() as tx:
            tx.execute("UPDATE mpps_forward SET attempts=?, next_attempt=?, last_error=? "
                       "WHERE seq=?", (attempts, time.time() + delay, error[:500], row.seq))
        return delay

    def pending(self, peer: str) -> int:
        return self.db.connection().execute(
            "SELECT COUNT(*) FROM mpps_forward WHERE peer=?", (peer,)).fetchone()[0]

    def next_due_at(self, peer: str) -> float | None:
        return self.db.connection().execute(
            "SELECT MIN(next_attempt) FROM mpps_forward WHERE peer=?", (peer,)).fetchone()[0]

    def rows(self, peer: str | None = None) -> list[ForwardRow]:
        """Every waiting row (of `peer`), in order."""
        where, params = ("WHERE peer=?", (peer,)) if peer else ("", ())
        return [_row(r) for r in self.db.connection().execute(
            f"SELECT * FROM mpps_forward {where} ORDER BY seq", params).fetchall()]


def _row(r: sqlite3.Row) -> ForwardRow:
    return ForwardRow(r["seq"], r["peer"], r["sop_instance_uid"], r["operation"],
                      r["transfer_syntax"], bytes(r["data"]), r["attempts"], r["next_attempt"],
                      r["last_error"])
