"""Status detail in responses: the store callback may answer (status, error_comment), and a
request handler's answer may carry "error_comment", "offending_element" and "error_id"; they
reach the requester as Error Comment (0000,0902), Offending Element (0000,0901) and Error ID
(0000,0903) in the response's command set, for failure and warning statuses only. pynetdicom
as the requester, reading the response as received."""

from __future__ import annotations

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ImplicitVRLittleEndian, generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import CTImageStorage

from tests.dicom.engine.test_engine_dispatch import WORKLIST

FILM_SESSION = "1.2.840.10008.5.1.1.1"


def ct_image() -> Dataset:
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, generate_uid()
    ds.PatientName, ds.PatientID = "Doe^Jane", "P1"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    return ds


def requester(port: int, *contexts: str):
    """An established pynetdicom association and the command sets of what it received."""
    received: list[Dataset] = []
    ae = AE(ae_title="PYSCU")
    for context in contexts:
        ae.add_requested_context(context, ImplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title="EDGEBOX", evt_handlers=[
        (evt.EVT_DIMSE_RECV, lambda event: received.append(event.message.command_set))])
    assert assoc.is_established
    return assoc, received


def test_a_c_store_failure_carries_the_callbacks_error_comment(engine):
    dicom_engine, receiver = engine()
    assoc, received = requester(dicom_engine.port, CTImageStorage)
    try:
        receiver.status = (0xA900, "SOP class does not match the data set")
        status = assoc.send_c_store(ct_image())
        assert status.Status == 0xA900
        assert status.ErrorComment == "SOP class does not match the data set"

        receiver.status = (0xA700, "x" * 100 + "\\\n")  # cut to 64, LO-safe
        status = assoc.send_c_store(ct_image())
        assert status.Status == 0xA700 and status.ErrorComment == "x" * 64

        receiver.status = (0x0000, "all fine")  # Success carries no comment
        status = assoc.send_c_store(ct_image())
        assert status.Status == 0 and "ErrorComment" not in received[-1]

        receiver.status = 0xB007  # a plain int still works
        assert assoc.send_c_store(ct_image()).Status == 0xB007
    finally:
        assoc.release()


def test_a_c_find_failure_carries_comment_and_offending_element(engine):
    def refuse(request, data_set):
        return [(0xA900, None, {"error_comment": "unknown key PatientWeight",
                                "offending_element": [0x00101030]})]

    dicom_engine = engine(contexts={WORKLIST: (ImplicitVRLittleEndian,)},
                          on_request=refuse)[0]
    assoc, received = requester(dicom_engine.port, WORKLIST)
    try:
        query = Dataset()
        query.PatientName, query.PatientWeight = "Doe*", ""
        answers = list(assoc.send_c_find(query, WORKLIST))
        assert [status.Status for status, _ in answers] == [0xA900]
        status = answers[0][0]
        assert status.ErrorComment == "unknown key PatientWeight"
        assert received[-1].OffendingElement == 0x00101030
    finally:
        assoc.release()


def test_an_n_set_failure_carries_comment_error_id_and_offending_elements(engine):
    def refuse(request, data_set):
        if request["command"] == "N-CREATE-RQ":
            return [(0x0000, None, {"affected_sop_instance_uid": "1.2.3.4.5",
                                    "error_comment": "not sent with Success"})]
        return [(0x0106, None, {"error_comment": "NumberOfCopies must be 1 to 99",
                                "error_id": 7,
                                "offending_element": [0x20000010, 0x20000030]})]

    dicom_engine = engine(contexts={FILM_SESSION: (ImplicitVRLittleEndian,)},
                          on_request=refuse)[0]
    assoc, received = requester(dicom_engine.port, FILM_SESSION)
    try:
        session = Dataset()
        session.NumberOfCopies = 1
        status, _ = assoc.send_n_create(session, FILM_SESSION, None)
        assert status.Status == 0 and "ErrorComment" not in received[-1]
        change = Dataset()
        change.NumberOfCopies = 500
        status, _ = assoc.send_n_set(change, FILM_SESSION, "1.2.3.4.5")
        assert status.Status == 0x0106
        assert status.ErrorComment == "NumberOfCopies must be 1 to 99"
        assert status.ErrorID == 7
        assert list(received[-1].OffendingElement) == [0x20000010, 0x20000030]
        assert received[-1].AffectedSOPInstanceUID == "1.2.3.4.5"
    finally:
        assoc.release()
