"""The performed procedure steps (MPPS instances) in the shared SQLite database, and the
worklist items they drive.

One row per MPPS SOP instance: its status, the full data set as created and then updated (DICOM
JSON), the calling AE title, a few columns for listing, the keys of the worklist items its
Scheduled Step Attributes Sequence names (none: an unscheduled exam, kept all the same) and the
times. N-CREATE and N-SET are checked and written in one transaction per instance, so two
requests for the same instance are applied one after the other; the linked worklist items'
status follows right after (IN PROGRESS at N-CREATE, COMPLETED or DISCONTINUED at the final
N-SET), through `WorklistStore` (the worklist owns its status).
With `[mpps] forward_to`, the same transaction queues the request for each of those peers
(queue.py), so nothing the modality was told is kept can be lost before it is forwarded.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

from pydicom import Dataset

from appliance.mpps import queue
from appliance.mpps.attributes import (
    DUPLICATE_INSTANCE,
    FINAL,
    IN_PROGRESS,
    NO_SUCH_INSTANCE,
    MppsRefusal,
    check_create,
    check_final,
    check_set,
    status_of,
)
from appliance.store.database import Migration
from appliance.worklist.store import EXPIRED, SCHEDULED, WorklistStore
from appliance.worklist.store import IN_PROGRESS as ITEM_IN_PROGRESS

log = logging.getLogger(__name__)

OWNER = "mpps"
MIGRATIONS = [Migration(OWNER, 1, (
    "CREATE TABLE mpps_steps (\n"
    "  sop_instance_uid TEXT PRIMARY KEY,\n"
    "  status TEXT NOT NULL,\n"
    "  calling_aet TEXT NOT NULL DEFAULT '',\n"
    "  patient_id TEXT NOT NULL DEFAULT '',\n"
    "  patient_name TEXT NOT NULL DEFAULT '',\n"
    "  accession_number TEXT NOT NULL DEFAULT '',\n"
    "  study_instance_uid TEXT NOT NULL DEFAULT '',\n"
    "  modality TEXT NOT NULL DEFAULT '',\n"
    "  worklist_keys TEXT NOT NULL DEFAULT '[]',\n"
    "  data_json TEXT NOT NULL,\n"
    "  created_at REAL NOT NULL,\n"
    "  updated_at REAL NOT NULL\n"
    ");\n"
    "CREATE INDEX mpps_steps_status ON mpps_steps (status, updated_at);\n")),
    queue.MIGRATION]
#: worklist items an MPPS may move (an item cancelled by the RIS stays cancelled)
STARTABLE = (SCHEDULED, EXPIRED)
FINISHABLE = (SCHEDULED, EXPIRED, ITEM_IN_PROGRESS)


@dataclass(frozen=True)
class ProcedureStep:
    """A row of the store."""

    sop_instance_uid: str
    status: str
    calling_aet: str
    patient_id: str
    patient_name: str
    accession_number: str
    modality: str
    worklist_keys: list[str]
    data: Dataset
    created_at: float
    updated_at: float

    @property
    def scheduled(self) -> bool:
        """Whether it names at least one worklist item (else: an unscheduled exam)."""
        return bool(self.worklist_keys)


class MppsStore:
    """Creates and updates MPPS instances; moves their worklist items' status."""

    def __init__(self, worklist: WorklistStore):
        self.worklist = worklist
        self.db = worklist.db
        self.db.migrate(MIGRATIONS)

    # -- N-CREATE / N-SET -------------------------------------------------------------------

    def create(self, uid: str, ds: Dataset, calling_aet: str = "",
               forward: queue.Received | None = None) -> ProcedureStep:
        """Keep a new instance (checked: MppsRefusal) and start its worklist items; `forward`:
        queued for its peers in the same transaction."""
        check_create(ds)
        keys = self._linked_keys(ds)
        now = time.time()
        with self.db.transaction() as tx:
            if tx.execute("SELECT 1 FROM mpps_steps WHERE sop_instance_uid=?",
                          (uid,)).fetchone():
                raise MppsRefusal(DUPLICATE_INSTANCE, "an MPPS with this SOP Instance UID "
                                   "exists already")
            tx.execute("INSERT INTO mpps_steps (sop_instance_uid, status, calling_aet, "
                       "patient_id, patient_name, accession_number, study_instance_uid, "
                       "modality, worklist_keys, data_json, created_at, updated_at) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (uid, IN_PROGRESS, calling_aet, *_listing(ds), json.dumps(keys),
                        _to_json(ds), now, now))
            queue.enqueue(tx, forward, uid, queue.N_CREATE)
        self._follow(keys, IN_PROGRESS)
        log.info("MPPS %s from %s: IN PROGRESS, %s", uid, calling_aet or "-",
                 f"worklist item(s) {', '.join(keys)}" if keys else "unscheduled (no worklist "
                 "item matches)")
        return self.get(uid)

    def update(self, uid: str, modification: Dataset,
               forward: queue.Received | None = None) -> ProcedureStep:
        """Apply an N-SET (checked: MppsRefusal); a final status finishes the worklist
        items; `forward`: queued for its peers in the same transaction."""
        with self.db.transaction() as tx:
            row = tx.execute("SELECT status, data_json, worklist_keys FROM mpps_steps WHERE "
                             "sop_instance_uid=?", (uid,)).fetchone()
            if row is None:
                raise MppsRefusal(NO_SUCH_INSTANCE, "no MPPS with this SOP Instance UID here")
            check_set(modification, row["status"])
            ds = Dataset.from_json(row["data_json"])
            for element in modification:
                ds[element.tag] = element
            status = status_of(ds)
            if status in FINAL:
                check_final(ds)
            tx.execute("UPDATE mpps_steps SET status=?, data_json=?, updated_at=? WHERE "
                       "sop_instance_uid=?", (status, _to_json(ds), time.time(), uid))
            queue.enqueue(tx, forward, uid, queue.N_SET)
            keys = json.loads(row["worklist_keys"])
        if status != row["status"]:
            self._follow(keys, status)
            log.info("MPPS %s: %s", uid, status)
        return self.get(uid)

    def _linked_keys(self, ds: Dataset) -> list[str]:
        keys: list[str] = []
        for item in ds.ScheduledStepAttributesSequence:
            found = self.worklist.scheduled_step_keys(
                str(item.get("StudyInstanceUID", "") or ""),
                ScheduledProcedureStepID=str(item.get("ScheduledProcedureStepID", "") or ""),
                RequestedProcedureID=str(item.get("RequestedProcedureID", "") or ""),
                AccessionNumber=str(item.get("AccessionNumber", "") or ""))
            keys += [key for key in found if key not in keys]
        return keys

    def _follow(self, keys: list[str], status: str) -> None:
        """The worklist items' status follows the procedure step's."""
        if not keys:
            return
        marks = ", ".join("?" for _ in keys)
        allowed = STARTABLE if status == IN_PROGRESS else FINISHABLE
        self.worklist.set_status(f"item_key IN ({marks})", tuple(keys), status,
                                 from_statuses=allowed)

    # -- reading ----------------------------------------------------------------------------

    def get(self, uid: str) -> ProcedureStep | None:
        return next(self.select("sop_instance_uid = ?", (uid,)), None)

    def select(self, where: str = "1", params: tuple = (),
               limit: int | None = None) -> Iterator[ProcedureStep]:
        sql = f"SELECT * FROM mpps_steps WHERE {where} ORDER BY updated_at DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        for row in self.db.connection().execute(sql, params).fetchall():
            yield ProcedureStep(row["sop_instance_uid"], row["status"], row["calling_aet"],
                                row["patient_id"], row["patient_name"],
                                row["accession_number"], row["modality"],
                                json.loads(row["worklist_keys"]),
                                Dataset.from_json(row["data_json"]), row["created_at"],
                                row["updated_at"])


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword, "")
    return "" if value is None else str(value).strip()


def _listing(ds: Dataset) -> tuple[str, ...]:
    first = ds.ScheduledStepAttributesSequence[0]
    return (_text(ds, "PatientID"), _text(ds, "PatientName"), _text(first, "AccessionNumber"),
            _text(first, "StudyInstanceUID"), _text(ds, "Modality"))


def _to_json(ds: Dataset) -> str:
    return json.dumps(ds.to_json_dict(), ensure_ascii=False)
