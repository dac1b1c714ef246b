"""Print-to-PACS, appliance side: the hooks the HAL `pacs` printer driver is given to find the
patient and study of a film and to store its Secondary Capture for the forwarder.

Which patient and study a film belongs to (the first rule that matches wins):

1. **Worklist**: the worklist item whose Scheduled Station AE Title is the printing modality's
   calling AE title, scheduled for today (local date), SCHEDULED or COMPLETED (a modality often
   completes the step before it prints). Among several, the one scheduled most recently at or
   before now; if all lie later today, the earliest of them.
2. **Latest study**: the study of the instance most recently stored from the same calling AE
   title, if it arrived within the profile's `pacs_lookback_hours`. The patient and study
   attributes are read from that stored file's header.
3. Otherwise nothing: the film is refused (the print job fails and says why). Filing a film
   under a placeholder patient would put a wrong-patient image in the PACS.

The object is written into the instance store's incoming directory, committed with
`InstanceStore.commit()` to the destinations `Router.route()` chooses (so `[[routes]]` apply as
to any stored image), and announced on the bus topic `storage` so the forwarder sends it at
once. A film no destination takes is refused instead of being kept where nobody looks.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pydicom import Dataset, dcmread, dcmwrite

from appliance.config.schema import ApplianceConfig
from appliance.core.event_topics import Topic
from appliance.core.events import EventBus
from appliance.dicom.routing import Router
from appliance.print.config import PrinterProfileConfig
from appliance.store.instances import InstanceMeta, InstanceStore
from appliance.worklist.store import COMPLETED, SCHEDULED, WorklistStore
from hal.printer import PrinterError

log = logging.getLogger(__name__)

WORKLIST_KEYWORDS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                     "AccessionNumber", "StudyInstanceUID", "ReferringPhysicianName")
STUDY_KEYWORDS = (*WORKLIST_KEYWORDS, "StudyID", "StudyDate", "StudyTime", "Modality")


class PrintToPacs:
    """The find_context / store_instance / ready hooks of one `pacs` printer profile.

    `store_source` returns the running storage component's InstanceStore (or None while it is
    stopped); without one the bridge opens its own store in the data directory."""

    def __init__(self, config: ApplianceConfig, profile: PrinterProfileConfig,
                 bus: EventBus | None = None,
                 store_source: Callable[[], InstanceStore | None] | None = None):
        self.config, self.profile, self.bus = config, profile, bus
        self.data_dir = Path(config.device.data_dir).absolute()
        self.store_source = store_source
        self.router = Router(config)
        self._own_store: InstanceStore | None = None
        self._worklist: WorklistStore | None = None

    # -- hooks ------------------------------------------------------------------------------

    def hooks(self) -> dict:
        return {"find_context": self.find_context, "store_instance": self.store_instance,
                "ready": self.ready, "on_close": self.close}

    def ready(self) -> str:
        """'' when a film can be stored, else why not (the printer then shows FAILURE)."""
        if self.store_source is not None and self.store_source() is None:
            return "the instance store (storage component) is not running"
        return ""

    def find_context(self, info: dict, now: float | None = None) -> dict | None:
        calling = str(info.get("calling_aet", "")).strip()
        if not calling:
            return None
        now = time.time() if now is None else now
        return self.worklist_context(calling, now) or self.study_context(calling, now)

    def store_instance(self, dataset: Dataset, info: dict) -> list[str]:
        store = self._store()
        calling = str(info.get("calling_aet", "")).strip()
        meta = InstanceMeta(
            sop_instance_uid=str(dataset.SOPInstanceUID), sop_class_uid=str(dataset.SOPClassUID),
            study_uid=str(dataset.StudyInstanceUID), series_uid=str(dataset.SeriesInstanceUID),
            patient_id=str(dataset.PatientID), patient_name=str(dataset.PatientName),
            modality=str(dataset.Modality), calling_aet=calling,
            transfer_syntax=str(dataset.file_meta.TransferSyntaxUID))
        destinations = self.router.route(meta)
        if not destinations:
            raise PrinterError("print-to-PACS: no [[destinations]] entry takes this film "
                               "(check [[routes]])")
        fd, name = tempfile.mkstemp(prefix=".print-", suffix=".dcm", dir=store.incoming)
        temp = Path(name)
        try:
            with os.fdopen(fd, "wb") as handle:
                dcmwrite(handle, dataset, enforce_file_format=True)
            outcome = store.commit(temp, meta, destinations, "keep_first")
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        if outcome.action == "duplicate":
            temp.unlink(missing_ok=True)
        if self.bus is not None:
            self.bus.publish(Topic.STORAGE, kind=outcome.action, instance_id=outcome.instance_id,
                             sop_instance_uid=meta.sop_instance_uid, calling_aet=calling)
        return destinations

    def close(self) -> None:
        if self._own_store is not None:
            self._own_store.close()
            self._own_store = None

    # -- rules ------------------------------------------------------------------------------

    def worklist_context(self, calling: str, now: float) -> dict | None:
        """Rule 1: today's worklist item for the station (see the module docstring)."""
        if self._worklist is None:
            self._worklist = WorklistStore.in_data_dir(self.data_dir)
        today = time.strftime("%Y%m%d", time.localtime(now))
        clock = time.strftime("%H%M%S", time.localtime(now))
        rows = list(self._worklist.select(
            "station_aet = ? AND sps_date = ? AND status IN (?, ?)",
            (calling, today, SCHEDULED, COMPLETED)))
        if not rows:
            return None
        started = [r for r in rows if _hhmmss(r.item.value("ScheduledProcedureStepStartTime"))
                   <= clock]
        chosen = started[-1] if started else rows[0]   # rows come ordered by date, time
        item = chosen.item
        context = {k: item.value(k) for k in WORKLIST_KEYWORDS}
        context["Modality"] = item.value("Modality")
        context["StudyID"] = item.value("RequestedProcedureID")[:16]
        context["StudyDate"] = today
        context["StudyTime"] = clock
        context["source"] = f"worklist item {chosen.key}"
        if not context["StudyInstanceUID"]:
            return None   # an item without a Study Instance UID cannot be filed with
        log.info("print-to-PACS: film from %s filed with worklist item %s", calling,
                 item.summary())
        return context

    def study_context(self, calling: str, now: float) -> dict | None:
        """Rule 2: the calling AE's most recent stored study within the look-back window."""
        store = self._store()
        since = now - self.profile.pacs_lookback_hours * 3600
        latest = store.latest_study_from(calling, since)
        if latest is None:
            return None
        study_uid, path = latest
        try:
            header = dcmread(store.path_of(path), stop_before_pixels=True)
        except (OSError, ValueError) as exc:
            log.warning("print-to-PACS: cannot read %s: %s", path, exc)
            return None
        context = {k: str(header.get(k, "") or "") for k in STUDY_KEYWORDS}
        context["StudyInstanceUID"] = study_uid
        context["source"] = f"latest study from {calling}"
        log.info("print-to-PACS: film from %s filed with its latest study %s (patient %s)",
                 calling, study_uid, context["PatientID"])
        return context

    def _store(self) -> InstanceStore:
        store = self.store_source() if self.store_source is not None else None
        if store is not None:
            return store
        if self.store_source is not None:
            raise PrinterError("print-to-PACS: the instance store is not running")
        if self._own_store is None:
            self._own_store = InstanceStore(self.data_dir)
        return self._own_store


def _hhmmss(value: str) -> str:
    digits = value.split(".")[0]
    return (digits + "000000")[:6] if digits else "000000"
