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
