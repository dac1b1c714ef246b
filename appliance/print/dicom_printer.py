"""The `dicom` printer driver of the print service: the box as print spooler/proxy. Each
rendered film is forwarded as a Print SCU to a real DICOM printer: one association per film
with a film session (copies, medium), a STANDARD\\1,1 film box of the same film size and
orientation, the film as its one image (8-bit MONOCHROME2 driving values, or RGB on Basic
Color), and N-ACTION. When the printer returns a Print Job, the driver follows it (N-GET) to
DONE or FAILURE, so a film the printer could not print is a failed job here too, never a
silent loss.

The printer's status comes from Printer N-GET, asked at most every `status_every` seconds
(the spool polls often; a film printer should not see an association every two seconds).
Associations are opened with the SCU helper (appliance.dicom.scu: every timeout, TCP_NODELAY,
TLS, the refusal in words).
"""

from __future__ import annotations

import logging
import ssl
import threading
import time

import numpy as np
from pydicom import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pynetdicom import evt
from pynetdicom.sop_class import (
    BasicColorImageBox,
    BasicColorPrintManagementMeta,
    BasicFilmBox,
    BasicFilmSession,
    BasicGrayscaleImageBox,
    BasicGrayscalePrintManagementMeta,
    Printer,
    PrinterInstance,
    PrintJob,
)

from appliance.dicom.dimse_status import is_success_or_warning
from appliance.dicom.scu import AssociationFailed, Timeouts, associate, scu_ae
from hal.printer.interface import Film, PrinterError, PrinterState
from hal.printer.interface import Printer as PrinterDriver

log = logging.getLogger(__name__)

SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
STATUSES = ("NORMAL", "WARNING", "FAILURE")
#: Seconds between Print Job N-GETs to a printer that reports its jobs by N-EVENT-REPORT.
JOB_POLL_WITH_EVENTS = 10.0


