"""The Storage SCP against DCMTK storescu: every object stored as sent, durably, indexed; the
failure statuses instead of silent loss; the duplicate SOP Instance UID policy."""

from __future__ import annotations

import subprocess
import time
from collections import defaultdict
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid
from pynetdicom import AE, _config

from appliance.dicom.sockets import SCU_HANDLERS
from tests.conftest import DCMTK_ENV, free_port, wait_listening
from tests.storage.dicom_files import data_set_bytes, make_study, storescu

#: storescu option that proposes each file's own transfer syntax (so it is sent unchanged).
PROPOSE = {"1.2.840.10008.1.2": "-xi", "1.2.840.10008.1.2.1": "-xe",
           "1.2.840.10008.1.2.2": "-xb", "1.2.840.10008.1.2.5": "-xr",
           "1.2.840.10008.1.2.4.50": "-xy", "1.2.840.10008.1.2.4.51": "-xx",
           "1.2.840.10008.1.2.4.90": "-xv", "1.2.840.10008.1.2.4.80": "-xt",
           "1.2.840.10008.1.2.1.99": "-xd"}


def send_grouped(port: int, files: list[Path], calling: str = "MODALITY") -> None:
    groups = defaultdict(list)
    for path in files:
        groups[str(dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)].append(path)
    for tsyntax, group in groups.items():
        result = storescu(port, group, "EDGEBOX", calling, PROPOSE[tsyntax])
        assert result.returncode == 0, result.stderr


