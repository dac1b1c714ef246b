"""The HL7 v2 feeder: orders sent over MLLP with the `hl7` package's client create, update,
cancel and discontinue worklist items (checked with DCMTK findscu); bad messages get AE/AR with
the reason, store nothing, and never stop the listener."""

from __future__ import annotations

import hl7
import hl7.client
import pytest

from appliance.config.schema import ApplianceConfig
from appliance.dicom.engine_server import EngineServer
from appliance.worklist.hl7_listener import Hl7Listener
from appliance.worklist.scp import WorklistService
from tests.conftest import free_port
from tests.worklist.conftest import findscu

SPS = "ScheduledProcedureStepSequence[0]."


def orm(control="NW", accession="ACC1", pid="P100", name="DOE^JOHN^Q", modality="CT",
        start="20260115093000", station="CT1", version="2.5", kind="ORM^O01", order_status="",
        charset="", extra_segments=(), drop=()) -> str:
    segments = {
        "MSH": f"MSH|^~\\&|RIS|HOSP|EDGEBOX|HOSP|20260101120000||{kind}|MSG{accession}{control}|"
               f"P|{version}|||||{charset}",
        "PID": f"PID|1||{pid}^^^HOSP^MR||{name}||19800102|F",
        "PV1": "PV1|1|O|RAD^1^1|||||1234^REFER^RITA",
        "ORC": f"ORC|{control}|PLC{accession}|FIL{accession}||{order_status}",
        "OBR": f"OBR|1|PLC{accession}|FIL{accession}|CTHEAD^CT Head w/o contrast|||||||||||"
               f"|5678^ORDER^OLGA||{accession}|RP{accession}|SPS{accession}|{station}|||"
               f"{modality}|||^^^{start}|||||||77^TECH^TOM",
        "ZDS": f"ZDS|1.2.826.0.1.{int.from_bytes(accession.encode(), 'big')}^RIS^Application^DICOM",
    }
    return "\r".join(v for k, v in segments.items() if k not in drop) + "".join(
        "\r" + s for s in extra_segments)


@pytest.fixture
def hl7_box(tmp_path):
    """An HL7 listener and an MWL SCP sharing one store, on free ports on 127.0.0.1."""
    made = []

    def start(field_map: dict | None = None):
        config = ApplianceConfig.model_validate({
            "device": {"data_dir": str(tmp_path / f"data{len(made)}")},
            "dicom": {"port": free_port(), "bind": "127.0.0.1"},
            "worklist": {"hl7": {"enabled": True, "bind": "127.0.0.1", "port": free_port(),
                                 "field_map": field_map or {}}}})
        service = WorklistService(config)
        listener = Hl7Listener(config, service)
        listener.start()
        server = EngineServer(config, [service])
        server.start()
        made.append((listener, server))
        return listener, server.port, service

    yield start
    for listener, server in made:
        listener.stop(2)
        server.stop(1)


def send(listener, *messages: str | bytes) -> list[hl7.Message]:
    acks = []
    with hl7.client.MLLPClient("127.0.0.1", listener.port) as client:
        client.socket.settimeout(10)
        for message in messages:
            raw = client.send_message(message)
            acks.append(hl7.parse(raw.strip(b"\x0b\x1c\r").decode("utf-8", "replace")))
    return acks


def code(ack: hl7.Message) -> str:
    return str(ack.segment("MSA")[1])


def reason(ack: hl7.Message) -> str:
    return ack.unescape(str(ack.segment("MSA")[3]))


def test_new_order_becomes_a_worklist_item(hl7_box):
    listener, port, _ = hl7_box()
    [ack] = send(listener, orm())
    assert code(ack) == "AA", reason(ack)
    assert str(ack.segment("MSA")[2]) == "MSGACC1NW"  # MSA-2 echoes the control ID
    result = findscu(port, "AccessionNumber=ACC1", "PatientID", "PatientName", "PatientBirthDate",
                     "IssuerOfPatientID", "ReferringPhysicianName", "StudyInstanceUID",
                     "RequestedProcedureID", "RequestedProcedureDescription",
                     f"{SPS}Modality", f"{SPS}ScheduledStationAETitle",
                     f"{SPS}ScheduledProcedureStepStartDate",
                     f"{SPS}ScheduledProcedureStepStartTime", f"{SPS}ScheduledProcedureStepID",
                     f"{SPS}ScheduledPerformingPhysicianName")
    [answer] = result.answers
    assert answer.PatientID == "P100" and answer.IssuerOfPatientID == "HOSP"
    assert answer.PatientName == "DOE^JOHN^Q"
    assert answer.PatientBirthDate == "19800102"
    assert answer.ReferringPhysicianName == "REFER^RITA"
    assert answer.StudyInstanceUID == f"1.2.826.0.1.{int.from_bytes(b'ACC1', 'big')}"
    assert answer.RequestedProcedureID == "RPACC1"
    assert answer.RequestedProcedureDescription == "CT Head w/o contrast"
    step = answer.ScheduledProcedureStepSequence[0]
    assert (step.Modality, step.ScheduledStationAETitle) == ("CT", "CT1")
    assert (step.ScheduledProcedureStepStartDate, step.ScheduledProcedureStepStartTime) == (
        "20260115", "093000")
    assert step.ScheduledProcedureStepID == "SPSACC1"
    assert step.ScheduledPerformingPhysicianName == "TECH^TOM"