class DicomPrinter(PrinterDriver):
    driver = "dicom"

    def __init__(self, name: str, host: str = "", port: int = 104, called_aet: str = "",
                 calling_aet: str = "EDGEBOX", timeout: float = 30.0,
                 job_timeout: float = 600.0, status_every: float = 10.0,
                 tls_context: ssl.SSLContext | None = None, **_ignored):
        super().__init__(name)
        if not host or not called_aet:
            raise PrinterError("the dicom driver needs the printer's host, port and AE title "
                               "(a [[peers]] entry)")
        self.host, self.port, self.called_aet = host, int(port), called_aet
        self.calling_aet, self.timeout = calling_aet, timeout
        self.job_timeout, self.status_every = job_timeout, status_every
        self.tls_context = tls_context  # an ssl client context: DICOM over TLS to the printer
        self._lock = threading.Lock()
        self._state: PrinterState | None = None
        self._state_at = 0.0

    def __repr__(self) -> str:
        return f"<DicomPrinter {self.name!r} {self.called_aet}@{self.host}:{self.port}>"

    # -- association ------------------------------------------------------------------------

    def _associate(self, meta: str, events: _JobEvents | None = None):
        ae = scu_ae(self.calling_aet, Timeouts.all(self.timeout))
        ae.add_requested_context(meta, SYNTAXES)
        ae.add_requested_context(PrintJob, SYNTAXES)
        where = f"{self.called_aet}@{self.host}:{self.port}"
        if self.tls_context is not None:
            where += " (TLS)"
        try:
            assoc = associate(ae, self.host, self.port, self.called_aet, tls=self.tls_context,
                              evt_handlers=[(evt.EVT_N_EVENT_REPORT,
                                             (events or _JobEvents()).on_event)])
        except AssociationFailed as exc:
            raise PrinterError(f"DICOM printer {where}: {exc}") from exc
        if not any(cx.abstract_syntax == meta for cx in assoc.accepted_contexts):
            assoc.release()
            kind = "color" if meta == BasicColorPrintManagementMeta else "grayscale"
            raise PrinterError(f"DICOM printer {where} does not print {kind}")
        return assoc

    # -- status -----------------------------------------------------------------------------

    def status(self) -> PrinterState:
        with self._lock:
            if self._state is not None and time.monotonic() - self._state_at < \
                    self.status_every:
                return self._state
        state = self._ask_status()
        with self._lock:
            self._state, self._state_at = state, time.monotonic()
        return state

    def _ask_status(self) -> PrinterState:
        try:
            assoc = self._associate(BasicGrayscalePrintManagementMeta)
        except PrinterError as exc:
            try:
                assoc = self._associate(BasicColorPrintManagementMeta)
            except PrinterError:
                return PrinterState("FAILURE", "PRINTER DOWN", str(exc))
        try:
            meta = assoc.accepted_contexts[0].abstract_syntax
            status, info = assoc.send_n_get([0x21100010, 0x21100020], Printer,
                                            PrinterInstance, meta_uid=meta)
        finally:
            assoc.release()
        if not status or status.Status != 0x0000 or info is None:
            return PrinterState("FAILURE", "PRINTER DOWN", "the DICOM printer did not answer "
                                "Printer N-GET")
        printer_status = str(info.get("PrinterStatus", "NORMAL")).strip().upper()
        if printer_status not in STATUSES:
            printer_status = "WARNING"
        return PrinterState(printer_status, str(info.get("PrinterStatusInfo", "NORMAL"))
                            or "NORMAL", f"DICOM printer {self.called_aet}")

    # -- printing ---------------------------------------------------------------------------

    def print_film(self, film: Film) -> None:
        color = film.image.mode == "RGB"
        meta = BasicColorPrintManagementMeta if color else BasicGrayscalePrintManagementMeta
        events = _JobEvents()
        assoc = self._associate(meta, events)
        try:
            job = self._print(assoc, meta, film, color)
            if job is not None:
                self._follow(assoc, job, events)
                # one last request, so our answer to the printer's final event report has gone
                # out before we release (pynetdicom cannot answer it once release is asked)
                if assoc.is_established:
                    assoc.send_n_get([0x21100010, 0x21100020], Printer, PrinterInstance,
                                     meta_uid=meta)
        finally:
            if assoc.is_established:
                assoc.release()
        with self._lock:
            self._state = None   # ask afresh after printing
        log.info("film %s page %d printed on DICOM printer %s@%s:%d", film.job_id, film.page,
                 self.called_aet, self.host, self.port)

    def _check(self, what: str, status) -> None:
        code = getattr(status, "Status", None)
        if code is None:
            raise PrinterError(f"DICOM printer: no answer to {what}")
        if not is_success_or_warning(code):
            comment = status.get("ErrorComment", "")
            raise PrinterError(f"DICOM printer refused {what}: 0x{code:04X} {comment}".strip())
        if code:
            log.info("DICOM printer: %s warning 0x%04X", what, code)

    def _print(self, assoc, meta: str, film: Film, color: bool) -> str | None:
        session_uid, box_uid = generate_uid(), generate_uid()
        session = Dataset()
        session.NumberOfCopies = str(max(1, film.copies))
        if film.medium:
            session.MediumType = film.medium
        if film.label:
            session.FilmSessionLabel = film.label[:64]
        status, _ = assoc.send_n_create(session, BasicFilmSession, session_uid, meta_uid=meta)
        self._check("Film Session N-CREATE", status)

        box = Dataset()
        box.ImageDisplayFormat = "STANDARD\\1,1"
        box.FilmOrientation = film.orientation or "PORTRAIT"
        if film.film_size_id:
            box.FilmSizeID = film.film_size_id
        ref = Dataset()
        ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = BasicFilmSession, session_uid
        box.ReferencedFilmSessionSequence = [ref]
        status, reply = assoc.send_n_create(box, BasicFilmBox, box_uid, meta_uid=meta)
        self._check("Film Box N-CREATE", status)
        boxes = reply.get("ReferencedImageBoxSequence") if reply is not None else None
        if not boxes:
            raise PrinterError("DICOM printer: Film Box N-CREATE returned no image box")

        image_class = BasicColorImageBox if color else BasicGrayscaleImageBox
        image_box = Dataset()
        image_box.ImageBoxPosition = 1
        image_box.RequestedDecimateCropBehavior = "DECIMATE"
        setattr(image_box, "BasicColorImageSequence" if color else
                "BasicGrayscaleImageSequence", [_image_item(film)])
        status, _ = assoc.send_n_set(image_box, image_class,
                                     boxes[0].ReferencedSOPInstanceUID, meta_uid=meta)
        self._check("Image Box N-SET", status)

        status, reply = assoc.send_n_action(None, 1, BasicFilmBox, box_uid, meta_uid=meta)
        self._check("Film Box N-ACTION", status)
        jobs = reply.get("ReferencedPrintJobSequence") if reply is not None else None
        if jobs and any(cx.abstract_syntax == PrintJob for cx in assoc.accepted_contexts):
            return str(jobs[0].ReferencedSOPInstanceUID)
        return None

    def _follow(self, assoc, job: str, events: _JobEvents) -> None:
        """Wait until the printer's print job is DONE or FAILURE: from its Print Job event
        reports, or from N-GET every half second for printers that send none. A printer that
        reports events is asked only every JOB_POLL_WITH_EVENTS seconds (in case its final
        report is lost): every request we send while the printer may be sending its own is one more
        chance for pynetdicom 3.0.4's race that takes our answer for an unexpected message
        (README, known limitations)."""
        deadline = time.monotonic() + self.job_timeout
        events.wait_seen(job, 1.0)  # most printers report the job at once
        asked = time.monotonic()
        while time.monotonic() < deadline:
            execution, reason = events.outcome(job)
            if execution is None and (not events.seen(job)
                                      or time.monotonic() - asked >= JOB_POLL_WITH_EVENTS):
                asked = time.monotonic()
                status, info = assoc.send_n_get([0x21000020, 0x21000030], PrintJob, job)
                if not status or status.Status != 0x0000 or info is None:
                    log.warning("DICOM printer does not report print job %s; taking it as "
                                "printed", job)
                    return
                execution = str(info.get("ExecutionStatus", "")).strip().upper()
                reason = str(info.get("ExecutionStatusInfo", ""))
                if execution in ("DONE", "FAILURE") and events.seen(job):
                    events.wait(job, 2.0)   # it reports events: take its final one too
            if execution == "DONE":
                return
            if execution == "FAILURE":
                raise PrinterError(f"DICOM printer: print job failed "
                                   f"({reason or 'no reason given'})")
            events.wait(job, 0.5)
        raise PrinterError(f"DICOM printer: print job {job} not done after "
                           f"{self.job_timeout:g}s")


