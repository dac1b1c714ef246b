"""DICOMweb destinations against a real archive: Orthanc with its DICOMweb plugin (Debian
`orthanc-dicomweb`) receives by STOW-RS what the appliance stored: instances arrive intact (the
same data set and transfer syntax, checked through Orthanc's REST API); wrong basic-auth
credentials are refused and the queue says why; with the archive down the queue keeps
everything and delivers it once it is back, nothing twice; `appliance echo NAME` checks the
peer with a QIDO-RS query; a route's coercion rules apply to the STOW-RS copy."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from pydicom import dcmread

from tests.conftest import REPO
from tests.forward.conftest import Orthanc, wait_until
from tests.forward.test_forward_orthanc import queue_json, uids
from tests.storage.dicom_files import bundled_files, data_set_bytes, make_study, storescu
from tests.storage.test_storage_scp import send_grouped

USERS = {"alice": "right-password"}


@pytest.fixture(scope="module")
def module_archive(tmp_path_factory):
    """Orthanc with DICOMweb and basic authentication (user alice), one for the module."""
    server = Orthanc(tmp_path_factory.mktemp("orthanc"), dicomweb=True, users=USERS).start()
    yield server
    server.discard()


@pytest.fixture
def archive(module_archive):
    """The module's archive, running and empty at the start of each test."""
    return module_archive.reset()


def sections(archive, password: str = "right-password", **destination) -> dict:
    peer = archive.dicomweb_peer(auth="basic", username="alice", password=password)
    return {"peers": [peer],
            "destinations": [{"peer": "pacs", "retry_initial": 0.2, "retry_max": 1.0,
                              "batch_size": 8, **destination}]}


def echo(config_path, name: str = "pacs") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "appliance", "echo", "--config",
                           str(config_path), name, "--timeout", "5"], capture_output=True,
                          text=True, cwd=REPO, timeout=30)


def test_instances_arrive_intact_by_stow_rs(appliance, archive, tmp_path):
    _, port, config = appliance(sections(archive))
    files = make_study(tmp_path / "study", 12) + [
        f for f in bundled_files() if f.name in ("MR_small_RLE.dcm", "SC_rgb_jpeg_dcmtk.dcm",
                                                  "rtplan.dcm")]
    send_grouped(port, files)
    expected = uids(files)
    wait_until(lambda: sorted(archive.sop_instance_uids()) == expected, 30,
               what="all instances in Orthanc")
    status = wait_until(lambda: (s := queue_json(config)["pacs"])["done"] == len(files) and s,
                        10, what="queue shows all done")
    assert status["pending"] == 0 and status["failed"] == 0
    assert status["target"].startswith("STOW-RS http://127.0.0.1:")
    assert archive.new_instance_changes() == len(files)
    data_dir = config.parent / "data"
    for path in files:
        uid = dcmread(path, stop_before_pixels=True).SOPInstanceUID
        [stored] = data_dir.glob(f"instances/*/{uid}.dcm")  # the box's copy, sent as it is
        [found] = archive.post("/tools/find", {"Level": "Instance",
                                               "Query": {"SOPInstanceUID": uid}})
        received = archive.get_bytes(f"/instances/{found}/file")
        assert received == stored.read_bytes(), path.name  # byte for byte


def test_wrong_basic_auth_password_is_refused_and_the_queue_says_why(appliance, archive,
                                                                      tmp_path):
    _, port, config = appliance(sections(archive, password="wrong-password"))
    files = make_study(tmp_path / "study", 3)
    assert storescu(port, files).returncode == 0
    status = wait_until(lambda: (s := queue_json(config)["pacs"])["last_error"] and s, 15,
                        what="a recorded failure")
    assert "HTTP 401" in status["last_error"] and "credentials" in status["last_error"]
    assert status["pending"] == 3 and status["done"] == 0
    assert archive.sop_instance_uids() == []
    refused = echo(config)
    assert refused.returncode == 1 and "QIDO-RS pacs" in refused.stderr
    assert "HTTP 401" in refused.stderr


def test_archive_down_then_up_delivers_everything_once(appliance, archive, tmp_path):
    archive.stop()
    _, port, config = appliance(sections(archive))
    files = make_study(tmp_path / "study", 20)
    assert storescu(port, files).returncode == 0
    status = wait_until(lambda: (s := queue_json(config)["pacs"])["last_error"] and s, 15,
                        what="a recorded connection failure")
    assert "connection refused" in status["last_error"]
    assert status["pending"] == 20 and status["done"] == 0
    down = echo(config)
    assert down.returncode == 1 and "connection refused" in down.stderr
    archive.start()
    wait_until(lambda: len(archive.sop_instance_uids()) == 20, 30, what="all 20 in Orthanc")
    wait_until(lambda: queue_json(config)["pacs"]["done"] == 20, 10)
    assert sorted(archive.sop_instance_uids()) == uids(files)
    assert archive.new_instance_changes() == 20


def test_echo_checks_a_dicomweb_peer_with_qido_rs(appliance, archive):
    _, _, config = appliance(sections(archive))
    result = echo(config)
    assert result.returncode == 0, result.stderr
    assert f"QIDO-RS pacs ({archive.dicomweb_url}): success" in result.stdout


def test_route_coercion_applies_to_the_stow_rs_copy_not_the_stored_file(appliance, archive,
                                                                          tmp_path):
    config_sections = sections(archive)
    config_sections["routes"] = [{"destinations": ["pacs"], "prefix": {"PatientID": "EXT-"},
                                  "set": {"InstitutionName": "Central Lab"}}]
    _, port, config = appliance(config_sections)
    files = make_study(tmp_path / "study", 3)
    send_grouped(port, files)
    wait_until(lambda: queue_json(config)["pacs"]["done"] == len(files), 30,
               what="all forwarded")
    data_dir = config.parent / "data"
    for path in files:
        original = dcmread(path)
        [found] = archive.post("/tools/find", {"Level": "Instance", "Query": {
            "SOPInstanceUID": original.SOPInstanceUID}})
        received = dcmread(io.BytesIO(archive.get_bytes(f"/instances/{found}/file")))
        assert received.PatientID == "EXT-" + original.PatientID
        assert received.InstitutionName == "Central Lab"
        assert received.PixelData == original.PixelData
        assert received.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
        [stored] = data_dir.glob(f"instances/*/{original.SOPInstanceUID}.dcm")
        assert data_set_bytes(stored) == data_set_bytes(path)  # the box's copy as received