def test_omi_o23_with_tq1_timing(hl7_box):
    listener, port, _ = hl7_box()
    message = orm(kind="OMI^O23", start="", accession="ACC2",
                  extra_segments=["TQ1|1||||||20260116101500"])
    [ack] = send(listener, message)
    assert code(ack) == "AA", reason(ack)
    [answer] = findscu(port, "AccessionNumber=ACC2", f"{SPS}ScheduledProcedureStepStartTime",
                       f"{SPS}ScheduledProcedureStepStartDate").answers
    step = answer.ScheduledProcedureStepSequence[0]
    assert (step.ScheduledProcedureStepStartDate, step.ScheduledProcedureStepStartTime) == (
        "20260116", "101500")


def test_change_order_updates_the_item(hl7_box):
    listener, port, _ = hl7_box()
    acks = send(listener, orm(), orm(control="XO", modality="MR", start="20260120140000"))
    assert [code(a) for a in acks] == ["AA", "AA"]
    [answer] = findscu(port, "AccessionNumber=ACC1", f"{SPS}Modality",
                       f"{SPS}ScheduledProcedureStepStartDate").answers
    assert answer.ScheduledProcedureStepSequence[0].Modality == "MR"
    assert answer.ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate == "20260120"


@pytest.mark.parametrize("control, status, state", [
    ("CA", "", "CANCELLED"), ("DC", "", "DISCONTINUED"), ("OC", "", "CANCELLED"),
    ("SC", "CM", "COMPLETED")])
def test_cancel_discontinue_complete_remove_the_item_from_the_worklist(hl7_box, control, status,
                                                                       state):
    listener, port, service = hl7_box()
    acks = send(listener, orm(), orm(accession="KEEP"), orm(control=control,
                                                           order_status=status))
    assert [code(a) for a in acks] == ["AA", "AA", "AA"], [reason(a) for a in acks]
    assert [a.AccessionNumber for a in findscu(port, "AccessionNumber").answers] == ["KEEP"]
    assert service.store.counts()[state] == 1


def test_cancel_of_an_unknown_order_is_an_application_error(hl7_box):
    listener, _, _ = hl7_box()
    [ack] = send(listener, orm(control="CA", accession="NOPE"))
    assert code(ack) == "AE"
    assert "no scheduled item with accession number 'NOPE'" in reason(ack)


def test_field_map_override(hl7_box):
    listener, port, _ = hl7_box({"AccessionNumber": "ORC.3", "ScheduledStationAETitle": ""})
    [ack] = send(listener, orm())
    assert code(ack) == "AA", reason(ack)
    [answer] = findscu(port, "AccessionNumber", f"{SPS}ScheduledStationAETitle").answers
    assert answer.AccessionNumber == "FILACC1"
    assert answer.ScheduledProcedureStepSequence[0].ScheduledStationAETitle == ""


def test_latin1_message_named_in_msh18(hl7_box):
    listener, port, _ = hl7_box()
    message = orm(name="MÜLLER^JÖRG", charset="8859/1").encode("latin-1")
    [ack] = send(listener, message)
    assert code(ack) == "AA", reason(ack)
    [answer] = findscu(port, "AccessionNumber=ACC1", "PatientName").answers
    assert str(answer.PatientName) == "MÜLLER^JÖRG"


BAD = {
    "garbage": ("this is not HL7 at all", "AR", "not an HL7 v2 message"),
    "wrong version": (orm(version="2.1"), "AR", "unsupported HL7 version '2.1'"),
    "wrong message type": (orm(kind="ADT^A01"), "AR", "unsupported message type 'ADT^A01'"),
    "missing PID": (orm(drop=("PID",)), "AE", "required segment PID is missing"),
    "missing OBR": (orm(drop=("OBR",)), "AE", "required segment OBR is missing"),
    "no patient ID": (orm(pid=""), "AE", "PatientID (0010,0020) is required"),
    "no modality": (orm(modality=""), "AE", "Modality in the ScheduledProcedureStepSequence"),
    "bad start date": (orm(start="2026011"), "AE", "ScheduledProcedureStepStartDate"),
    "unknown order control": (orm(control="ZZ"), "AE", "unsupported order control code 'ZZ'"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_message_is_refused_with_reason_and_nothing_stored(hl7_box, case):
    listener, port, service = hl7_box()
    message, expected_code, expected_reason = BAD[case]
    # the bad message, then a good one on the same connection: the listener carries on
    bad_ack, good_ack = send(listener, message, orm(accession="GOOD"))
    assert code(bad_ack) == expected_code
    assert expected_reason in reason(bad_ack), reason(bad_ack)
    assert code(good_ack) == "AA"
    assert service.store.count() == 1
    assert [a.AccessionNumber for a in findscu(port, "AccessionNumber").answers] == ["GOOD"]


def test_broken_framing_and_dropped_connections_do_not_stop_the_listener(hl7_box):
    import socket
    listener, _, _ = hl7_box()
    with socket.create_connection(("127.0.0.1", listener.port)) as sock:
        sock.sendall(b"no start block\x1c\r")  # data outside an MLLP block
        sock.sendall(b"\x0bMSH|^~\\&|half a mess")  # then hang up mid-message
    [ack] = send(listener, orm())
    assert code(ack) == "AA"
    listener.check()
