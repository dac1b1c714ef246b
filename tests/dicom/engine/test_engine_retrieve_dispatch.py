"""pynetdicom-style Query/Retrieve and Storage Commitment handlers behind the engine through
`EngineDispatcher`: a C-GET handler (number of sub-operations, then (Pending, dataset) pairs)
served to DCMTK getscu on its own association; a C-MOVE handler ((address, port), number, then
pairs) whose sub-operations the dispatcher sends to DCMTK storescp with pynetdicom's SCU API;
an EVT_N_EVENT_REPORT handler answering a PACS's Storage Commitment result."""

from __future__ import annotations

import re
import subprocess

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import evt

from appliance.dicom.declared_context import declare
from appliance.dicom.engine import retrieve_storage_of
from appliance.dicom.engine_dispatch import EngineDispatcher
from tests.conftest import DCMTK_ENV
from tests.dicom.engine.test_engine_retrieve import (
    CT_IMAGE,
    STORAGE_COMMITMENT,
    STUDY_ROOT_GET,
    STUDY_ROOT_MOVE,
    commitment_report,
    data_set_part,
    get_counts,
    get_responses,
    getscu,
    make_image,
)

SYNTAXES = [ImplicitVRLittleEndian, ExplicitVRLittleEndian]


class RetrieveService:
    """A small pynetdicom-style Query/Retrieve SCP: GET and MOVE of the files it holds, CT
    storage offered for C-GET with the requester as SCP, and Storage Commitment results."""

    def __init__(self, files, destinations: dict[str, int]):
        self.files, self.destinations = files, destinations
        self.reports: list[tuple[int, Dataset]] = []

    def contexts(self):
        return [declare(STUDY_ROOT_GET, SYNTAXES), declare(STUDY_ROOT_MOVE, SYNTAXES),
                declare(STORAGE_COMMITMENT, SYNTAXES),
                self._role_context(CT_IMAGE)]

    @staticmethod
    def _role_context(sop_class):
        return declare(sop_class, [ExplicitVRLittleEndian, ImplicitVRLittleEndian],
                       scp_role=True, scu_role=False)

    def handlers(self):
        return [(evt.EVT_C_GET, self.get), (evt.EVT_C_MOVE, self.move),
                (evt.EVT_N_EVENT_REPORT, self.report)]

    def get(self, event):
        assert event.identifier.StudyInstanceUID == "1.2.3.4"
        yield len(self.files)
        for path in self.files:
            yield 0xFF00, dcmread(path)

    def move(self, event):
        port = self.destinations.get(event.move_destination)
        if port is None:
            yield None, None
            return
        yield "127.0.0.1", port
        yield len(self.files)
        for path in self.files:
            yield 0xFF00, dcmread(path)

    def report(self, event):
        self.reports.append((event.request.EventTypeID, event.event_information))
        return 0x0000, None


def serve(engine, service):
    from appliance.dicom.engine import contexts_of

    dispatcher = EngineDispatcher([service])
    dicom_engine, _ = engine(contexts=contexts_of([service]),
                             retrieve_storage=retrieve_storage_of([service]),
                             on_request=dispatcher.on_request,
                             on_association=dispatcher.association_event)
    dispatcher.attach(dicom_engine)
    return dicom_engine


def sources(tmp_path, count=2):
    directory = tmp_path / "sources"
    directory.mkdir()
    return [make_image(directory, f"ct{n}")[0] for n in range(count)]


def test_a_pynetdicom_c_get_handler_serves_getscu(engine, tmp_path):
    files = sources(tmp_path)
    received = tmp_path / "received"
    received.mkdir()
    dicom_engine = serve(engine, RetrieveService(files, {}))
    result = getscu(dicom_engine.port, received)
    assert get_responses(result.stderr)[-1] == "Success", result.stderr
    assert get_counts(result.stderr) == (0, 2, 0, 0)
    arrived = sorted(received.iterdir())
    assert len(arrived) == 2
    assert sorted(data_set_part(p) for p in arrived) == sorted(data_set_part(p) for p in files)


def test_a_pynetdicom_c_move_handler_sends_to_the_destination(engine, storescp, tmp_path):
    files = sources(tmp_path)
    dicom_engine = serve(engine, RetrieveService(files, {"DEST": storescp("DEST")}))
    result = subprocess.run(["movescu", "-v", "-S", "-aet", "VIEWER", "-aec", "EDGEBOX",
                             "-aem", "DEST", "-k", "QueryRetrieveLevel=STUDY",
                             "-k", "StudyInstanceUID=1.2.3.4", "127.0.0.1",
                             str(dicom_engine.port)],
                            capture_output=True, text=True, env=DCMTK_ENV, timeout=60)
    assert re.search(r"Received Final Move Response \(Success\)", result.stderr), result.stderr
    arrived = sorted((tmp_path / "storescp0").iterdir())
    assert sorted(data_set_part(p) for p in arrived) == sorted(data_set_part(p) for p in files)
    unknown = subprocess.run(["movescu", "-v", "-S", "-aet", "VIEWER", "-aec", "EDGEBOX",
                              "-aem", "NOWHERE", "-k", "QueryRetrieveLevel=STUDY",
                              "127.0.0.1", str(dicom_engine.port)],
                             capture_output=True, text=True, env=DCMTK_ENV, timeout=60)
    assert "MoveDestinationUnknown" in unknown.stderr or "a801" in unknown.stderr.lower(), \
        unknown.stderr


def test_a_pynetdicom_n_event_report_handler_answers_the_pacs(engine, tmp_path):
    service = RetrieveService([], {})
    dicom_engine = serve(engine, service)
    status, _ = commitment_report(dicom_engine.port, "1.2.3.77", 1)
    assert status.Status == 0x0000
    [(event_type, info)] = service.reports
    assert event_type == 1 and info.TransactionUID == "1.2.3.77"
