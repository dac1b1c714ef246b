"""Generic dispatch: a request the engine does not answer itself goes to the Python handler
(the request's fields, its data set as bytes in the context's transfer syntax), and the
handler's answers come back one by one: C-FIND Pending answers streamed, C-CANCEL honoured
between them, a failing or missing handler answered 0xC000. DCMTK findscu as the peer."""

from __future__ import annotations

import re
import subprocess
import time
from io import BytesIO

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset
from pydicom.uid import ImplicitVRLittleEndian

from tests.conftest import DCMTK_ENV

WORKLIST = "1.2.840.10008.5.1.4.31"


def encode(ds: Dataset, syntax: str) -> bytes:
    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, syntax == ImplicitVRLittleEndian
    write_dataset(out, ds)
    return out.getvalue()


def decode(data: bytes, syntax: str) -> Dataset:
    return read_dataset(BytesIO(data), syntax == ImplicitVRLittleEndian, True)


def findscu(port: int, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(["findscu", "-v", "-W", "-aet", "RIS", "-aec", "EDGEBOX", *extra,
                           "-k", "PatientName=Doe*", "-k", "PatientID", "127.0.0.1", str(port)],
                          capture_output=True, text=True, env=DCMTK_ENV, timeout=30)


def answers(stderr: str) -> tuple[int, str]:
    """(number of Pending answers, the final status) as findscu -v prints them."""
    pending = len(re.findall(r"Find Response: \d+ \(Pending", stderr))
    final = re.search(r"Received Final Find Response \(([^)]*)\)", stderr)
    return pending, final.group(1) if final else ""


class Matches:
    """A handler that answers `count` matches, `pause` seconds apart."""

    def __init__(self, count: int = 3, pause: float = 0.0):
        self.count, self.pause = count, pause
        self.requests: list[tuple[dict, Dataset]] = []
        self.closed = False

    def __call__(self, request: dict, data_set: bytes):
        self.requests.append((request, decode(data_set, request["transfer_syntax_uid"])))
        return self.matches(request["transfer_syntax_uid"])

    def matches(self, syntax: str):
        try:
            for number in range(self.count):
                if number:
                    time.sleep(self.pause)
                match = Dataset()
                match.PatientName, match.PatientID = f"Doe^Jane{number}", f"P{number}"
                yield 0xFF00, encode(match, syntax)
        except GeneratorExit:
            self.closed = True
            raise


def with_handler(engine, handler):
    return engine(contexts={WORKLIST: (ImplicitVRLittleEndian, "1.2.840.10008.1.2.1")},
                  on_request=handler)[0]


def test_c_find_pending_answers_stream_to_the_requester(engine):
    handler = Matches(3)
    dicom_engine = with_handler(engine, handler)
    result = findscu(dicom_engine.port)
    assert answers(result.stderr) == (3, "Success"), result.stderr
    assert "Doe^Jane2" in result.stderr
    [(request, query)] = handler.requests
    assert request["command"] == "C-FIND-RQ" and request["sop_class_uid"] == WORKLIST
    assert (request["calling_ae"], request["called_ae"]) == ("RIS", "EDGEBOX")
    assert str(query.PatientName) == "Doe*" and "PatientID" in query


def test_c_cancel_stops_the_handler_and_answers_cancel(engine):
    handler = Matches(5, pause=0.3)
    dicom_engine = with_handler(engine, handler)
    result = findscu(dicom_engine.port, "--cancel", "1")
    assert answers(result.stderr) == (1, "Cancel: MatchingTerminatedDueToCancelRequest"), \
        result.stderr
    assert handler.closed


def test_a_failing_handler_answers_unable_to_process(engine):
    def broken(request, data_set):
        raise RuntimeError("worklist store is down")

    dicom_engine = with_handler(engine, broken)
    result = findscu(dicom_engine.port)
    assert answers(result.stderr) == (0, "Failed: UnableToProcess"), result.stderr  # 0xC000


def test_without_a_handler_a_c_find_is_answered_unable_to_process(engine):
    dicom_engine = with_handler(engine, None)
    result = findscu(dicom_engine.port)
    assert answers(result.stderr) == (0, "Failed: UnableToProcess"), result.stderr


def test_a_handler_giving_a_final_status_ends_the_answers(engine):
    def refused(request, data_set):
        yield 0xA700, None

    dicom_engine = with_handler(engine, refused)
    result = findscu(dicom_engine.port)
    pending, final = answers(result.stderr)
    assert pending == 0 and "OutOfResources" in final, result.stderr


FILM_SESSION = "1.2.840.10008.5.1.1.1"
PRINTER = "1.2.840.10008.5.1.1.16"
PRINTER_INSTANCE = "1.2.840.10008.5.1.1.17"


class PrintSide:
    """An N-service handler: records each request, answers like a small Print SCP."""

    def __init__(self):
        self.requests: list[tuple[dict, Dataset | None]] = []

    def __call__(self, request: dict, data_set: bytes):
        syntax = request["transfer_syntax_uid"]
        self.requests.append((request, decode(data_set, syntax) if data_set else None))
        command = request["command"]
        if command == "N-CREATE-RQ":
            reply = Dataset()
            reply.NumberOfCopies = 2
            return [(0x0000, encode(reply, syntax),
                     {"affected_sop_instance_uid": "1.2.3.4.5"})]
        if command == "N-GET-RQ":
            printer = Dataset()
            printer.PrinterStatus, printer.PrinterStatusInfo = "NORMAL", "NORMAL"
            return [(0x0000, encode(printer, syntax))]
        if command == "N-ACTION-RQ":
            return [(0x0000, None)]
        if command == "N-SET-RQ":
            return [(0x0106, None)]  # Invalid attribute value
        raise RuntimeError("cannot delete")


def test_n_requests_reach_the_handler_and_its_answers_the_requester(engine):
    from pynetdicom import AE, evt

    handler = PrintSide()
    answered: list[Dataset] = []  # the command sets of the responses, as received
    dicom_engine = engine(contexts={FILM_SESSION: (ImplicitVRLittleEndian,),
                                    PRINTER: (ImplicitVRLittleEndian,)},
                          on_request=handler)[0]
    ae = AE(ae_title="PRINTSCU")
    ae.add_requested_context(FILM_SESSION, ImplicitVRLittleEndian)
    ae.add_requested_context(PRINTER, ImplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", dicom_engine.port, ae_title="EDGEBOX", evt_handlers=[
        (evt.EVT_DIMSE_RECV, lambda event: answered.append(event.message.command_set))])
    assert assoc.is_established
    try:
        session = Dataset()
        session.NumberOfCopies = 2
        status, created = assoc.send_n_create(session, FILM_SESSION, None)
        assert status.Status == 0 and created.NumberOfCopies == 2
        assert answered[-1].AffectedSOPInstanceUID == "1.2.3.4.5"
        assert answered[-1].AffectedSOPClassUID == FILM_SESSION

        status, printer = assoc.send_n_get([0x21100010, 0x21100020], PRINTER,
                                           PRINTER_INSTANCE)
        assert status.Status == 0 and printer.PrinterStatus == "NORMAL"

        status, _ = assoc.send_n_action(None, 1, FILM_SESSION, "1.2.3.4.5")
        assert status.Status == 0 and answered[-1].ActionTypeID == 1

        change = Dataset()
        change.NumberOfCopies = 99
        status, _ = assoc.send_n_set(change, FILM_SESSION, "1.2.3.4.5")
        assert status.Status == 0x0106

        status = assoc.send_n_delete(FILM_SESSION, "1.2.3.4.5")
        assert status.Status == 0x0110  # the handler raised: Processing Failure
    finally:
        assoc.release()

    commands = [request["command"] for request, _ in handler.requests]
    assert commands == ["N-CREATE-RQ", "N-GET-RQ", "N-ACTION-RQ", "N-SET-RQ", "N-DELETE-RQ"]
    create, get, action, change_request, delete = handler.requests
    assert create[1].NumberOfCopies == 2 and create[0]["sop_class_uid"] == FILM_SESSION
    assert get[0]["sop_instance_uid"] == PRINTER_INSTANCE
    assert get[0]["attribute_list"] == [0x21100010, 0x21100020]
    assert action[0]["action_type_id"] == 1 and action[1] is None
    assert change_request[1].NumberOfCopies == 99
    assert delete[0]["sop_instance_uid"] == "1.2.3.4.5"


