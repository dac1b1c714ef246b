"""Whether one instance of a commitment request is committed (PS3.4 J.3.3): in the store under
the SOP class the request names, intact (its file's size and SHA-256 equal those recorded when
it was stored), and with `[storage_commitment] commit_when = "forwarded"` acknowledged by
every destination its routes send it to (each of its forward_queue rows `done`; an instance
routed nowhere counts as forwarded). Not yet forwarded: undecided (the transaction waits).

Failure Reasons (0008,1197): 0x0112 no such object instance, 0x0119 class/instance conflict
(stored under another SOP class), 0x0110 processing failure (file missing, size or content
changed, or still not forwarded when the transaction timed out), 0x0131 duplicate transaction
UID (store.py).
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from appliance.commitment import hashes

log = logging.getLogger(__name__)

COMMITTED, FAILED, PENDING = "committed", "failed", "pending"
PROCESSING_FAILURE = 0x0110
NO_SUCH_OBJECT_INSTANCE = 0x0112
CLASS_INSTANCE_CONFLICT = 0x0119
DUPLICATE_TRANSACTION_UID = 0x0131


def check_item(conn: sqlite3.Connection, root: Path, sop_class: str, sop_instance: str,
               commit_when: str) -> tuple[str, int | None]:
    """(COMMITTED, None), (FAILED, failure reason) or (PENDING, None)."""
    row = conn.execute("SELECT id, sop_class_uid, path, size, received_at FROM instances "
                       "WHERE sop_instance_uid = ?", (sop_instance,)).fetchone()
    if row is None:
        return FAILED, NO_SUCH_OBJECT_INSTANCE
    if row["sop_class_uid"] != sop_class:
        return FAILED, CLASS_INSTANCE_CONFLICT
    if commit_when == "forwarded" and conn.execute(
            "SELECT 1 FROM forward_queue WHERE instance_id = ? AND state != 'done'",
            (row["id"],)).fetchone():
        return PENDING, None
    if not intact(conn, root, row):
        return FAILED, PROCESSING_FAILURE
    return COMMITTED, None


def intact(conn: sqlite3.Connection, root: Path, row: sqlite3.Row) -> bool:
    """The file of instance `row` has its recorded size and hash; with no hash recorded for
    this copy yet, it is hashed now (and recorded) and only its size is compared."""
    path = root / row["path"]
    try:
        size, digest = hashes.hash_file(path)
    except OSError as exc:
        log.warning("commitment: cannot read stored instance %s: %s", path, exc)
        return False
    if size != row["size"]:
        log.warning("commitment: %s is %d bytes, %d were stored", path, size, row["size"])
        return False
    known = hashes.recorded(conn, row["id"], row["received_at"])
    if known is None:
        hashes.record(conn, row["id"], row["received_at"], size, digest)
        return True
    if known["sha256"] != digest:
        log.warning("commitment: %s has changed since it was stored (SHA-256 differs)", path)
        return False
    return True
