"""The worklist store: scheduled procedure steps in the shared SQLite database.

One row per scheduled procedure step, with an indexed column for every key the C-FIND SCP
matches on (so a query touches only candidate rows) and the full item as DICOM JSON for the
return keys. Rows carry a lifecycle status: SCHEDULED items are served; IN PROGRESS (an MPPS
said the exam started), COMPLETED, EXPIRED, CANCELLED and DISCONTINUED ones are kept for the
record and no longer answered.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from appliance.core.event_topics import Topic
from appliance.core.events import EventBus
from appliance.store.database import Database, Migration
from appliance.worklist.item import SPS_TAG, WorklistItem, fill_generated, tag_of
from appliance.worklist.keys import SPS_ITEM

log = logging.getLogger(__name__)

OWNER = "worklist"
SCHEDULED, COMPLETED, EXPIRED = "SCHEDULED", "COMPLETED", "EXPIRED"
CANCELLED, DISCONTINUED, IN_PROGRESS = "CANCELLED", "DISCONTINUED", "IN PROGRESS"
STATUSES = (SCHEDULED, IN_PROGRESS, COMPLETED, EXPIRED, CANCELLED, DISCONTINUED)
#: The keys of an MPPS Scheduled Step Attributes Sequence item and their columns, in the
#: order they identify a scheduled step (see `scheduled_step_keys`).
STEP_KEYS = (("ScheduledProcedureStepID", "sps_id"),
             ("RequestedProcedureID", "requested_procedure_id"),
             ("AccessionNumber", "accession_number"))

COLUMNS = ("patient_name", "patient_name_upper", "patient_id", "accession_number",
           "requested_procedure_id", "study_instance_uid", "referring_physician",
           "referring_physician_upper", "station_aet", "modality", "performing_physician",
           "performing_physician_upper", "sps_id", "station_name", "sps_date", "sps_time")

_INDEXED = [c for c in COLUMNS if c not in ("sps_time",)]
#: What a row write sets: the columns, and whether one of them holds several values (those
#: rows are candidates of every query: the exact matching looks at each value).
WRITTEN = (*COLUMNS, "multi_valued")

MIGRATIONS = [
    Migration(OWNER, 1, "CREATE TABLE worklist_items (\n"
              "  id INTEGER PRIMARY KEY,\n"
              "  item_key TEXT NOT NULL UNIQUE,\n"
              "  source TEXT NOT NULL,\n"
              "  status TEXT NOT NULL DEFAULT 'SCHEDULED',\n"
              + "".join(f"  {c} TEXT NOT NULL DEFAULT '',\n" for c in COLUMNS) +
              "  item_json TEXT NOT NULL,\n"
              "  created_at REAL NOT NULL,\n"
              "  updated_at REAL NOT NULL\n"
              ");\n"
              + "".join(f"CREATE INDEX worklist_items_{c} ON worklist_items ({c});\n"
                        for c in _INDEXED) +
              "CREATE INDEX worklist_items_status ON worklist_items (status, source);\n"),
    # The usual modality query is "this modality (or station), these days": one index each.
    Migration(OWNER, 2, "CREATE INDEX worklist_items_modality_date ON worklist_items "
              "(modality, sps_date);\n"
              "CREATE INDEX worklist_items_station_date ON worklist_items "
              "(station_aet, sps_date);\n"),
    Migration(OWNER, 3, "ALTER TABLE worklist_items ADD COLUMN multi_valued INTEGER NOT NULL "
              "DEFAULT 0;\n"
              "UPDATE worklist_items SET multi_valued = 1 WHERE "
              + " OR ".join(f"instr({c}, '\\') > 0" for c in COLUMNS) + ";\n"
              "CREATE INDEX worklist_items_multi_valued ON worklist_items (multi_valued) "
              "WHERE multi_valued = 1;\n"),
]


@dataclass(frozen=True)
class StoredItem:
    """A row of the store."""

    id: int
    key: str
    source: str
    status: str
    item: WorklistItem
    updated_at: float


class WorklistStore:
    """Reads and writes worklist rows; publishes 'worklist.item' events on changes."""

    def __init__(self, database: Database, bus: EventBus | None = None):
        self.db = database
        self.bus = bus
        self.db.migrate(MIGRATIONS)
        # C-FIND runs in a new thread per association; Database keeps one connection per
        # thread for the life of the process, so queries share one reader connection instead.
        self._reader: sqlite3.Connection | None = None
        self._reader_lock = threading.Lock()
        self._counts: tuple[float, dict[str, int]] | None = None
        self._fill_missing_keys()

    @classmethod
    def in_data_dir(cls, data_dir: str | Path, bus: EventBus | None = None) -> WorklistStore:
        return cls(Database.in_data_dir(Path(data_dir).absolute()), bus)

    # -- writing ----------------------------------------------------------------------------

    def put(self, items: Iterable[WorklistItem], source: str) -> tuple[int, int]:
        """Insert or replace items by key, all in one transaction; (created, updated)."""
        created = updated = 0
        now = time.time()
        with self.db.transaction() as tx:
            for item in items:
                created_now = self._put(tx, item, source, now)
                created += created_now
                updated += not created_now
        self._publish("put", created=created, updated=updated, source=source)
        return created, updated

    def _put(self, tx, item: WorklistItem, source: str, now: float) -> bool:
        row = tx.execute("SELECT id, item_json FROM worklist_items WHERE item_key=?",
                         (item.key,)).fetchone()
        if row is not None and item.generated:
            _keep_generated(item, json.loads(row["item_json"]))
        cols = item.columns()
        names = ", ".join(WRITTEN)
        marks = ", ".join("?" for _ in WRITTEN)
        values = [cols[c] for c in WRITTEN]
        if row is None:
            tx.execute(f"INSERT INTO worklist_items (item_key, source, status, {names}, item_json,"
                       f" created_at, updated_at) VALUES (?, ?, 'SCHEDULED', {marks}, ?, ?, ?)",
                       (item.key, source, *values, item.to_json(), now, now))
            return True
        sets = ", ".join(f"{c}=?" for c in WRITTEN)
        tx.execute(f"UPDATE worklist_items SET source=?, status='SCHEDULED', {sets}, item_json=?,"
                   " updated_at=? WHERE id=?", (source, *values, item.to_json(), now, row["id"]))
        return False

    def _fill_missing_keys(self) -> None:
        """Give rows stored before Study Instance UIDs and Requested Procedure IDs were
        generated their own, once (a Type 1 key is never answered empty); stable from then."""
        conn = self.db.connection()
        rows = conn.execute("SELECT id, item_key, item_json FROM worklist_items WHERE "
                            "study_instance_uid = '' OR requested_procedure_id = ''").fetchall()
        if not rows:
            return
        with self.db.transaction() as tx:
            for row in rows:
                item = WorklistItem(json.loads(row["item_json"]), row["item_key"])
                if not fill_generated(item.data):
                    continue
                cols = item.columns()
                sets = ", ".join(f"{c}=?" for c in WRITTEN)
                # another process may have filled it meanwhile: the first one's values stay
                tx.execute(f"UPDATE worklist_items SET {sets}, item_json=? WHERE id=? AND "
                           "(study_instance_uid = '' OR requested_procedure_id = '')",
                           (*[cols[c] for c in WRITTEN], item.to_json(), row["id"]))
        log.info("worklist: generated missing Study Instance UIDs / Requested Procedure IDs "
                 "for %d stored item(s)", len(rows))

    def replace_source(self, items: list[WorklistItem], source: str) -> tuple[int, int, int]:
        """Make the SCHEDULED rows of `source` exactly `items` (one transaction):
        (created, updated, removed)."""
        now = time.time()
        keys = {item.key for item in items}
        created = updated = removed = 0
        with self.db.transaction() as tx:
            for item in items:
                if self._put(tx, item, source, now):
                    created += 1
                else:
                    updated += 1
            rows = tx.execute("SELECT id, item_key FROM worklist_items WHERE source=? AND "
                              "status='SCHEDULED'", (source,)).fetchall()
            stale = [r["id"] for r in rows if r["item_key"] not in keys]
            for row_id in stale:
                tx.execute("DELETE FROM worklist_items WHERE id=?", (row_id,))
            removed = len(stale)
        self._publish("sync", created=created, updated=updated, removed=removed, source=source)
        return created, updated, removed

    def set_status(self, where: str, params: tuple, status: str,
                   only_scheduled: bool = True, from_statuses: tuple[str, ...] = ()) -> int:
        """Set the status of the rows selected by an SQL condition (and in one of
        `from_statuses` when given, else SCHEDULED unless not `only_scheduled`); the number
        changed."""
        condition = f"({where})"
        if from_statuses:
            condition += f" AND status IN ({', '.join('?' for _ in from_statuses)})"
            params = (*params, *from_statuses)
        elif only_scheduled:
            condition += " AND status='SCHEDULED'"
        with self.db.transaction() as tx:
            count = tx.execute(f"UPDATE worklist_items SET status=?, updated_at=? WHERE "
                               f"{condition}", (status, time.time(), *params)).rowcount
        if count:
            self._publish("status", status=status, count=count)
        return count

    def delete(self, where: str, params: tuple) -> int:
        with self.db.transaction() as tx:
            count = tx.execute(f"DELETE FROM worklist_items WHERE {where}", params).rowcount
        if count:
            self._publish("delete", count=count)
        return count

    # -- reading ----------------------------------------------------------------------------

    def scheduled_step_keys(self, study_instance_uid: str = "", **keys: str) -> list[str]:
        """The item keys of the scheduled steps an MPPS Scheduled Step Attributes item names:
        every one of its Scheduled Procedure Step ID, Requested Procedure ID and Accession
        Number that is not empty must match; with none of them, its Study Instance UID (a
        modality may make its own study UID, so it is not compared when the others are given).
        """
        clauses, params = [], []
        for keyword, column in STEP_KEYS:
            value = (keys.get(keyword) or "").strip()
            if value:
                clauses.append(f"{column} = ?")
                params.append(value)
        if not clauses and study_instance_uid.strip():
            clauses.append("study_instance_uid = ?")
            params.append(study_instance_uid.strip())
        if not clauses:
            return []
        rows = self.db.connection().execute(
            f"SELECT item_key FROM worklist_items WHERE {' AND '.join(clauses)} ORDER BY id",
            params)
        return [row["item_key"] for row in rows]

    def select(self, where: str = "1", params: tuple = (), limit: int | None = None,
               order: str = "sps_date, sps_time, id") -> Iterator[StoredItem]:
        sql = (f"SELECT id, item_key, source, status, item_json, updated_at FROM worklist_items "
               f"WHERE {where} ORDER BY {order}")
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        for row in self.db.connection().execute(sql, params):
            yield StoredItem(row["id"], row["item_key"], row["source"], row["status"],
                             WorklistItem(json.loads(row["item_json"]), row["item_key"]),
                             row["updated_at"])

    def scan_items(self, where: str, params: tuple) -> Iterator[tuple[dict, bool]]:
        """The DICOM JSON of SCHEDULED rows matching an SQL condition (the C-FIND hot path),
        each with whether its text is all ASCII (so its answers need no character set check).
        The rows are read at once (the reader is shared), then decoded one by one."""
        # '+status' keeps SQLite from choosing the (unselective) status index over the
        # matching keys' indexes.
        sql = (f"SELECT item_json FROM worklist_items WHERE +status='SCHEDULED' AND ({where}) "
               "ORDER BY sps_date, sps_time, id")
        with self._reader_lock:
            if self._reader is None:
                self._reader = sqlite3.connect(self.db.path, timeout=self.db.busy_timeout,
                                               check_same_thread=False)
                self._reader.execute("PRAGMA query_only=ON")
            rows = self._reader.execute(sql, params).fetchall()
        for (text,) in rows:
            # ASCII, and no \u escapes standing for other characters
            yield json.loads(text), text.isascii() and "\\u" not in text

    def count(self, where: str = "1", params: tuple = ()) -> int:
        return self.db.connection().execute(
            f"SELECT count(*) FROM worklist_items WHERE {where}", params).fetchone()[0]

    def counts(self, max_age: float = 0.0) -> dict[str, int]:
        """Rows per status. `max_age` > 0 allows a result that old, unless this store changed
        rows since: counting 100,000 rows takes ~5 ms, too much for a status line refreshed
        five times a second (the supervisor's)."""
        cached = self._counts
        if cached is not None and max_age > 0 and time.monotonic() - cached[0] < max_age:
            return dict(cached[1])
        rows = self.db.connection().execute(
            "SELECT status, count(*) AS n FROM worklist_items GROUP BY status")
        counts = {row["status"]: row["n"] for row in rows}
        self._counts = (time.monotonic(), counts)
        return dict(counts)

    def completed_since(self, since: float) -> int:
        """Items that became COMPLETED (an MPPS or an HL7 order said so) since `since`."""
        return self.count("status='COMPLETED' AND updated_at >= ?", (since,))

    def scheduled_by_source(self) -> list[tuple[str, int, float | None]]:
        """(source, SCHEDULED items, last update) per feeder, by source name."""
        rows = self.db.connection().execute(
            "SELECT source, count(*) AS n, max(updated_at) AS last FROM worklist_items "
            "WHERE status='SCHEDULED' GROUP BY source ORDER BY source")
        return [(row["source"], row["n"], row["last"]) for row in rows]

    def last_update(self, source: str) -> float | None:
        """When a row of `source` last changed, or None if it has none."""
        return self.db.connection().execute(
            "SELECT max(updated_at) FROM worklist_items WHERE source=?", (source,)
        ).fetchone()[0]

    def _publish(self, action: str, **data) -> None:
        self._counts = None  # every change of rows is published
        if self.bus is not None:
            self.bus.publish(Topic.WORKLIST_ITEM, action=action, **data)


def _keep_generated(item: WorklistItem, stored: dict) -> None:
    """Give an item stored again the values generated for it the first time (a Study Instance
    UID must not change under a modality that already fetched it)."""
    for keyword in item.generated:
        tag = tag_of(keyword)
        new, old = item.data, stored
        if keyword in SPS_ITEM:
            new, old = item.sps, (stored.get(SPS_TAG, {}).get("Value") or [{}])[0]
        if old.get(tag, {}).get("Value"):
            new[tag] = old[tag]