GRAYSCALE_PRINT_META = "1.2.840.10008.5.1.1.9"
PRINTER_STATUS_EVENT = 1  # Printer SOP Class: NORMAL


def test_the_scp_sends_n_event_reports_on_an_open_association(engine):
    from pynetdicom import AE, evt

    associations: list[int] = []

    def print_side(request, data_set):
        associations.append(request["association_id"])
        return [(0x0000, None)]

    dicom_engine = engine(contexts={GRAYSCALE_PRINT_META: (ImplicitVRLittleEndian,)},
                          on_request=print_side)[0]
    reports = []

    def on_report(event):
        reports.append((event.request.EventTypeID, event.request.AffectedSOPClassUID,
                        event.request.AffectedSOPInstanceUID,
                        event.event_information.PrinterStatusInfo))
        return 0x0000, None

    ae = AE(ae_title="PRINTSCU")
    ae.add_requested_context(GRAYSCALE_PRINT_META, ImplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", dicom_engine.port, ae_title="EDGEBOX",
                         evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
    try:
        status, _ = assoc.send_n_get([0x21100010], PRINTER, PRINTER_INSTANCE,
                                     meta_uid=GRAYSCALE_PRINT_META)
        assert status.Status == 0
        info = Dataset()
        info.PrinterStatusInfo = "NORMAL"
        assert dicom_engine.send_event(associations[0], GRAYSCALE_PRINT_META, PRINTER,
                                       PRINTER_INSTANCE, PRINTER_STATUS_EVENT,
                                       encode(info, ImplicitVRLittleEndian))
        deadline = time.monotonic() + 5
        while not reports and time.monotonic() < deadline:
            time.sleep(0.05)
        assert reports == [(PRINTER_STATUS_EVENT, PRINTER, PRINTER_INSTANCE, "NORMAL")]
        status, _ = assoc.send_n_get([0x21100010], PRINTER, PRINTER_INSTANCE,
                                     meta_uid=GRAYSCALE_PRINT_META)
        assert status.Status == 0  # the association goes on
    finally:
        assoc.release()
    deadline = time.monotonic() + 5
    while dicom_engine.active_associations and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not dicom_engine.send_event(associations[0], GRAYSCALE_PRINT_META, PRINTER,
                                       PRINTER_INSTANCE, PRINTER_STATUS_EVENT)


def test_a_tagged_n_event_report_tells_its_outcome_before_the_end(engine):
    """An N-EVENT-REPORT sent with a tag gets one "event_outcome" association event: answered
    (with the peer's status), or not delivered (here: no context for it), always before
    "ended"; once the association has ended, send_event refuses."""
    from pynetdicom import AE, evt

    associations: list[int] = []
    events: list[dict] = []

    def print_side(request, data_set):
        associations.append(request["association_id"])
        return [(0x0000, None)]

    dicom_engine = engine(contexts={GRAYSCALE_PRINT_META: (ImplicitVRLittleEndian,)},
                          on_request=print_side, on_association=events.append)[0]

    def refuse(event):
        event.event_information  # noqa: B018 - decoded as a modality would
        return 0x0110, None

    ae = AE(ae_title="PRINTSCU")
    ae.add_requested_context(GRAYSCALE_PRINT_META, ImplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", dicom_engine.port, ae_title="EDGEBOX",
                         evt_handlers=[(evt.EVT_N_EVENT_REPORT, refuse)])
    try:
        assert assoc.send_n_get([0x21100010], PRINTER, PRINTER_INSTANCE,
                                meta_uid=GRAYSCALE_PRINT_META)[0].Status == 0
        status_info = Dataset()
        status_info.PrinterStatusInfo = "NORMAL"
        info = encode(status_info, ImplicitVRLittleEndian)
        assert dicom_engine.send_event(associations[0], GRAYSCALE_PRINT_META, PRINTER,
                                       PRINTER_INSTANCE, PRINTER_STATUS_EVENT, info, tag=7)
        assert dicom_engine.send_event(associations[0], "1.2.840.10008.1.20.1", PRINTER,
                                       PRINTER_INSTANCE, PRINTER_STATUS_EVENT, info, tag=8)
        deadline = time.monotonic() + 5
        while len([e for e in events if e["event"] == "event_outcome"]) < 2 and \
                time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        assoc.release()
    deadline = time.monotonic() + 5
    while not any(e["event"] == "ended" for e in events) and time.monotonic() < deadline:
        time.sleep(0.05)
    kinds = [e["event"] for e in events]
    outcomes = {e["tag"]: (e["delivered"], e["status"]) for e in events
                if e["event"] == "event_outcome"}
    assert outcomes == {7: (True, 0x0110), 8: (False, -1)}
    assert kinds.index("ended") > max(i for i, k in enumerate(kinds) if k == "event_outcome")
    assert not dicom_engine.send_event(associations[0], GRAYSCALE_PRINT_META, PRINTER,
                                       PRINTER_INSTANCE, PRINTER_STATUS_EVENT, tag=9)
