"""Query/Retrieve and Storage Commitment on the engine's generic dispatch: C-MOVE (the handler
opens its own association to the Move Destination, here with pynetdicom, and yields Pending
answers with sub-operation counts), C-GET (the handler asks for C-STORE sub-operations sent on
the requester's own association, the requester in the SCP role, and gets each status back
through the generator's send()), and an N-EVENT-REPORT the peer sends us. DCMTK's movescu,
getscu and storescp and pynetdicom as the peers."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from tests.conftest import DCMTK_ENV
from tests.dicom.engine.test_engine_dispatch import decode, encode

STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
STORAGE_COMMITMENT = "1.2.840.10008.1.20.1"
STORAGE_COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"
QR_SYNTAXES = (ImplicitVRLittleEndian, ExplicitVRLittleEndian)


def make_image(directory: Path, name: str, syntax: str = ExplicitVRLittleEndian,
               sop_class: str = CT_IMAGE, study: str = "1.2.3.4") -> tuple[Path, Dataset]:
    """A small image file of `sop_class` in `syntax`."""
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, generate_uid()
    ds.PatientName, ds.PatientID, ds.Modality = "Doe^Jane", "P1", "CT"
    ds.Rows = ds.Columns = 8
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = bytes(range(128))
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = syntax
    path = directory / f"{name}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path, ds


def data_set_part(path: Path) -> bytes:
    """A Part-10 file's data set as stored (after the File Meta group)."""
    data = path.read_bytes()
    assert data[128:132] == b"DICM"
    group_length = int.from_bytes(data[140:144], "little")  # (0002,0000) UL, explicit VR
    return data[144 + group_length:]


def final_status(stderr: str, kind: str) -> str:
    found = re.findall(rf"Received Final {kind} Response(?: \(([^)]*)\))?", stderr)
    return found[-1] if found else ""


# -- C-MOVE ----------------------------------------------------------------------------------

class MoveSide:
    """A C-MOVE handler: sends its files to the destination with pynetdicom (a C-STORE SCU
    association of its own), a Pending answer with counts before each."""

    def __init__(self, files: list[Path], destinations: dict[str, int], pause: float = 0.0):
        self.files, self.destinations, self.pause = files, destinations, pause
        self.requests: list[tuple[dict, Dataset]] = []
        self.statuses: list[int] = []
        self.closed = False

    def __call__(self, request: dict, data_set: bytes):
        self.requests.append((request, decode(data_set, request["transfer_syntax_uid"])))
        return self.answers(request)

    def answers(self, request: dict):
        from pynetdicom import AE

        port = self.destinations.get(request["move_destination"])
        if port is None:
            yield 0xA801, None  # Move Destination unknown
            return
        ae = AE("EDGEBOX")
        ae.add_requested_context(CT_IMAGE, [ExplicitVRLittleEndian])
        assoc = ae.associate("127.0.0.1", port, ae_title=request["move_destination"])
        completed = failed = 0
        failed_uids: list[str] = []
        try:
            for number, path in enumerate(self.files):
                yield 0xFF00, None, {"remaining": len(self.files) - number,
                                     "completed": completed, "failed": failed, "warning": 0}
                time.sleep(self.pause)
                status = assoc.send_c_store(path)
                self.statuses.append(int(status.Status) if status else -1)
                if status and status.Status == 0x0000:
                    completed += 1
                else:
                    failed += 1
                    failed_uids.append(str(path))
        except GeneratorExit:
            self.closed = True
            raise
        finally:
            assoc.release()
        yield 0x0000, None, {"completed": completed, "failed": failed, "warning": 0}


