"""Memory stays bounded by the PDU size whatever the object's size: the engine (in its own
process) receives one 500 MB object and its peak RSS grows by a few MB, not by the object."""

from __future__ import annotations

import os

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from tests.dicom.port_probe import stats
from tests.storage.dicom_files import storescu

OBJECT_MB = 500


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def big_object(path, megabytes: int):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientID = "OT", "BIG"
    side = 4096
    frames = -(-megabytes * 10**6 // (side * side * 2))  # at least `megabytes` * 10^6 bytes
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows = ds.Columns = side
    ds.NumberOfFrames = frames
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = bytes(side * side * 2 * frames)
    ds.save_as(path, enforce_file_format=True)
    return path


def test_a_500_MB_object_is_received_in_bounded_memory(engine_process, tmp_path):
    proc, port, log = engine_process
    path = big_object(tmp_path / "big.dcm", OBJECT_MB)
    assert os.path.getsize(path) > OBJECT_MB * 10**6
    before = peak_rss_mb(proc.pid)
    sent = storescu(port, [path], "EDGEBOX", "STORESCU", "-v", timeout=300)
    assert "Received Store Response (Success)" in sent.stderr, sent.stderr
    after = peak_rss_mb(proc.pid)
    print(f"engine peak RSS {before:.1f} MB before, {after:.1f} MB after; {stats(proc.pid)}")
    assert after - before < 20, (before, after)
    assert os.listdir(tmp_path / "incoming") == []  # the callback kept nothing: removed
