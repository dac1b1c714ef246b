"""C-MOVE and C-GET from the running appliance's store: DCMTK movescu to a listening DCMTK
storescp configured as a `[[peers]]` entry, an unknown or silent destination (0xA801), every
sub-operation failed (0xA702), C-CANCEL of a C-MOVE, getscu on the same association, and
`[query_retrieve] enabled = false`."""

from __future__ import annotations

import contextlib
import re
import subprocess
import time

from pydicom import Dataset
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE, evt
from pynetdicom.sop_class import (
    CTImageStorage,
    MRImageStorage,
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from tests.conftest import DCMTK_ENV, free_port
from tests.dicom.engine.test_engine_retrieve import data_set_part, get_counts, get_responses
from tests.query.conftest import STUDIES

S1, S2 = STUDIES["S1"]["uid"], STUDIES["S2"]["uid"]


def movescu(port: int, destination: str, *keys: str, model: str = "-S"):
    args = ["movescu", "-v", model, "-aet", "VIEWER", "-aec", "EDGEBOX", "-aem", destination]
    for key in keys:
        args += ["-k", key]
    return subprocess.run([*args, "127.0.0.1", str(port)], capture_output=True, text=True,
                          env=DCMTK_ENV, timeout=120)


def move_responses(stderr: str) -> list[str]:
    return re.findall(r"Received (?:Final )?Move Response(?: \d+)? \(([^)]*)\)", stderr)


def peers(storescp_port: int | None = None, dest_port: int | None = None) -> dict:
    return {"peers": [{"name": "viewer", "ae_title": "DEST", "host": "127.0.0.1",
                       "port": storescp_port or dest_port}]}


@contextlib.contextmanager
def destination(on_store, *sop_classes):
    """A pynetdicom C-MOVE destination "DEST" on a free port, calling `on_store` per C-STORE;
    yields its port."""
    dest = AE(ae_title="DEST")
    for sop_class in sop_classes:
        dest.add_supported_context(sop_class, ExplicitVRLittleEndian)
    port = free_port()
    server = dest.start_server(("127.0.0.1", port), block=False,
                               evt_handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        yield port
    finally:
        server.shutdown()


def test_c_move_sends_the_study_to_the_peer(archive_box, storescp, tmp_path):
    dest_port = storescp("DEST")
    port, _, files = archive_box(peers(dest_port))
    result = movescu(port, "DEST", "QueryRetrieveLevel=STUDY", f"StudyInstanceUID={S1}")
    responses = move_responses(result.stderr)
    assert responses[-1] == "Success", result.stderr
    assert responses.count("Pending") == 4, result.stderr  # one per sub-operation
    received = sorted((tmp_path / "storescp0").iterdir())
    assert sorted(data_set_part(p) for p in received) == \
        sorted(data_set_part(p) for p in files["S1"])

    # Patient Root, one series of the other study
    result = movescu(port, "DEST", "QueryRetrieveLevel=SERIES", "PatientID=P1",
                     f"StudyInstanceUID={S2}", f"SeriesInstanceUID={S2}.1", model="-P")
    assert move_responses(result.stderr)[-1] == "Success", result.stderr
    assert len(list((tmp_path / "storescp0").iterdir())) == 6


def test_c_move_to_an_unknown_or_unreachable_destination(archive_box, tmp_path):
    port, _, _ = archive_box(peers(dest_port=free_port()))  # configured, nobody listening
    result = movescu(port, "NOBODY", "QueryRetrieveLevel=STUDY", f"StudyInstanceUID={S1}")
    assert move_responses(result.stderr)[-1] == "Refused: MoveDestinationUnknown", \
        result.stderr
    # a configured peer that does not answer: refused too, nothing counted as sent
    result = movescu(port, "DEST", "QueryRetrieveLevel=STUDY", f"StudyInstanceUID={S1}")
    assert move_responses(result.stderr)[-1].startswith("Refused"), result.stderr
    # a SERIES retrieve without its study (hierarchical): refused before any sub-operation
    result = movescu(port, "DEST", "QueryRetrieveLevel=SERIES", f"SeriesInstanceUID={S1}.1")
    assert "DoesNotMatchSOPClass" in move_responses(result.stderr)[-1], result.stderr


def test_c_move_of_every_failed_sub_operation_answers_a702(archive_box, tmp_path):
    """The destination (pynetdicom) accepts CT storage but answers every C-STORE with 0xA700
    (out of resources): each sub-operation fails, and the final status says so."""
    refused: list[str] = []

    def full(event):
        refused.append(event.request.AffectedSOPInstanceUID)
        return 0xA700

    with destination(full, CTImageStorage) as dest_port:
        port, _, _ = archive_box(peers(dest_port=dest_port))
        result = movescu(port, "DEST", "QueryRetrieveLevel=STUDY", f"StudyInstanceUID={S2}")
    assert sorted(refused) == [f"{S2}.1.1", f"{S2}.1.2"]
    assert move_responses(result.stderr)[-1] == "Refused: OutOfResourcesSubOperations", \
        result.stderr


def test_c_get_on_the_same_association(archive_box, tmp_path):
    port, _, files = archive_box()
    received = tmp_path / "got"
    received.mkdir()
    result = subprocess.run(["getscu", "-v", "-S", "-aet", "VIEWER", "-aec", "EDGEBOX", "-od",
                             str(received), "-k", "QueryRetrieveLevel=STUDY",
                             "-k", f"StudyInstanceUID={S2}", "127.0.0.1", str(port)],
                            capture_output=True, text=True, env=DCMTK_ENV, timeout=60)
    assert get_responses(result.stderr)[-1] == "Success", result.stderr
    assert get_counts(result.stderr) == (0, 2, 0, 0)
    assert sorted(data_set_part(p) for p in received.iterdir()) == \
        sorted(data_set_part(p) for p in files["S2"])


def test_disabled_query_retrieve_is_refused(archive_box):
    port, _, _ = archive_box({"query_retrieve": {"enabled": False}})
    ae = AE(ae_title="VIEWER")
    for context in (PatientRootQueryRetrieveInformationModelFind,
                    StudyRootQueryRetrieveInformationModelFind,
                    StudyRootQueryRetrieveInformationModelMove,
                    StudyRootQueryRetrieveInformationModelGet, Verification):
        ae.add_requested_context(context)
    assoc = ae.associate("127.0.0.1", port, ae_title="EDGEBOX")
    try:
        assert assoc.is_established
        assert [str(cx.abstract_syntax) for cx in assoc.accepted_contexts] == [Verification]
        assert len(assoc.rejected_contexts) == 4
    finally:
        assoc.release()


def test_c_cancel_stops_a_c_move_within_a_few_sub_operations(archive_box, tmp_path):
    """A slow destination (0.3 s per image) and a C-CANCEL after the first Pending response:
    the move ends with Cancel before the study's four images are all sent."""
    stored: list[str] = []

    def slow(event):
        time.sleep(0.3)
        stored.append(event.request.AffectedSOPInstanceUID)
        return 0x0000

    with destination(slow, CTImageStorage, MRImageStorage) as dest_port:
        port, _, _ = archive_box(peers(dest_port=dest_port))
        ae = AE(ae_title="VIEWER")
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
        assoc = ae.associate("127.0.0.1", port, ae_title="EDGEBOX")
        query = Dataset()
        query.QueryRetrieveLevel, query.StudyInstanceUID = "STUDY", S1
        statuses = []
        try:
            context_id = assoc.accepted_contexts[0].context_id
            for status, _ in assoc.send_c_move(query, "DEST",
                                               StudyRootQueryRetrieveInformationModelMove,
                                               msg_id=7):
                statuses.append(status.Status)
                if len(statuses) == 1:
                    assoc.send_c_cancel(7, context_id)
        finally:
            assoc.release()
    assert statuses[-1] == 0xFE00, [hex(s) for s in statuses]
    assert len(stored) < 4
