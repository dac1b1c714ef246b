"""Coercion rules per route against a real Orthanc: what arrives (downloaded through Orthanc's
REST API) carries the route's set/remove/prefix or is de-identified per the Basic Profile of
PS3.15 Annex E, with pixel data bytes unchanged, while the file stored on the box stays as it
was received."""

from __future__ import annotations

import io
import urllib.request

import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid

from tests.forward.conftest import wait_until
from tests.forward.test_forward_orthanc import queue_json
from tests.storage.dicom_files import TEST_FILES, data_set_bytes, make_study
from tests.storage.test_storage_scp import send_grouped


@pytest.fixture
def orthanc(shared_orthanc):
    """One Orthanc for the module's tests, running and empty at the start of each."""
    return shared_orthanc


def arrived(orthanc) -> dict[str, object]:
    """Every instance Orthanc holds, downloaded as a file: SOP Instance UID -> data set."""
    result = {}
    for orthanc_id in orthanc.get("/instances"):
        url = f"http://127.0.0.1:{orthanc.http_port}/instances/{orthanc_id}/file"
        with urllib.request.urlopen(url, timeout=10) as rsp:
            ds = dcmread(io.BytesIO(rsp.read()))
        result[str(ds.SOPInstanceUID)] = ds
    return result


def delete_all(orthanc) -> None:
    for orthanc_id in orthanc.get("/instances"):
        request = urllib.request.Request(
            f"http://127.0.0.1:{orthanc.http_port}/instances/{orthanc_id}", method="DELETE")
        urllib.request.urlopen(request, timeout=10).close()


def stored_copy(config, sop_instance_uid: str):
    [path] = (config.parent / "data" / "instances").glob(f"*/{sop_instance_uid}.dcm")
    return path


def sections(orthanc, **route) -> dict:
    return {"peers": [orthanc.peer()],
            "destinations": [{"peer": "pacs", "retry_initial": 0.2, "retry_max": 1.0}],
            "routes": [{"destinations": ["pacs"], **route}]}


def with_identity(paths) -> list:
    """Give generated images more identifying attributes, and a private one."""
    for path in paths:
        ds = dcmread(path)
        ds.PatientBirthDate = "19700101"
        ds.InstitutionName = "General Hospital"
        ds.ReferringPhysicianName = "Doe^John"
        ds.AccessionNumber = "ACC1"
        ds.add_new(0x00090010, "LO", "ACME")
        ds.add_new(0x00091001, "LO", "secret")
        ds.save_as(path, enforce_file_format=True)
    return paths


def jpeg_copy(directory):
    ds = dcmread(TEST_FILES / "SC_rgb_jpeg_dcmtk.dcm")
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.PatientID = "PJ"
    directory.mkdir(parents=True, exist_ok=True)
    ds.save_as(directory / "jpeg.dcm", enforce_file_format=True)
    return directory / "jpeg.dcm"


def test_set_remove_and_prefix_change_what_arrives_not_the_stored_file(
        appliance, orthanc, tmp_path):
    _, port, config = appliance(sections(
        orthanc, set={"InstitutionName": "Central Lab", "OtherPatientIDs": "A1\\B2"},
        remove=["StudyDate"], prefix={"PatientID": "EXT-", "PatientName": "Z"}))
    files = make_study(tmp_path / "study", 3) + [jpeg_copy(tmp_path / "jpeg")]
    originals = {str(dcmread(p).SOPInstanceUID): dcmread(p) for p in files}
    send_grouped(port, files)
    wait_until(lambda: queue_json(config)["pacs"]["done"] == len(files), 30,
               what="all forwarded")

    got = arrived(orthanc)
    assert sorted(got) == sorted(originals)
    for uid, ds in got.items():
        original = originals[uid]
        assert ds.InstitutionName == "Central Lab"
        assert list(ds.OtherPatientIDs) == ["A1", "B2"]
        assert "StudyDate" not in ds and "StudyDate" in original
        assert ds.PatientID == "EXT-" + original.PatientID
        assert str(ds.PatientName) == "Z" + str(original.PatientName)
        assert ds.StudyInstanceUID == original.StudyInstanceUID
        assert ds.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
        assert ds.PixelData == original.PixelData  # encapsulated JPEG too: bytes as stored
    for path, uid in zip(files, originals, strict=True):  # the box's copy is as received
        assert data_set_bytes(stored_copy(config, uid)) == data_set_bytes(path)


