"""The Print Management SCP on the DICOM server's AE: Basic Grayscale and Basic Color Print
Management Meta SOP classes, Presentation LUT, Basic Annotation Box and Print Job.

Requests arrive on the meta class's presentation context carrying the real SOP class; each
association gets its own `PrintSession`. N-ACTION hands snapshots of the films to the spool and
answers at once with the Print Job. Printer status changes from the spool go out as Printer
N-EVENT-REPORTs to every association using that printer; job progress goes to the association
that printed it when it negotiated Print Job.
"""

from __future__ import annotations

import logging
import threading
import time

from pydicom import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pynetdicom import evt
from pynetdicom.sop_class import (
    BasicAnnotationBox,
    BasicColorImageBox,
    BasicColorPrintManagementMeta,
    BasicFilmBox,
    BasicFilmSession,
    BasicGrayscaleImageBox,
    BasicGrayscalePrintManagementMeta,
    PresentationLUT,
    Printer,
    PrinterInstance,
    PrintJob,
)

from appliance import __version__
from appliance.config.schema import ApplianceConfig
from appliance.dicom.declared_context import DeclaredContext, declare
from appliance.print import dimse_status as st
from appliance.print.notify import event_sender
from appliance.print.profiles import printer_profiles, profile_for
from appliance.print.session import PrintSession
from appliance.print.spool import PRIORITY_NAMES, PrintSpool, QueueFull

log = logging.getLogger(__name__)

TRANSFER_SYNTAXES = [ImplicitVRLittleEndian, ExplicitVRLittleEndian]
ABSTRACT_SYNTAXES = [BasicGrayscalePrintManagementMeta, BasicColorPrintManagementMeta,
                     PresentationLUT, BasicAnnotationBox, PrintJob]
PRINTER_EVENTS = {"NORMAL": 1, "WARNING": 2, "FAILURE": 3}
JOB_EVENTS = {"PENDING": 1, "PRINTING": 2, "DONE": 3, "FAILURE": 4}
MANUFACTURER = "DICOM Edge Appliance project"


class _Association:
    """Print state and event sender of one association."""

    def __init__(self, assoc, session: PrintSession, meta: str):
        self.assoc = assoc
        self.session = session
        self.meta = meta
        self.sender = event_sender(assoc)
        self.jobs: set[str] = set()


