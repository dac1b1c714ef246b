"""Test data: generated studies (real CT/DX-like objects written by pydicom) and pydicom's
bundled test files, plus a DCMTK storescu wrapper."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pydicom.data
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from tests.conftest import DCMTK_ENV

#: pydicom's bundled files in several SOP classes and transfer syntaxes (uncompressed, RLE,
#: JPEG, JPEG 2000, big endian, deflated).
BUNDLED = ["CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "MR_small_RLE.dcm",
           "MR_small_bigendian.dcm", "SC_rgb_jpeg_dcmtk.dcm", "MR_small_jp2klossless.dcm",
           "MR_small_jpeg_ls_lossless.dcm", "JPGExtended.dcm", "image_dfl.dcm", "rtplan.dcm",
           "rtdose.dcm", "test-SR.dcm", "waveform_ecg.dcm", "SC_rgb_rle.dcm"]
#: Where pydicom keeps them (read locally: never let pydicom try to download anything).
TEST_FILES = Path(pydicom.data.__file__).parent / "test_files"


def bundled_files() -> list[Path]:
    return [TEST_FILES / name for name in BUNDLED]


def make_study(directory: Path, count: int, rows: int = 64, columns: int = 64,
               modality: str = "CT", patient_id: str = "PID1", study_uid: str | None = None,
               sop_class: str = CTImageStorage, transfer_syntax=ExplicitVRLittleEndian,
               seed: int = 0) -> list[Path]:
    """Write `count` images of one series of one study; returns the file paths."""
    directory.mkdir(parents=True, exist_ok=True)
    study_uid = study_uid or generate_uid()
    series_uid = generate_uid()
    rng = np.random.default_rng(seed)
    paths = []
    for number in range(count):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = sop_class
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = transfer_syntax
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.PatientID = patient_id
        ds.PatientName = "Test^Patient"
        ds.Modality = modality
        ds.StudyDate = "20240101"
        ds.InstanceNumber = number + 1
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = rows, columns
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelData = rng.integers(0, 4096, (rows, columns), dtype=np.uint16).tobytes()
        path = directory / f"{modality}{number:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def storescu(port: int, files: list[Path], called: str = "EDGEBOX", calling: str = "STORESCU",
             *extra: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """DCMTK storescu sending `files` (each proposed in its own transfer syntax) to us."""
    return subprocess.run(
        ["storescu", "-aet", calling, "-aec", called, *extra,
         "127.0.0.1", str(port), *map(str, files)],
        capture_output=True, text=True, env=DCMTK_ENV, timeout=timeout)


def data_set_bytes(path: Path) -> bytes:
    """The data set part of a DICOM file (everything after the File Meta group)."""
    from pydicom.filereader import _read_file_meta_info, read_preamble
    with open(path, "rb") as f:
        read_preamble(f, False)
        _read_file_meta_info(f)
        return f.read()


def read(path: Path):
    return dcmread(path)