class _JobEvents:
    """Print Job N-EVENT-REPORTs received on one association (1 PENDING, 2 PRINTING,
    3 DONE, 4 FAILURE); Printer event reports are answered and left to `status()`."""

    def __init__(self):
        self._lock = threading.Condition()
        self._jobs: dict[str, tuple[int, str]] = {}

    def on_event(self, event) -> tuple[int, None]:
        req = event.request
        if str(req.AffectedSOPClassUID) == PrintJob:
            info = event.event_information
            reason = str(info.get("ExecutionStatusInfo", "")) if info is not None else ""
            with self._lock:
                self._jobs[str(req.AffectedSOPInstanceUID)] = (req.EventTypeID, reason)
                self._lock.notify_all()
        return 0x0000, None

    def seen(self, job: str) -> bool:
        with self._lock:
            return job in self._jobs

    def outcome(self, job: str) -> tuple[str | None, str]:
        with self._lock:
            kind, reason = self._jobs.get(job, (0, ""))
        return {3: ("DONE", reason), 4: ("FAILURE", reason)}.get(kind, (None, ""))

    def wait_seen(self, job: str, timeout: float) -> None:
        """Wait until the printer reported anything about `job`, at most `timeout` s."""
        with self._lock:
            self._lock.wait_for(lambda: job in self._jobs, timeout)

    def wait(self, job: str, timeout: float) -> None:
        with self._lock:
            self._lock.wait_for(lambda: self._jobs.get(job, (0, ""))[0] in (3, 4), timeout)


def _image_item(film: Film) -> Dataset:
    pixels = np.asarray(film.image)
    item = Dataset()
    item.Rows, item.Columns = pixels.shape[:2]
    item.BitsAllocated = item.BitsStored = 8
    item.HighBit = 7
    item.PixelRepresentation = 0
    item.PixelAspectRatio = [1, 1]
    if pixels.ndim == 3:
        item.SamplesPerPixel, item.PhotometricInterpretation = 3, "RGB"
        item.PlanarConfiguration = 0
    else:
        # driving values: 255 = least density = brightest, as MONOCHROME2 means
        item.SamplesPerPixel, item.PhotometricInterpretation = 1, "MONOCHROME2"
    item.PixelData = np.ascontiguousarray(pixels, dtype=np.uint8).tobytes()
    return item