def movescu(port: int, destination: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(["movescu", "-v", "-S", "-aet", "VIEWER", "-aec", "EDGEBOX",
                           "-aem", destination, *extra, "-k", "QueryRetrieveLevel=STUDY",
                           "-k", "StudyInstanceUID=1.2.3.4", "127.0.0.1", str(port)],
                          capture_output=True, text=True, env=DCMTK_ENV, timeout=60)


def test_c_move_handler_stores_to_the_destination_and_reports_counts(engine, storescp,
                                                                     tmp_path):
    sources = tmp_path / "sources"
    sources.mkdir()
    files = [make_image(sources, f"image{n}")[0] for n in range(2)]
    destination = storescp("DEST")
    handler = MoveSide(files, {"DEST": destination})
    dicom_engine, _ = engine(contexts={STUDY_ROOT_MOVE: QR_SYNTAXES}, on_request=handler)
    result = movescu(dicom_engine.port, "DEST")
    assert final_status(result.stderr, "Move") == "Success", result.stderr
    assert len(re.findall(r"Move Response \d+ \(Pending", result.stderr)) == 2
    [(request, identifier)] = handler.requests
    assert request["command"] == "C-MOVE-RQ" and request["move_destination"] == "DEST"
    assert request["sop_class_uid"] == STUDY_ROOT_MOVE and request["priority"] == 0
    assert identifier.StudyInstanceUID == "1.2.3.4"
    assert handler.statuses == [0x0000, 0x0000]
    received = sorted((tmp_path / "storescp0").iterdir())
    assert len(received) == 2
    assert sorted(data_set_part(path) for path in received) == \
        sorted(data_set_part(path) for path in files)


def test_c_move_final_counts_and_unknown_destination(engine):
    seen: list[dict] = []

    def handler(request, data_set):
        seen.append(request)
        yield 0xA801, None, {"error_comment": "unknown destination"}

    dicom_engine, _ = engine(contexts={STUDY_ROOT_MOVE: QR_SYNTAXES}, on_request=handler)
    result = movescu(dicom_engine.port, "NOWHERE")
    assert "0xa801" in result.stderr.lower() or "MoveDestinationUnknown" in result.stderr, \
        result.stderr
    assert seen[0]["move_destination"] == "NOWHERE"


def test_c_cancel_during_a_c_move_closes_the_handler(engine, storescp, tmp_path):
    from pynetdicom import AE

    sources = tmp_path / "sources"
    sources.mkdir()
    files = [make_image(sources, f"image{n}")[0] for n in range(4)]
    handler = MoveSide(files, {"DEST": storescp("DEST")}, pause=0.3)
    dicom_engine, _ = engine(contexts={STUDY_ROOT_MOVE: QR_SYNTAXES}, on_request=handler)
    ae = AE("VIEWER")
    ae.add_requested_context(STUDY_ROOT_MOVE, ImplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", dicom_engine.port, ae_title="EDGEBOX")
    query = Dataset()
    query.QueryRetrieveLevel, query.StudyInstanceUID = "STUDY", "1.2.3.4"
    answers = []
    for status, _ in assoc.send_c_move(query, "DEST", STUDY_ROOT_MOVE, msg_id=7):
        answers.append(status)
        if len(answers) == 2:
            assoc.send_c_cancel(7, assoc.accepted_contexts[0].context_id)
    assoc.release()
    final = answers[-1]
    assert final.Status == 0xFE00, answers
    assert handler.closed
    # the counts the handler last gave: with the Pending answer the C-CANCEL stopped (two
    # images sent while the requester read the second answer and cancelled)
    assert (final.NumberOfCompletedSuboperations, final.NumberOfFailedSuboperations) == (2, 0)
    assert final.NumberOfRemainingSuboperations == 2


# -- N-EVENT-REPORT from the peer ---------------------------------------------------------------

def commitment_report(port: int, transaction_uid: str, event_type: int,
                      instances: tuple[str, ...] = ()) -> tuple[Dataset, Dataset | None]:
    """A PACS's Storage Commitment result sent to us as an N-EVENT-REPORT (pynetdicom):
    (status, reply)."""
    from pynetdicom import AE

    ae = AE("PACS")
    ae.add_requested_context(STORAGE_COMMITMENT, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title="EDGEBOX")
    information = Dataset()
    information.TransactionUID = transaction_uid
    if instances:
        items = []
        for uid in instances:
            item = Dataset()
            item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = CT_IMAGE, uid
            items.append(item)
        information.ReferencedSOPSequence = items
    try:
        return assoc.send_n_event_report(information, event_type, STORAGE_COMMITMENT,
                                         STORAGE_COMMITMENT_INSTANCE)
    finally:
        assoc.release()


def test_an_n_event_report_from_the_peer_reaches_the_handler(engine):
    seen: list[tuple[dict, Dataset]] = []

    def commitment_result(request, data_set):
        syntax = request["transfer_syntax_uid"]
        seen.append((request, decode(data_set, syntax)))
        reply = Dataset()
        reply.TransactionUID = "1.2.3.99"
        return [(0x0000, encode(reply, syntax))]

    dicom_engine, _ = engine(contexts={STORAGE_COMMITMENT: QR_SYNTAXES},
                             on_request=commitment_result)
    status, reply = commitment_report(dicom_engine.port, "1.2.3.99", 1, ("1.2.3.4.5",))
    assert status.Status == 0x0000
    assert reply.TransactionUID == "1.2.3.99"
    [(request, data)] = seen
    assert request["command"] == "N-EVENT-REPORT-RQ" and request["event_type_id"] == 1
    assert request["sop_class_uid"] == STORAGE_COMMITMENT
    assert request["sop_instance_uid"] == STORAGE_COMMITMENT_INSTANCE
    assert data.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == "1.2.3.4.5"


def test_a_failing_n_event_report_handler_answers_processing_failure(engine):

    def broken(request, data_set):
        raise RuntimeError("no such transaction")

    dicom_engine, _ = engine(contexts={STORAGE_COMMITMENT: QR_SYNTAXES}, on_request=broken)
    status, _ = commitment_report(dicom_engine.port, "1.2.3.98", 2)
    assert status.Status == 0x0110


# -- C-GET -----------------------------------------------------------------------------------

class GetSide:
    """A C-GET handler: each file as a C-STORE sub-operation on the requester's association,
    counting the statuses the engine hands back; Pending answers with counts between them."""

    def __init__(self, files: list[tuple[Path, Dataset]], pause: float = 0.0):
        self.files, self.pause = files, pause
        self.requests: list[tuple[dict, Dataset]] = []
        self.statuses: list[int] = []
        self.closed = False

    def __call__(self, request: dict, data_set: bytes):
        self.requests.append((request, decode(data_set, request["transfer_syntax_uid"])))
        return self.answers(request["transfer_syntax_uid"])

    def answers(self, syntax: str):
        counts = {"remaining": len(self.files), "completed": 0, "failed": 0, "warning": 0}
        failed: list[str] = []
        try:
            for path, ds in self.files:
                time.sleep(self.pause)
                status = yield ("store", path, ds.SOPClassUID, ds.SOPInstanceUID,
                                ds.file_meta.TransferSyntaxUID)
                self.statuses.append(status)
                counts["remaining"] -= 1
                if status == 0x0000:
                    counts["completed"] += 1
                elif status == 0x0001 or 0xB000 <= status <= 0xBFFF:
                    counts["warning"] += 1
                else:
                    counts["failed"] += 1
                    failed.append(ds.SOPInstanceUID)
                if counts["remaining"]:
                    yield 0xFF00, None, dict(counts)
        except GeneratorExit:
            self.closed = True
            raise
        if not failed and not counts["warning"]:
            yield 0x0000, None, dict(counts)
            return
        identifier = Dataset()
        identifier.FailedSOPInstanceUIDList = failed
        yield 0xB000, encode(identifier, syntax), dict(counts)


def get_responses(stderr: str) -> list[str]:
    return re.findall(r"Received C-GET Response \(([^):]*)", stderr)


def get_counts(stderr: str) -> tuple[int, ...]:
    """(remaining, completed, failed, warning) as getscu -v reports them at the end."""
    return tuple(int(re.search(rf"Number of {kind} Suboperations\s*: (\d+)", stderr).group(1))
                 for kind in ("Remaining", "Completed", "Failed", "Warning"))


def getscu(port: int, directory: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(["getscu", "-v", "-S", "-aet", "VIEWER", "-aec", "EDGEBOX", "-od",
                           str(directory), *extra, "-k", "QueryRetrieveLevel=STUDY",
                           "-k", "StudyInstanceUID=1.2.3.4", "127.0.0.1", str(port)],
                          capture_output=True, text=True, env=DCMTK_ENV, timeout=60)


def get_engine(engine, handler):
    storage = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
    return engine(contexts={STUDY_ROOT_GET: QR_SYNTAXES},
                  retrieve_storage={CT_IMAGE: storage, MR_IMAGE: storage},
                  on_request=handler)[0]


def test_c_get_sends_the_files_on_the_requesters_association(engine, tmp_path):
    sources, received = tmp_path / "sources", tmp_path / "received-by-getscu"
    sources.mkdir()
    received.mkdir()
    files = [make_image(sources, "ct0"), make_image(sources, "mr1", sop_class=MR_IMAGE)]
    handler = GetSide(files)
    dicom_engine = get_engine(engine, handler)
    result = getscu(dicom_engine.port, received)
    assert get_responses(result.stderr) == ["Pending", "Success"], result.stderr
    assert get_counts(result.stderr) == (0, 2, 0, 0)
    assert "Association Release Failed" not in result.stderr
    assert handler.statuses == [0x0000, 0x0000]
    [(request, identifier)] = handler.requests
    assert request["command"] == "C-GET-RQ" and request["sop_class_uid"] == STUDY_ROOT_GET
    assert identifier.StudyInstanceUID == "1.2.3.4"
    arrived = {path.name: path for path in received.iterdir()}
    assert len(arrived) == 2, (arrived, result.stderr)
    for path, ds in files:
        [copy] = [p for name, p in arrived.items() if ds.SOPInstanceUID in name]
        assert data_set_part(copy) == data_set_part(path)


def test_a_c_get_sub_operation_the_requester_cannot_take_counts_as_failed(engine, tmp_path):
    sources, received = tmp_path / "sources", tmp_path / "received-by-getscu"
    sources.mkdir()
    received.mkdir()
    explicit = make_image(sources, "explicit", ExplicitVRLittleEndian)
    implicit = make_image(sources, "implicit", ImplicitVRLittleEndian)
    handler = GetSide([explicit, implicit])
    dicom_engine = get_engine(engine, handler)
    # getscu proposes Explicit VR Little Endian first for each storage class, so that is the
    # one accepted: the implicit file cannot be sent as stored (no transcoding)
    result = getscu(dicom_engine.port, received)
    assert handler.statuses == [0x0000, 0x0122], result.stderr
    assert get_responses(result.stderr) == ["Pending", "Warning"], result.stderr
    assert get_counts(result.stderr) == (0, 1, 1, 0)
    # getscu does not read the Failed SOP Instance UID List of the final response (its
    # release then meets that P-DATA and aborts): DCMTK's, not ours; pynetdicom reads it
    assert [path.name for path in received.iterdir()] == \
        [f"CT.{explicit[1].SOPInstanceUID}"]


def test_c_cancel_during_a_c_get_ends_it_with_the_counts_so_far(engine, tmp_path):
    from pynetdicom import AE, build_role, evt

    sources = tmp_path / "sources"
    sources.mkdir()
    handler = GetSide([make_image(sources, f"ct{n}") for n in range(4)], pause=0.3)
    dicom_engine = get_engine(engine, handler)
    stored: list[str] = []

    def on_store(event):
        stored.append(event.request.AffectedSOPInstanceUID)
        return 0x0000

    ae = AE("VIEWER")
    ae.add_requested_context(STUDY_ROOT_GET, ImplicitVRLittleEndian)
    ae.add_requested_context(CT_IMAGE, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", dicom_engine.port, ae_title="EDGEBOX",
                         ext_neg=[build_role(CT_IMAGE, scp_role=True)],
                         evt_handlers=[(evt.EVT_C_STORE, on_store)])
    query = Dataset()
    query.QueryRetrieveLevel, query.StudyInstanceUID = "STUDY", "1.2.3.4"
    get_context = next(cx for cx in assoc.accepted_contexts
                       if cx.abstract_syntax == STUDY_ROOT_GET)
    answers = []
    for status, _ in assoc.send_c_get(query, STUDY_ROOT_GET, msg_id=9):
        answers.append(status)
        if len(answers) == 1:
            assoc.send_c_cancel(9, get_context.context_id)
    assoc.release()
    final = answers[-1]
    assert [a.Status for a in answers] == [0xFF00, 0xFE00], answers
    assert (final.NumberOfRemainingSuboperations, final.NumberOfCompletedSuboperations,
            final.NumberOfFailedSuboperations) == (3, 1, 0)
    assert handler.closed and len(stored) == 1


def test_storage_for_c_get_needs_a_get_model_among_the_contexts():
    import pytest

    from appliance.dicom.engine import EngineSettings

    with pytest.raises(ValueError, match="C-GET model"):
        EngineSettings(contexts={STUDY_ROOT_MOVE: QR_SYNTAXES},
                       retrieve_storage={CT_IMAGE: (ExplicitVRLittleEndian,)})


def test_without_retrieve_storage_a_scp_role_proposal_gets_the_default_roles(engine):
    from pynetdicom import AE, build_role

    dicom_engine, _ = engine()  # the storage contexts, no C-GET
    ae = AE("VIEWER")
    ae.add_requested_context(CT_IMAGE, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", dicom_engine.port, ae_title="EDGEBOX",
                         ext_neg=[build_role(CT_IMAGE, scp_role=True)])
    [context] = assoc.accepted_contexts
    assoc.release()
    assert (context.as_scu, context.as_scp) == (True, False)  # we stay the storage SCP