class PrintService:
    """Presentation contexts and N-service handlers; `spool` prints what N-ACTION queues."""

    name = "print"

    def __init__(self, spool: PrintSpool):
        self.spool = spool
        self._lock = threading.Lock()
        self._associations: dict[int, _Association] = {}
        spool.listeners.append(self._on_spool)

    @property
    def config(self) -> ApplianceConfig:
        """The spool's configuration: reloads reach both through the spool component."""
        return self.spool.config

    def extra_ae_titles(self) -> list[str]:
        """The printer profiles' own AE titles: the DICOM server answers to them too."""
        if not self.config.print.enabled:
            return []
        return [p.ae_title for p in printer_profiles(self.config) if p.ae_title]

    def contexts(self) -> list[DeclaredContext]:
        """Print contexts, none with `[print] enabled = false` (read when the server starts)."""
        if not self.config.print.enabled:
            return []
        return [declare(uid, TRANSFER_SYNTAXES) for uid in ABSTRACT_SYNTAXES]

    def handlers(self) -> list[tuple]:
        return [(evt.EVT_N_CREATE, self.handle_create), (evt.EVT_N_SET, self.handle_set),
                (evt.EVT_N_GET, self.handle_get), (evt.EVT_N_ACTION, self.handle_action),
                (evt.EVT_N_DELETE, self.handle_delete), (evt.EVT_RELEASED, self._forget),
                (evt.EVT_ABORTED, self._forget), (evt.EVT_CONN_CLOSE, self._forget)]

    # -- association state ------------------------------------------------------------------

    def _state(self, event) -> _Association:
        assoc = event.assoc
        with self._lock:
            state = self._associations.get(id(assoc))
            if state is None:
                profile = profile_for(self.config, assoc.acceptor.ae_title)
                meta = str(event.context.abstract_syntax)
                color = meta == BasicColorPrintManagementMeta
                if meta not in (BasicGrayscalePrintManagementMeta, BasicColorPrintManagementMeta):
                    color = any(cx.abstract_syntax == BasicColorPrintManagementMeta
                                for cx in assoc.accepted_contexts)
                    meta = BasicColorPrintManagementMeta if color else \
                        BasicGrayscalePrintManagementMeta
                state = _Association(assoc, PrintSession(profile, color), meta)
                self._associations[id(assoc)] = state
            return state

    def _forget(self, event) -> None:
        with self._lock:
            state = self._associations.pop(id(event.assoc), None)
        if state is not None:
            state.sender.close()

    # -- handlers ---------------------------------------------------------------------------

    def handle_create(self, event):
        req = event.request
        sop_class = str(req.AffectedSOPClassUID)
        try:
            state = self._state(event)
            session = state.session
            uid = str(req.AffectedSOPInstanceUID) if req.AffectedSOPInstanceUID else None
            ds = event.attribute_list if req.AttributeList is not None else Dataset()
            if sop_class == BasicFilmSession:
                if session.color and not session.profile.color:
                    raise st.PrintStatus(st.PROCESSING_FAILURE, f"printer "
                                         f"{session.profile.name} prints grayscale only")
                new_uid, reply, warnings = session.create_session(uid, ds)
            elif sop_class == BasicFilmBox:
                new_uid, reply, warnings = session.create_film_box(uid, ds)
            elif sop_class == PresentationLUT:
                new_uid, reply, warnings = session.create_lut(uid, ds)
            else:
                raise st.PrintStatus(st.UNRECOGNISED_OPERATION, "N-CREATE is not supported "
                                     "for this SOP class")
        except st.PrintStatus as exc:
            return _refuse(exc, "N-CREATE", sop_class, event), None
        _log_warnings("N-CREATE", sop_class, warnings)
        if uid is None:  # the dispatcher moves it from the data set to the response on Success
            reply.AffectedSOPInstanceUID = new_uid
        return warnings.response(AffectedSOPInstanceUID=new_uid), reply

    def handle_set(self, event):
        req = event.request
        sop_class, uid = str(req.RequestedSOPClassUID), str(req.RequestedSOPInstanceUID)
        try:
            session = self._state(event).session
            ds = event.modification_list if req.ModificationList is not None else Dataset()
            if sop_class == BasicFilmSession:
                reply, warnings = session.set_session(uid, ds)
            elif sop_class == BasicFilmBox:
                reply, warnings = session.set_film_box(uid, ds)
            elif sop_class in (BasicGrayscaleImageBox, BasicColorImageBox):
                if (sop_class == BasicColorImageBox) != session.color:
                    raise st.PrintStatus(st.CLASS_INSTANCE_CONFLICT, "image box class does not "
                                         "match the print management class")
                reply, warnings = session.set_image_box(uid, ds)
            elif sop_class == BasicAnnotationBox:
                reply, warnings = session.set_annotation_box(uid, ds)
            else:
                raise st.PrintStatus(st.UNRECOGNISED_OPERATION, "N-SET is not supported for "
                                     "this SOP class")
        except st.PrintStatus as exc:
            return _refuse(exc, "N-SET", sop_class, event), None
        _log_warnings("N-SET", sop_class, warnings)
        return warnings.response(), reply

    def handle_get(self, event):
        req = event.request
        sop_class, uid = str(req.RequestedSOPClassUID), str(req.RequestedSOPInstanceUID)
        try:
            state = self._state(event)
            if sop_class == Printer:
                if uid != PrinterInstance:
                    raise st.PrintStatus(st.NO_SUCH_INSTANCE, "the printer is "
                                         "1.2.840.10008.5.1.1.17")
                full = self.printer_dataset(state.session.profile.name)
            elif sop_class == PrintJob:
                full = self.job_dataset(uid)
            else:
                raise st.PrintStatus(st.UNRECOGNISED_OPERATION, "N-GET is not supported for "
                                     "this SOP class")
        except st.PrintStatus as exc:
            return _refuse(exc, "N-GET", sop_class, event), None
        wanted = req.AttributeIdentifierList or []
        if not isinstance(wanted, list):
            wanted = [wanted]
        if not wanted:
            return 0x0000, full
        reply = Dataset()
        for tag in wanted:
            if tag in full:
                reply[tag] = full[tag]
        return 0x0000, reply

    def handle_action(self, event):
        req = event.request
        sop_class, uid = str(req.RequestedSOPClassUID), str(req.RequestedSOPInstanceUID)
        try:
            state = self._state(event)
            session = state.session
            if req.ActionTypeID != 1:
                raise st.PrintStatus(st.NO_SUCH_ACTION, "the only action is 1 (print)")
            warnings = st.Warnings()
            if sop_class == BasicFilmSession:
                film_session = session._session(uid)
                boxes = list(film_session.film_boxes)
                if not boxes:
                    raise st.PrintStatus(st.NO_FILM_BOXES, "the film session has no film boxes")
                if not any(b.content for box in boxes for b in box.image_boxes):
                    warnings.add(st.EMPTY_SESSION, "no image in any film box (empty page)")
            elif sop_class == BasicFilmBox:
                boxes = [session.film_box(uid)]
                if not any(b.content for b in boxes[0].image_boxes):
                    warnings.add(st.EMPTY_PAGE, "no image in the film box (empty page)")
            else:
                raise st.PrintStatus(st.UNRECOGNISED_OPERATION, "N-ACTION is not supported for "
                                     "this SOP class")
            film_session = session.session
            job = generate_uid()
            state.jobs.add(job)   # before submit: its PENDING event goes to this association
            try:
                self.spool.submit(
                    session.profile.name, session.film_specs(boxes), film_session.copies,
                    film_session.priority, film_session.medium, film_session.label,
                    event.assoc.requestor.ae_title.strip(), uid=job)
            except QueueFull as exc:
                state.jobs.discard(job)
                raise st.PrintStatus(st.QUEUE_FULL, str(exc)) from exc
        except st.PrintStatus as exc:
            return _refuse(exc, "N-ACTION", sop_class, event), None
        reply = Dataset()
        if _accepted(event.assoc, PrintJob):
            item = Dataset()
            item.ReferencedSOPClassUID = PrintJob
            item.ReferencedSOPInstanceUID = job
            reply.ReferencedPrintJobSequence = [item]
        _log_warnings("N-ACTION", sop_class, warnings)
        return warnings.response(), reply

    def handle_delete(self, event):
        req = event.request
        sop_class, uid = str(req.RequestedSOPClassUID), str(req.RequestedSOPInstanceUID)
        try:
            session = self._state(event).session
            if sop_class == BasicFilmSession:
                session.delete_session(uid)
            elif sop_class == BasicFilmBox:
                session.delete_film_box(uid)
            elif sop_class == PresentationLUT:
                session.delete_lut(uid)
            else:
                raise st.PrintStatus(st.UNRECOGNISED_OPERATION, "N-DELETE is not supported for "
                                     "this SOP class")
        except st.PrintStatus as exc:
            return _refuse(exc, "N-DELETE", sop_class, event)
        return 0x0000

    # -- Printer and Print Job --------------------------------------------------------------

    def printer_dataset(self, profile_name: str) -> Dataset:
        state = self.spool.printer_state(profile_name)
        profile = next((p for p in self.spool.config.printers if p.name == profile_name), None)
        ds = Dataset()
        ds.PrinterStatus = state.status
        ds.PrinterStatusInfo = state.info
        ds.PrinterName = (profile.printer_name if profile and profile.printer_name
                          else profile_name)
        ds.Manufacturer = MANUFACTURER
        ds.ManufacturerModelName = f"edge appliance ({profile.driver if profile else 'file'})"
        ds.DeviceSerialNumber = self.config.device.name
        ds.SoftwareVersions = __version__
        started = time.gmtime(self.spool.started_at)
        ds.DateOfLastCalibration = time.strftime("%Y%m%d", started)
        ds.TimeOfLastCalibration = time.strftime("%H%M%S", started)
        return ds

    def job_dataset(self, uid: str) -> Dataset:
        job = self.spool.job(uid)
        if job is None:
            raise st.PrintStatus(st.NO_SUCH_INSTANCE, "no such print job")
        created = time.localtime(job["created"])
        ds = Dataset()
        ds.ExecutionStatus = job["status"]
        ds.ExecutionStatusInfo = "NORMAL" if job["status"] != "FAILURE" else \
            _status_info(job["status_info"])
        ds.PrintPriority = PRIORITY_NAMES.get(job["priority"], "MED")
        ds.CreationDate = time.strftime("%Y%m%d", created)
        ds.CreationTime = time.strftime("%H%M%S", created)
        ds.PrinterName = job["printer"]
        ds.Originator = job["calling_aet"]
        return ds

    def _on_spool(self, kind: str, data: dict) -> None:
        with self._lock:
            states = list(self._associations.values())
        if kind == "printer":
            info = Dataset()
            info.PrinterName = data["printer"]
            if data["status"] != "NORMAL":
                info.PrinterStatusInfo = data["info"]
            for state in states:
                if state.session.profile.name == data["printer"]:
                    state.sender.send(state.meta, Printer, PrinterInstance,
                                      PRINTER_EVENTS[data["status"]], info)
        elif kind == "job":
            for state in states:
                if data["uid"] in state.jobs and _accepted(state.assoc, PrintJob):
                    info = Dataset()
                    info.ExecutionStatusInfo = "NORMAL" if data["status"] != "FAILURE" else \
                        _status_info(data["info"])
                    info.PrinterName = data["printer"]
                    state.sender.send(PrintJob, PrintJob, data["uid"],
                                      JOB_EVENTS[data["status"]], info)


def _status_info(text: str) -> str:
    """A short defined-term-like Execution Status Info for a failure (CS: 16 characters)."""
    upper = (text or "").upper()
    for term in ("SUPPLY EMPTY", "FILM JAM", "COVER OPEN", "PRINTER DOWN", "RECEIVER FULL"):
        if term in upper:
            return term
    return "PRINTER DOWN"


def _accepted(assoc, abstract_syntax: str) -> bool:
    return any(cx.abstract_syntax == abstract_syntax for cx in assoc.accepted_contexts)


def _refuse(exc: st.PrintStatus, operation: str, sop_class: str, event):
    log.warning("%s %s from %s refused: 0x%04X %s", operation, _name(sop_class),
                event.assoc.requestor.ae_title.strip(), exc.code, exc.comment)
    return st.failure(exc.code, exc.comment)


def _log_warnings(operation: str, sop_class: str, warnings: st.Warnings) -> None:
    for code, comment in warnings.items:
        log.info("%s %s: warning 0x%04X %s", operation, _name(sop_class), code, comment)


def _name(uid: str) -> str:
    from pydicom.uid import UID
    return UID(uid).name
