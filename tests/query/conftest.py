"""The Query/Retrieve SCP's tests: a running appliance (`appliance run`) holding a small
archive sent to it by DCMTK storescu, and DCMTK findscu / movescu / getscu as the workstation.

The archive: patient P1 (Doe^Jane) with study S1 (2026-11-02, ACC1: a CT series of 3 images
and an MR series of 1) and study S2 (2026-12-01, ACC2: one CT series of 2); patient
P2 (Roe^Max) with study S3 (2026-12-03, ACC3: one US series of 1). Seven instances.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from pydicom import Dataset, dcmread
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from tests.conftest import DCMTK_ENV
from tests.storage.dicom_files import storescu

CT, MR, US = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4", \
    "1.2.840.10008.5.1.4.1.1.6.1"
STUDIES = {
    "S1": dict(uid="1.2.826.0.1.3680043.9.7.1", patient=("P1", "Doe^Jane", "19700101", "F"),
               date="20261102", time="101500", accession="ACC1", study_id="1",
               description="CT HEAD", series=[("CT", CT, 3, "Axial"), ("MR", MR, 1, "T1")]),
    "S2": dict(uid="1.2.826.0.1.3680043.9.7.2", patient=("P1", "Doe^Jane", "19700101", "F"),
               date="20261201", time="083000", accession="ACC2", study_id="2",
               description="CT CHEST", series=[("CT", CT, 2, "Lung")]),
    "S3": dict(uid="1.2.826.0.1.3680043.9.7.3", patient=("P2", "Roe^Max", "19851224", "M"),
               date="20261203", time="140000", accession="ACC3", study_id="3",
               description="US ABDOMEN", series=[("US", US, 1, "Liver")]),
}


def make_archive(directory: Path) -> dict[str, list[Path]]:
    """The archive's files, per study key."""
    directory.mkdir(parents=True, exist_ok=True)
    out: dict[str, list[Path]] = {}
    for key, study in STUDIES.items():
        out[key] = []
        for number, (modality, sop_class, count, description) in enumerate(study["series"], 1):
            series_uid = f"{study['uid']}.{number}"
            for instance in range(1, count + 1):
                ds = Dataset()
                ds.SOPClassUID, ds.SOPInstanceUID = sop_class, f"{series_uid}.{instance}"
                ds.StudyInstanceUID, ds.SeriesInstanceUID = study["uid"], series_uid
                ds.PatientID, ds.PatientName, ds.PatientBirthDate, ds.PatientSex = \
                    study["patient"]
                ds.StudyDate, ds.StudyTime = study["date"], study["time"]
                ds.AccessionNumber, ds.StudyID = study["accession"], study["study_id"]
                ds.StudyDescription, ds.ReferringPhysicianName = study["description"], "Who^Doc"
                ds.Modality, ds.SeriesNumber, ds.SeriesDescription = modality, number, \
                    description
                ds.InstanceNumber = instance
                ds.Rows = ds.Columns = 8
                ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
                ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
                ds.PixelRepresentation = 0
                ds.PixelData = bytes(128)
                ds.file_meta = FileMetaDataset()
                ds.file_meta.MediaStorageSOPClassUID = sop_class
                ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
                ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
                path = directory / f"{ds.SOPInstanceUID}.dcm"
                ds.save_as(path, enforce_file_format=True)
                out[key].append(path)
    return out


@pytest.fixture
def archive_box(appliance, tmp_path):
    """Factory: a running appliance (extra config sections) holding the archive; returns
    (port, config_path, files per study)."""

    def start(sections: dict | None = None):
        _, port, config_path = appliance(sections)
        files = make_archive(tmp_path / "archive")
        sent = storescu(port, [p for paths in files.values() for p in paths])
        assert sent.returncode == 0, sent.stderr
        return port, config_path, files

    return start


def findscu(port: int, directory: Path, model: str, keys: list[str],
            ) -> tuple[subprocess.CompletedProcess, list[Dataset]]:
    """DCMTK findscu (`-P` or `-S`), answers extracted to files (-X) and read back."""
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.iterdir():
        old.unlink()
    args = ["findscu", "-v", model, "-aet", "VIEWER", "-aec", "EDGEBOX", "-X", "-od",
            str(directory)]
    for key in keys:
        args += ["-k", key]
    result = subprocess.run([*args, "127.0.0.1", str(port)], capture_output=True, text=True,
                            env=DCMTK_ENV, timeout=60)
    answers = [dcmread(p) for p in sorted(directory.iterdir())]
    return result, answers


def final_find_status(stderr: str) -> str:
    found = re.findall(r"Received Final Find Response \(([^)]*)\)", stderr)
    return found[-1] if found else ""
