"""DICOMweb tests: a running appliance (`appliance run`) holding the Query/Retrieve tests'
archive (tests/query/conftest.py) plus a few images worth rendering, all sent to it through
its DICOM port by DCMTK storescu, and the PyPI client `dicomweb-client` as the viewer.

The extra study S4 (patient P3): a 2-frame 16x12 MONOCHROME2 CT with a window and a gradient,
a MONOCHROME1 image without a window, and an 8-bit RGB image.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from tests.conftest import ApplianceProcess, free_port, wait_listening, write_config
from tests.query.conftest import STUDIES, make_archive
from tests.storage.dicom_files import storescu

PASSWORD = "correct horse battery"
S4 = "1.2.826.0.1.3680043.9.7.4"
SC = "1.2.840.10008.5.1.4.1.1.7"
CT = "1.2.840.10008.5.1.4.1.1.2"
ROWS, COLUMNS = 12, 16


def _image(uid: str, number: int, sop_class: str, **attributes) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, uid
    ds.StudyInstanceUID, ds.SeriesInstanceUID = S4, f"{S4}.{number}"
    ds.PatientID, ds.PatientName, ds.PatientSex = "P3", "Ray^Gun", "O"
    ds.StudyDate, ds.StudyTime, ds.AccessionNumber, ds.StudyID = "20261204", "090000", \
        "ACC4", "4"
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = attributes.pop("Modality"), number, 1
    ds.Rows, ds.Columns = ROWS, COLUMNS
    for key, value in attributes.items():
        setattr(ds, key, value)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def make_render_study(directory: Path) -> dict[str, Path]:
    """S4's three images: 'ct' (2 frames), 'mono1' and 'rgb', saved under `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ramp = np.arange(ROWS * COLUMNS, dtype=np.uint16).reshape(ROWS, COLUMNS)
    grey16 = dict(SamplesPerPixel=1, BitsAllocated=16, BitsStored=12, HighBit=11,
                  PixelRepresentation=0)
    images = {
        # frame 1: values 0..191; frame 2: 1000 everywhere. Window 100/101: 0..49 black,
        # 150.. white; rescale slope 1, intercept 0.
        "ct": _image(f"{S4}.1.1", 1, CT, Modality="CT", PhotometricInterpretation="MONOCHROME2",
                     NumberOfFrames=2, WindowCenter=100, WindowWidth=101, RescaleSlope=1,
                     RescaleIntercept=0, PixelData=np.stack([ramp, ramp * 0 + 1000]).tobytes(),
                     **grey16),
        # min..max 0..191 inverted: the top-left pixel white, the bottom-right black
        "mono1": _image(f"{S4}.2.1", 2, SC, Modality="OT",
                        PhotometricInterpretation="MONOCHROME1", PixelData=ramp.tobytes(),
                        **grey16),
        "rgb": _image(f"{S4}.3.1", 3, SC, Modality="OT", PhotometricInterpretation="RGB",
                      SamplesPerPixel=3, PlanarConfiguration=0, BitsAllocated=8, BitsStored=8,
                      HighBit=7, PixelRepresentation=0,
                      PixelData=np.dstack([np.full((ROWS, COLUMNS), 200, np.uint8),
                                           np.full((ROWS, COLUMNS), 10, np.uint8),
                                           np.full((ROWS, COLUMNS), 60, np.uint8)]).tobytes()),
    }
    out = {}
    for key, ds in images.items():
        out[key] = directory / f"{ds.SOPInstanceUID}.dcm"
        ds.save_as(out[key], enforce_file_format=True)
    return out


@dataclass
class Box:
    """The running appliance: its URLs, configuration, and the files it was sent."""

    process: ApplianceProcess
    config_path: Path
    web: str
    files: dict[str, list[Path]]
    rendered: dict[str, Path]

    @property
    def dicomweb(self) -> str:
        return f"{self.web}/dicom-web"

    def cli(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "appliance", *args, "--config",
                               str(self.config_path)], input=stdin, capture_output=True,
                              text=True, timeout=60, cwd=self.config_path.parent)

    def logged_in(self) -> requests.Session:
        session = requests.Session()
        answer = session.post(f"{self.web}/api/v1/login", json={"password": PASSWORD})
        assert answer.status_code == 200, answer.text
        return session

    def client(self, session: requests.Session | None = None,
               headers: dict[str, str] | None = None) -> DICOMwebClient:
        return DICOMwebClient(self.dicomweb, session=session or self.logged_in(),
                              headers=headers)


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dicomweb")
    web_port = free_port()
    config_path = write_config(tmp / "appliance.toml", {
        "dicom": {"port": free_port(), "bind": "127.0.0.1"},
        "web": {"port": web_port, "bind": "127.0.0.1"},
        "device": {"data_dir": str(tmp / "data")}})
    process = ApplianceProcess(config_path, tmp / "appliance.log")
    try:
        process.wait_ready()
        wait_listening(web_port)
        files = make_archive(tmp / "archive")
        render = make_render_study(tmp / "render")
        import tomllib
        port = tomllib.loads(config_path.read_text())["dicom"]["port"]
        sent = storescu(port, [p for paths in files.values() for p in paths] +
                        list(render.values()))
        assert sent.returncode == 0, sent.stderr
        result = Box(process, config_path, f"http://127.0.0.1:{web_port}", files, render)
        answer = result.cli("passwd", "--stdin", stdin=PASSWORD + "\n")
        assert answer.returncode == 0, answer.stderr
        yield result
    finally:
        process.stop()


__all__ = ["STUDIES", "S4", "Box", "box"]
