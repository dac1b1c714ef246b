"""Print fixtures: an in-process DICOM server (EngineServer) with the Print SCP and spool on a
free port, and a small pynetdicom Print SCU that drives it the way a modality does."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from pydicom import Dataset
from pydicom.uid import ImplicitVRLittleEndian
from pynetdicom import AE, evt
from pynetdicom.dimse_messages import N_CREATE_RSP, N_EVENT_REPORT_RSP
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

from appliance.config.schema import ApplianceConfig
from appliance.core.events import EventBus
from appliance.dicom.engine_server import EngineServer
from appliance.dicom.verification import VerificationService
from appliance.print.service import PrintService
from appliance.print.spool import PrintSpool
from tests.conftest import free_port


class PrintServer:
    def __init__(self, config: ApplianceConfig, bus: EventBus | None = None):
        self.config = config
        self.bus = bus or EventBus()
        self.spool = PrintSpool(config, self.bus)
        self.service = PrintService(self.spool)
        self.server = EngineServer(config, [VerificationService(), self.service], self.bus)

    @property
    def port(self) -> int:
        return self.server.port

    def start(self) -> None:
        self.spool.start()
        self.server.start()

    def stop(self) -> None:
        self.server.stop(timeout=2)
        self.spool.stop(timeout=5)


@pytest.fixture
def print_server(tmp_path):
    """Factory: start a Print SCP with the given [[printers]] / [print] settings."""
    servers: list[PrintServer] = []

    def start(printers: list[dict] | None = None, dicom: dict | None = None,
              peers: list[dict] | None = None, sections: dict | None = None,
              bus: EventBus | None = None, **print_section) -> PrintServer:
        data = {"device": {"data_dir": str(tmp_path / f"data{len(servers)}")},
                "dicom": {"port": free_port(), "bind": "127.0.0.1", **(dicom or {})},
                "print": {"status_interval": 0.1, **print_section}}
        if printers is not None:
            data["printers"] = printers
        if peers is not None:
            data["peers"] = peers
        data.update(sections or {})
        server = PrintServer(ApplianceConfig.model_validate(data), bus)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def reference(sop_class: str, uid: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = uid
    return item


def image_item(pixels: np.ndarray, bits_stored: int = 8,
               photometric: str = "MONOCHROME2") -> Dataset:
    item = Dataset()
    color = pixels.ndim == 3
    item.SamplesPerPixel = 3 if color else 1
    item.PhotometricInterpretation = "RGB" if color else photometric
    item.Rows, item.Columns = pixels.shape[:2]
    item.BitsAllocated = 8 if bits_stored == 8 else 16
    item.BitsStored = bits_stored
    item.HighBit = bits_stored - 1
    item.PixelRepresentation = 0
    item.PixelAspectRatio = [1, 1]
    if color:
        item.PlanarConfiguration = 0
    dtype = np.uint8 if bits_stored == 8 else np.dtype("<u2")
    item.PixelData = np.ascontiguousarray(pixels, dtype=dtype).tobytes()
    return item


class PrintScu:
    """A print SCU: one association with the meta SOP class, Presentation LUT, Annotation Box
    and Print Job; collects the N-EVENT-REPORTs it receives."""

    def __init__(self, port: int, color: bool = False, called: str = "EDGEBOX",
                 extra_contexts: bool = True):
        self.color = color
        self.meta = BasicColorPrintManagementMeta if color else BasicGrayscalePrintManagementMeta
        self.image_class = BasicColorImageBox if color else BasicGrayscaleImageBox
        self.events: list[tuple[str, int, Dataset]] = []
        self.got_event = threading.Event()
        #: Print jobs this client started (N-ACTION replies) and those whose final report
        #: (DONE or FAILURE) has arrived: close() lets those reports in before it releases.
        self.jobs: set[str] = set()
        self.finished_jobs: set[str] = set()
        self.replies_sent = 0
        ae = AE(ae_title="PRINTSCU")
        ae.dimse_timeout = ae.acse_timeout = ae.network_timeout = 20
        ae.add_requested_context(self.meta, ImplicitVRLittleEndian)
        if extra_contexts:
            for uid in (PresentationLUT, BasicAnnotationBox, PrintJob):
                ae.add_requested_context(uid, ImplicitVRLittleEndian)
        self.last_command: Dataset | None = None
        self.assoc = ae.associate("127.0.0.1", port, ae_title=called,
                                  evt_handlers=[(evt.EVT_N_EVENT_REPORT, self._on_event),
                                                (evt.EVT_DIMSE_RECV, self._on_dimse),
                                                (evt.EVT_DIMSE_SENT, self._on_sent)])
        assert self.assoc.is_established

    def _on_dimse(self, event):
        # pynetdicom's send_n_create does not return the response's Affected SOP Instance UID;
        # only N-CREATE-RSPs count: an N-EVENT-REPORT of an earlier job may come in between
        if isinstance(event.message, N_CREATE_RSP):
            self.last_command = event.message.command_set

    def _on_sent(self, event):
        # pynetdicom sends an event's N-EVENT-REPORT-RSP after the handler returns: a release
        # queued before it would have the RSP sent in Sta7, which kills pynetdicom's DUL thread
        if isinstance(event.message, N_EVENT_REPORT_RSP):
            self.replies_sent += 1
            self.got_event.set()

    def _on_event(self, event):
        req = event.request
        if str(req.AffectedSOPClassUID) == PrintJob and req.EventTypeID in (3, 4):
            self.finished_jobs.add(str(req.AffectedSOPInstanceUID))
        self.events.append((str(req.AffectedSOPClassUID), req.EventTypeID,
                            event.event_information))
        self.got_event.set()
        return 0x0000, None

    def wait_event(self, sop_class: str, event_type: int, timeout: float = 10.0) -> Dataset:
        deadline = threading.Event()
        timer = threading.Timer(timeout, deadline.set)
        timer.start()
        try:
            while not deadline.is_set():
                for cls, kind, info in self.events:
                    if cls == sop_class and kind == event_type:
                        return info
                self.got_event.wait(0.05)
                self.got_event.clear()
        finally:
            timer.cancel()
        raise AssertionError(f"no N-EVENT-REPORT {sop_class} type {event_type}: {self.events}")

    def close(self, settle: float = 5.0) -> None:
        """Release, once the final N-EVENT-REPORT of every job started here has arrived (or
        `settle` seconds passed): a pynetdicom requestor that is asked for an answer after its
        A-RELEASE-RQ (Sta7) loses its DUL thread and its release never returns. A release that
        still hangs is abandoned after 30 s with an abort, so a test fails instead of hanging."""
        deadline = threading.Event()
        timer = threading.Timer(settle, deadline.set)
        timer.start()
        try:
            while (self.jobs - self.finished_jobs or self.replies_sent < len(self.events)) \
                    and not deadline.is_set():
                self.got_event.wait(0.05)
                self.got_event.clear()
        finally:
            timer.cancel()
        if not self.assoc.is_established:
            return
        releasing = threading.Thread(target=self.assoc.release, name="print-scu-release",
                                     daemon=True)
        releasing.start()
        releasing.join(30)
        if releasing.is_alive():
            self.assoc.abort()
            raise AssertionError("the print SCU's A-RELEASE did not complete in 30 s")

    # -- requests: each returns (status, data set) -------------------------------------------

    def create(self, sop_class: str, attrs: Dataset, uid: str | None = None):
        meta = None if sop_class in (PresentationLUT,) else self.meta
        status, reply = self.assoc.send_n_create(attrs, sop_class, uid, meta_uid=meta)
        command = self.last_command
        for keyword in ("AffectedSOPInstanceUID", "AffectedSOPClassUID"):
            if command is not None and keyword in command:
                setattr(status, keyword, command[keyword].value)
        return status, reply

    def session(self, **attrs):
        ds = Dataset()
        ds.NumberOfCopies = "1"
        ds.MediumType = "BLUE FILM"
        for key, value in attrs.items():
            setattr(ds, key, value)
        status, reply = self.create(BasicFilmSession, ds)
        self.session_uid = status.get("AffectedSOPInstanceUID")
        return status, reply

    def film_box(self, display_format: str = "STANDARD\\1,1", session_uid: str | None = None,
                 **attrs):
        ds = Dataset()
        ds.ImageDisplayFormat = display_format
        ds.ReferencedFilmSessionSequence = [
            reference(BasicFilmSession, session_uid or getattr(self, "session_uid", "1.2.3"))]
        for key, value in attrs.items():
            setattr(ds, key, value)
        status, reply = self.create(BasicFilmBox, ds)
        self.film_box_uid = status.get("AffectedSOPInstanceUID")
        return status, reply

    def set_image(self, box_uid: str, position: int, pixels: np.ndarray | None,
                  bits_stored: int = 8, photometric: str = "MONOCHROME2", **attrs):
        ds = Dataset()
        ds.ImageBoxPosition = position
        keyword = "BasicColorImageSequence" if self.color else "BasicGrayscaleImageSequence"
        if pixels is not None:
            setattr(ds, keyword, [image_item(pixels, bits_stored, photometric)])
        for key, value in attrs.items():
            setattr(ds, key, value)
        return self.assoc.send_n_set(ds, self.image_class, box_uid, meta_uid=self.meta)

    def set(self, sop_class: str, uid: str, attrs: Dataset):
        meta = None if sop_class == BasicAnnotationBox else self.meta
        return self.assoc.send_n_set(attrs, sop_class, uid, meta_uid=meta)

    def action(self, sop_class: str = BasicFilmBox, uid: str | None = None):
        uid = uid or (self.film_box_uid if sop_class == BasicFilmBox else self.session_uid)
        status, reply = self.assoc.send_n_action(None, 1, sop_class, uid, meta_uid=self.meta)
        job_events = any(cx.abstract_syntax == PrintJob for cx in self.assoc.accepted_contexts)
        for item in getattr(reply, "ReferencedPrintJobSequence", None) or []:
            if job_events:  # only then can the job's final N-EVENT-REPORT come
                self.jobs.add(str(item.ReferencedSOPInstanceUID))
        return status, reply

    def delete(self, sop_class: str, uid: str):
        meta = None if sop_class == PresentationLUT else self.meta
        return self.assoc.send_n_delete(sop_class, uid, meta_uid=meta)

    def printer(self, tags=None):
        return self.assoc.send_n_get(tags or [], Printer, PrinterInstance, meta_uid=self.meta)

    def job(self, uid: str):
        return self.assoc.send_n_get([], PrintJob, uid)


@pytest.fixture
def scu():
    """Factory: open a PrintScu to a port; every one is released after the test."""
    opened: list[PrintScu] = []

    def open_(port: int, **kwargs) -> PrintScu:
        client = PrintScu(port, **kwargs)
        opened.append(client)
        return client

    yield open_
    for client in opened:
        client.close()


def boxes_of(reply: Dataset) -> list[str]:
    return [str(item.ReferencedSOPInstanceUID) for item in reply.ReferencedImageBoxSequence]