def test_deidentify_basic_profile_with_consistent_uid_mapping(appliance, orthanc, tmp_path):
    sections_ = sections(orthanc, deidentify=True, set={"PatientName": "STUDY^042"})
    sections_["storage"] = {"duplicates": "replace"}
    _, port, config = appliance(sections_)
    files = with_identity(make_study(tmp_path / "study", 2))
    originals = [dcmread(p) for p in files]
    send_grouped(port, files)
    wait_until(lambda: len(orthanc.get("/instances")) == 2, 30, what="2 in Orthanc")

    first = arrived(orthanc)
    study_uids = {str(ds.StudyInstanceUID) for ds in first.values()}
    series_uids = {str(ds.SeriesInstanceUID) for ds in first.values()}
    assert len(study_uids) == 1 and len(series_uids) == 1  # one study, consistently
    [study_uid] = study_uids
    assert study_uid.startswith("2.25.") and study_uid != originals[0].StudyInstanceUID
    assert all(uid.startswith("2.25.") for uid in first)
    assert not set(first) & {str(o.SOPInstanceUID) for o in originals}
    by_number = {int(ds.InstanceNumber): ds for ds in first.values()}
    for original in originals:
        ds = by_number[int(original.InstanceNumber)]
        assert ds.PatientID == "" and ds.StudyDate == "" and ds.PatientBirthDate == ""
        assert ds.AccessionNumber == "" and ds.ReferringPhysicianName == ""
        assert ds.InstitutionName not in ("", "General Hospital")
        assert str(ds.PatientName) == "STUDY^042"  # set applies after de-identification
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
        assert not any(elem.tag.is_private for elem in ds)
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.Modality == original.Modality and ds.Rows == original.Rows
        assert ds.PixelData == original.PixelData
    for path, original in zip(files, originals, strict=True):
        stored = dcmread(stored_copy(config, str(original.SOPInstanceUID)))
        assert stored.PatientName == "Test^Patient" and stored[0x00091001].value == "secret"
        assert data_set_bytes(stored_copy(config, str(original.SOPInstanceUID))) == \
            data_set_bytes(path)

    # Sent again (stored again, `replace`): the same new UIDs as the first time.
    delete_all(orthanc)
    assert orthanc.get("/instances") == []
    send_grouped(port, files)
    wait_until(lambda: len(orthanc.get("/instances")) == 2, 30, what="2 in Orthanc again")
    second = arrived(orthanc)
    assert sorted(second) == sorted(first)
    assert {str(ds.StudyInstanceUID) for ds in second.values()} == study_uids


def test_a_rule_the_instance_cannot_take_fails_it_alone_with_the_reason(
        appliance, orthanc, tmp_path):
    _, port, config = appliance(sections(orthanc, prefix={"PatientID": "P" * 60}))
    long_id = make_study(tmp_path / "long", 1, patient_id="LONGPATIENTID")
    short_id = make_study(tmp_path / "short", 1, patient_id="S")
    send_grouped(port, long_id + short_id)
    status = wait_until(lambda: (s := queue_json(config)["pacs"])["done"] == 1
                        and s["failed"] == 1 and s, 30, what="1 done, 1 failed")
    assert "coercion rules not applicable: prefix PatientID" in status["last_error"]
    assert "exceeds the maximum length of 64" in status["last_error"]
    [ds] = arrived(orthanc).values()
    assert ds.PatientID == "P" * 60 + "S"
