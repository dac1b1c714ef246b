"""The Python services behind the native engine through `EngineDispatcher`: the real
WorklistService and PrintService answer C-FIND and the print N-requests. DCMTK findscu and the
pynetdicom print SCU of the print tests as peers. (tests/print and tests/worklist run their
whole suites on `EngineServer`; this file keeps the dispatcher's own rules and the answers the
pynetdicom server gave, recorded in worklist_answers.json before it was deleted.)"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from pydicom import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import (
    BasicFilmBox,
    ModalityWorklistInformationFind,
    PrintJob,
)

from appliance.config.schema import ApplianceConfig
from appliance.dicom.engine import DicomEngine, EngineSettings, contexts_of
from appliance.dicom.engine_dispatch import EngineDispatcher
from tests.conftest import free_port
from tests.print import conftest as print_fixtures
from tests.worklist import conftest as worklist_fixtures
from tests.worklist import test_options as worklist_options
from tests.worklist.conftest import findscu

# the print and worklist tests' fixtures: the services on an EngineServer
print_server, scu = print_fixtures.print_server, print_fixtures.scu
worklist_server = worklist_fixtures.worklist_server

# -- the bare engine with a dispatcher, for the dispatcher's own rules ----------------------


class EngineServices:
    """The engine on a free port of 127.0.0.1 with the given services behind a dispatcher."""

    def __init__(self, config: ApplianceConfig, services: list, incoming: Path):
        self.config = config
        self.dispatcher = EngineDispatcher(services, config.dicom.dimse_timeout)
        extra = [t for s in services for t in getattr(s, "extra_ae_titles", list)()]
        self.engine = DicomEngine(
            EngineSettings.from_config(config.dicom, contexts_of(services), extra), incoming,
            None, self.dispatcher.on_request, self.dispatcher.association_event)
        self.dispatcher.attach(self.engine)
        self.engine.start()

    @property
    def port(self) -> int:
        return self.engine.port

    def stop(self) -> None:
        self.engine.stop(grace=2)


def appliance_config(tmp_path: Path, number: int, dicom: dict | None = None,
                     **sections) -> ApplianceConfig:
    return ApplianceConfig.model_validate({
        "device": {"data_dir": str(tmp_path / f"data{number}")},
        "dicom": {"port": free_port(), "bind": "127.0.0.1", **(dicom or {})}, **sections})


# -- worklist: the same answers as the pynetdicom server gave ------------------------------

#: findscu queries and the answers the pynetdicom server sent them (the same for Implicit and
#: Explicit VR Little Endian), recorded before that server was deleted.
RECORDED = json.loads((Path(__file__).parent / "worklist_answers.json").read_text("utf-8"))


@pytest.mark.parametrize("syntax", [(), ("-xe",)], ids=["implicit", "explicit"])
def test_worklist_answers_are_those_the_pynetdicom_server_gave(worklist_server, syntax):
    port, _ = worklist_server()
    for recorded in RECORDED:
        ours = findscu(port, *recorded["keys"], extra=syntax)
        assert ours.returncode == 0, ours.log
        assert [a.to_json_dict() for a in ours.answers] == recorded["answers"], recorded["keys"]


def test_worklist_refusal_carries_its_error_comment(worklist_server):
    port, _ = worklist_server({"allowed_calling_aets": ["CT1"]})
    ae = AE(ae_title="INTRUDER")
    ae.add_requested_context(ModalityWorklistInformationFind)
    assoc = ae.associate("127.0.0.1", port, ae_title="EDGEBOX")
    try:
        query = Dataset()
        query.PatientID = ""
        answers = list(assoc.send_c_find(query, ModalityWorklistInformationFind))
    finally:
        assoc.release()
    assert [status.Status for status, _ in answers] == [0x0124]
    assert "not" in str(answers[0][0].get("ErrorComment", "")).lower()


def test_c_cancel_from_pynetdicom_closes_the_search(worklist_server):
    port, service = worklist_server(items=worklist_options.many(2000))
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(ModalityWorklistInformationFind)
    assoc = ae.associate("127.0.0.1", port, ae_title="EDGEBOX")
    try:
        query = Dataset()
        query.PatientID = ""
        statuses = []
        for status, _ in assoc.send_c_find(query, ModalityWorklistInformationFind, msg_id=7):
            statuses.append(status.Status)
            if len(statuses) == 2:
                assoc.send_c_cancel(7, query_model=ModalityWorklistInformationFind)
        assert statuses[-1] == 0xFE00 and len(statuses) < 200
        # the association goes on
        query.PatientID = "P00042"
        again = [status.Status for status, _ in
                 assoc.send_c_find(query, ModalityWorklistInformationFind)]
        assert again == [0xFF00, 0x0000]
    finally:
        assoc.release()


# -- print: events, error comments, the association's end, DCMTK dcmprscu -------------------


def test_a_failing_n_set_answers_its_error_comment(print_server, scu):
    client = scu(print_server().port)
    client.session()
    ds = Dataset()
    ds.FilmOrientation = "SIDEWAYS"
    status, _ = client.set(BasicFilmBox, "1.2.3.999", ds)
    assert status.Status == 0x0112
    assert status.get("ErrorComment"), status


def test_the_association_end_forgets_its_print_state(print_server, scu):
    server = print_server()
    client = scu(server.port)
    client.session()
    assert len(server.service._associations) == 1
    client.close()
    deadline = threading.Event()
    for _ in range(50):
        if not server.service._associations:
            break
        deadline.wait(0.1)
    assert not server.service._associations


def test_job_events_go_through_the_engine_to_the_printing_association(print_server, scu):
    server = print_server()
    client, other = scu(server.port), scu(server.port)
    client.session()
    client.film_box()
    _, action = client.action()
    job = action.ReferencedPrintJobSequence[0].ReferencedSOPInstanceUID
    info = client.wait_event(PrintJob, 3)
    assert info.PrinterName == "default" and info.ExecutionStatusInfo == "NORMAL"
    assert server.spool.wait_job(job)["status"] == "DONE"
    assert not any(cls == PrintJob for cls, _, _ in other.events)


# -- the dispatcher's own rules, with a small service ------------------------------------


class Faulty:
    """A service whose C-FIND answers `count` times, `pause` s apart, then fails, and whose
    N-GET raises."""

    def __init__(self, count: int = 2, pause: float = 0.0):
        self.count, self.pause = count, pause
        self.closed = threading.Event()

    def contexts(self):
        from pynetdicom.presentation import build_context
        from pynetdicom.sop_class import Printer
        return [build_context(ModalityWorklistInformationFind), build_context(Printer)]

    def handlers(self):
        from pynetdicom import evt
        return [(evt.EVT_C_FIND, self.find), (evt.EVT_N_GET, self.get)]

    def find(self, event):
        try:
            for number in range(self.count):
                threading.Event().wait(self.pause if number else 0)
                answer = Dataset()
                answer.PatientID = f"{event.identifier.PatientID}{number}"
                yield 0xFF00, answer
            raise RuntimeError("the store went away")
        except GeneratorExit:
            self.closed.set()
            raise

    def get(self, event):
        raise RuntimeError("no printer")


def test_a_failing_handler_answers_a_failure_and_the_association_goes_on(tmp_path):
    from pynetdicom.sop_class import Printer, PrinterInstance

    service = Faulty()
    server = EngineServices(appliance_config(tmp_path, 0), [service], tmp_path / "incoming")
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(ModalityWorklistInformationFind)
    ae.add_requested_context(Printer)
    assoc = ae.associate("127.0.0.1", server.port, ae_title="EDGEBOX")
    try:
        query = Dataset()
        query.PatientID = "P"
        answers = [(s.Status, a.PatientID if a else None)
                   for s, a in assoc.send_c_find(query, ModalityWorklistInformationFind)]
        assert answers == [(0xFF00, "P0"), (0xFF00, "P1"), (0xC000, None)]
        status, _ = assoc.send_n_get([], Printer, PrinterInstance)
        assert status.Status == 0x0110
        assert assoc.is_established
    finally:
        assoc.release()
        server.stop()


def test_c_cancel_closes_the_handlers_generator(tmp_path):
    service = Faulty(count=100, pause=0.05)
    server = EngineServices(appliance_config(tmp_path, 0), [service], tmp_path / "incoming")
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(ModalityWorklistInformationFind)
    assoc = ae.associate("127.0.0.1", server.port, ae_title="EDGEBOX")
    try:
        query = Dataset()
        query.PatientID = "P"
        statuses = []
        for status, _ in assoc.send_c_find(query, ModalityWorklistInformationFind, msg_id=9):
            statuses.append(status.Status)
            if len(statuses) == 1:
                assoc.send_c_cancel(9, query_model=ModalityWorklistInformationFind)
        assert statuses[-1] == 0xFE00 and len(statuses) < 10
        assert service.closed.wait(5)
    finally:
        assoc.release()
        server.stop()