@pytest.fixture
def reference_scp(tmp_path):
    """DCMTK storescp in bit-preserving mode: writes each data set exactly as it arrived."""
    out = tmp_path / "reference"
    out.mkdir()
    port = free_port()
    proc = subprocess.Popen(["storescp", "+B", "+xa", "-aet", "EDGEBOX", "-od", str(out),
                             str(port)], env=DCMTK_ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_listening(port)
    yield port, out
    proc.terminate()
    proc.wait(10)


def test_storescu_study_and_bundled_files_are_stored_as_sent_and_indexed(
        storage_server, reference_scp, unique_bundled, tmp_path):
    server = storage_server()
    study = make_study(tmp_path / "study", 12, patient_id="P-17")
    files = study + unique_bundled
    before = time.time()
    send_grouped(server.port, files)
    ref_port, ref_dir = reference_scp
    send_grouped(ref_port, files)

    rows = {row["sop_instance_uid"]: row for row in server.rows()}
    assert len(rows) == len(files)
    for path in files:
        sent = dcmread(path, stop_before_pixels=True)
        row = rows[sent.SOPInstanceUID]
        stored = server.store.path_of(row["path"])
        [reference] = ref_dir.glob(f"*{sent.SOPInstanceUID}*")
        assert data_set_bytes(stored) == data_set_bytes(reference), path.name
        meta = dcmread(stored, stop_before_pixels=True).file_meta
        assert meta.TransferSyntaxUID == sent.file_meta.TransferSyntaxUID
        assert meta.MediaStorageSOPClassUID == sent.SOPClassUID
        assert meta.MediaStorageSOPInstanceUID == sent.SOPInstanceUID
        assert row["sop_class_uid"] == sent.SOPClassUID
        assert row["study_uid"] == sent.StudyInstanceUID
        assert row["series_uid"] == sent.SeriesInstanceUID
        assert row["patient_id"] == str(sent.get("PatientID", ""))
        assert row["patient_name"] == str(sent.get("PatientName", ""))
        assert row["modality"] == sent.get("Modality", "")
        assert row["calling_aet"] == "MODALITY"
        assert row["transfer_syntax"] == sent.file_meta.TransferSyntaxUID
        assert row["size"] == stored.stat().st_size
        assert before <= row["received_at"] <= time.time()
        assert stored.parent.parent == server.store.root
    assert {rows[dcmread(p).SOPInstanceUID]["patient_id"] for p in study} == {"P-17"}
    assert list(server.store.incoming.iterdir()) == []  # no temp file left behind


def test_index_uses_wal_and_full_sync(storage_server):
    conn = storage_server().store.db.connection()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_partial_receptions_left_by_a_crash_are_cleared_at_start(tmp_path, storage_server):
    incoming = tmp_path / "data0" / "instances" / ".incoming"
    incoming.mkdir(parents=True)
    (incoming / ".rx-leftover.dcm").write_bytes(b"half an image")
    server = storage_server()
    assert list(server.store.incoming.iterdir()) == []


# -- statuses for bad input, sent with pynetdicom so the data set can be anything -------------

def image(sop_class=CTImageStorage, uid: str | None = None, patient: str = "P1") -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = uid or generate_uid()
    ds.StudyInstanceUID = "1.2.3.4"
    ds.SeriesInstanceUID = "1.2.3.4.5"
    ds.PatientID = patient
    ds.Modality = "CT"
    return ds


def send(port: int, *items, contexts=(CTImageStorage, MRImageStorage)) -> list[int]:
    """Send datasets (or file paths, streamed as they are) and return the statuses."""
    ae = AE(ae_title="TESTSCU")
    for sop_class in contexts:
        ae.add_requested_context(sop_class, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title="EDGEBOX", evt_handlers=SCU_HANDLERS)
    assert assoc.is_established
    statuses = []
    try:
        for item in items:
            if isinstance(item, Path):
                before = _config.STORE_SEND_CHUNKED_DATASET
                _config.STORE_SEND_CHUNKED_DATASET = True  # send the file's bytes as they are
                try:
                    rsp = assoc.send_c_store(item)
                finally:
                    _config.STORE_SEND_CHUNKED_DATASET = before
            else:
                rsp = assoc.send_c_store(item)
            statuses.append(rsp.Status)
    finally:
        assoc.release()
    return statuses


def test_unreadable_data_set_gets_cannot_understand(storage_server, tmp_path):
    server = storage_server()
    good = image()
    path = tmp_path / "bad.dcm"
    good.save_as(path, enforce_file_format=True)
    head = path.read_bytes()
    meta_end = len(head) - len(data_set_bytes(path))
    for body in (b"this is not a DICOM data set at all, just text....",
                 b"\x08\x00\x16\x00UI\xff\xff" + b"\x01" * 40):  # SOP Class UID: garbage
        path.write_bytes(head[:meta_end] + body)
        assert send(server.port, path) == [0xC000]
    assert server.rows() == []
    assert list(server.store.incoming.iterdir()) == []


def test_sop_class_not_matching_the_command_gets_A900(storage_server, tmp_path):
    server = storage_server()
    ds = image(sop_class=MRImageStorage)
    path = tmp_path / "mismatch.dcm"
    ds.save_as(path, enforce_file_format=True)
    raw = bytearray(path.read_bytes())
    # Say "CT" in the command (file meta drives the command), keep "MR" in the data set.
    meta_end = len(raw) - len(data_set_bytes(path))
    head = bytes(raw[:meta_end]).replace(str(MRImageStorage).encode(), str(CTImageStorage)
                                         .encode().ljust(len(str(MRImageStorage)), b"\0"))
    assert len(str(CTImageStorage)) == len(str(MRImageStorage))
    path.write_bytes(head + bytes(raw[meta_end:]))
    assert send(server.port, path) == [0xA900]
    assert server.rows() == []


def test_write_error_is_a_failure_not_a_success(storage_server):
    server = storage_server()
    ds = image()
    # Something that is not a file sits where the instance must go: the rename fails.
    blocker = server.store.root / "1.2.3.4" / f"{ds.SOPInstanceUID}.dcm"
    blocker.mkdir(parents=True)
    (blocker / "x").write_text("occupied")
    assert send(server.port, ds) == [0x0110]
    assert server.rows() == []


def test_store_not_running_answers_out_of_resources(storage_server):
    server = storage_server()
    server.storage.stop(timeout=1)
    assert send(server.port, image()) == [0xA700]
    server.storage.start()
    assert send(server.port, image()) == [0x0000]


def test_duplicate_keep_first_keeps_the_first_copy_and_logs(storage_server, caplog):
    server = storage_server()
    uid = generate_uid()
    assert send(server.port, image(uid=uid, patient="FIRST"), image(uid=uid, patient="SECOND")) \
        == [0x0000, 0x0000]
    [row] = server.rows()
    assert row["patient_id"] == "FIRST" and row["received_count"] == 2
    assert dcmread(server.store.path_of(row["path"])).PatientID == "FIRST"
    assert f"duplicate SOP Instance UID {uid}" in caplog.text
    assert "kept the copy stored first" in caplog.text


def test_duplicate_replace_replaces_the_copy_and_queues_it_again(storage_server, caplog):
    server = storage_server(
        peers=[{"name": "pacs", "ae_title": "PACS", "host": "127.0.0.1", "port": 1}],
        destinations=[{"peer": "pacs"}], storage={"duplicates": "replace"})
    uid = generate_uid()
    assert send(server.port, image(uid=uid, patient="FIRST")) == [0x0000]
    conn = server.store.db.connection()
    conn.execute("UPDATE forward_queue SET state = 'done'")
    assert send(server.port, image(uid=uid, patient="SECOND")) == [0x0000]
    [row] = server.rows()
    assert row["patient_id"] == "SECOND" and row["received_count"] == 2
    assert dcmread(server.store.path_of(row["path"])).PatientID == "SECOND"
    assert [(q["destination"], q["state"]) for q in server.queue_rows()] == [("pacs", "pending")]
    assert "replaced the stored copy" in caplog.text


def test_stored_instances_are_queued_for_every_destination_by_default(storage_server):
    server = storage_server(
        peers=[{"name": "a", "ae_title": "A", "host": "127.0.0.1", "port": 1},
               {"name": "b", "ae_title": "B", "host": "127.0.0.1", "port": 2}],
        destinations=[{"peer": "a"}, {"peer": "b"}])
    assert send(server.port, image()) == [0x0000]
    assert sorted(q["destination"] for q in server.queue_rows()) == ["a", "b"]


def test_routes_choose_destinations_by_calling_ae_modality_and_sop_class(storage_server):
    server = storage_server(
        peers=[{"name": "ct", "ae_title": "A", "host": "127.0.0.1", "port": 1},
               {"name": "mr", "ae_title": "B", "host": "127.0.0.1", "port": 2},
               {"name": "all", "ae_title": "C", "host": "127.0.0.1", "port": 3}],
        destinations=[{"peer": "ct"}, {"peer": "mr"}, {"peer": "all"}],
        routes=[{"destinations": ["ct"], "modalities": ["CT"]},
                {"destinations": ["mr"], "sop_classes": [str(MRImageStorage)]},
                {"destinations": ["all"], "calling_aets": ["TESTSCU"]}])
    ct, mr = image(), image(sop_class=MRImageStorage)
    mr.Modality = "MR"
    assert send(server.port, ct, mr) == [0x0000, 0x0000]
    by_uid = defaultdict(set)
    ids = {row["id"]: row["sop_instance_uid"] for row in server.rows()}
    for q in server.queue_rows():
        by_uid[ids[q["instance_id"]]].add(q["destination"])
    assert by_uid[ct.SOPInstanceUID] == {"ct", "all"}
    assert by_uid[mr.SOPInstanceUID] == {"mr", "all"}


def test_a_new_data_dir_takes_received_objects_after_a_reload(storage_server, tmp_path):
    """Reload order is storage first, then the DICOM server: the server must see that the
    storage has moved and receive into the new data directory (a rename across file systems
    would fail every store)."""
    server = storage_server()
    data = server.config.model_dump()
    data["device"]["data_dir"] = str(tmp_path / "moved")
    moved = type(server.config).model_validate(data)
    server.storage.reconfigure(moved)
    server.server.reconfigure(moved)
    assert server.server.engine.incoming_dir == tmp_path / "moved" / "instances" / ".incoming"
    assert send(server.port, image()) == [0x0000]
    assert list((tmp_path / "moved" / "instances").glob("*/*.dcm"))
