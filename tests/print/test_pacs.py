"""Print-to-PACS: a film printed through our Print SCP on a `pacs` printer becomes a Secondary
Capture filed with the worklist patient (or the calling AE's latest study), stored in the box,
forwarded, and found in a real Orthanc through its REST API; with neither, the job fails and
says why, and nothing reaches the PACS."""

from __future__ import annotations

import io
import time

import numpy as np
from pydicom import Dataset, dcmread
from pydicom.uid import generate_uid
from pynetdicom.sop_class import PrintJob

from appliance.worklist.item import items_from_dataset
from appliance.worklist.store import WorklistStore
from tests.forward.conftest import orthanc, wait_until  # noqa: F401 - the Orthanc fixture
from tests.print.conftest import boxes_of
from tests.storage.dicom_files import make_study, storescu

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
GRADIENT = np.tile(np.arange(256, dtype=np.uint8), (64, 1))
DPI = 100   # 14INX17IN at 100 dpi: 1400 x 1700 pixels


def pacs_sections(orthanc) -> dict:  # noqa: F811 - the fixture's value
    return {"peers": [orthanc.peer()],
            "destinations": [{"peer": "pacs", "retry_initial": 0.2, "retry_max": 1.0}],
            "printers": [{"name": "film", "driver": "pacs", "dpi": DPI,
                          "pacs_uid_root": "1.2.826.0.1.3680043.10.999."}],
            "print": {"status_interval": 0.2}}


def worklist_item(station: str, date: str, time_: str, patient: str, patient_id: str,
                  accession: str) -> Dataset:
    ds = Dataset()
    ds.PatientName, ds.PatientID = patient, patient_id
    ds.PatientBirthDate, ds.PatientSex = "19600102", "F"
    ds.AccessionNumber = accession
    ds.StudyInstanceUID = generate_uid()
    ds.RequestedProcedureID = f"RP{accession}"
    ds.RequestedProcedureDescription = "CT CHEST"
    sps = Dataset()
    sps.ScheduledStationAETitle = station
    sps.ScheduledProcedureStepStartDate, sps.ScheduledProcedureStepStartTime = date, time_
    sps.Modality = "CT"
    sps.ScheduledProcedureStepID = f"SPS{accession}"
    ds.ScheduledProcedureStepSequence = [sps]
    return ds


def print_one_film(port: int, scu) -> str:
    client = scu(port)
    assert client.session(FilmSessionLabel="chest")[0].Status == 0x0000
    status, reply = client.film_box("STANDARD\\1,1", FilmSizeID="14INX17IN")
    assert status.Status == 0x0000
    assert client.set_image(boxes_of(reply)[0], 1, GRADIENT)[0].Status == 0x0000
    status, action = client.action()
    assert status.Status == 0x0000
    client.wait_event(PrintJob, 3, timeout=30)        # DONE: the spool stored the film
    return str(action.ReferencedPrintJobSequence[0].ReferencedSOPInstanceUID)


def secondary_captures(pacs) -> list[dict]:
    found = pacs.post("/tools/find", {"Level": "Instance",
                                      "Query": {"SOPClassUID": SECONDARY_CAPTURE},
                                      "Expand": True})
    return found


def fetch(pacs, instance: dict):
    data = pacs_bytes(pacs, f"/instances/{instance['ID']}/file")
    return dcmread(io.BytesIO(data))


def pacs_bytes(pacs, path: str) -> bytes:
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{pacs.http_port}{path}", timeout=10) as rsp:
        return rsp.read()


def check_film_pixels(sc) -> None:
    assert sc.SOPClassUID == SECONDARY_CAPTURE
    assert sc.file_meta.MediaStorageSOPClassUID == SECONDARY_CAPTURE
    assert sc.file_meta.MediaStorageSOPInstanceUID == sc.SOPInstanceUID
    assert sc.SOPInstanceUID.startswith("1.2.826.0.1.3680043.10.999.")
    assert sc.SeriesInstanceUID.startswith("1.2.826.0.1.3680043.10.999.")
    assert sc.PhotometricInterpretation == "MONOCHROME2" and sc.SamplesPerPixel == 1
    assert (sc.Columns, sc.Rows) == (1400, 1700) and sc.BitsStored == 8
    pixels = sc.pixel_array
    # the gradient fills the width of the film: the middle row ramps from dark to light
    middle = pixels[sc.Rows // 2].astype(int)
    assert middle[50] < middle[700] < middle[1350]
    assert len(np.unique(middle)) > 100


def test_film_lands_in_orthanc_with_the_worklist_patient(appliance, orthanc, scu,  # noqa: F811
                                                         tmp_path):
    now = time.localtime()
    today = time.strftime("%Y%m%d", now)
    yesterday = time.strftime("%Y%m%d", time.localtime(time.time() - 86400))
    items = [
        worklist_item("PRINTSCU", today, "000000", "Film^Fiona", "PID-WL", "ACC-WL"),
        worklist_item("PRINTSCU", today, "235959.9", "Later^Larry", "PID-LATE", "ACC-LATE"),
        worklist_item("OTHERCT", today, "000000", "Other^Otto", "PID-OTHER", "ACC-OTHER"),
        worklist_item("PRINTSCU", yesterday, "120000", "Old^Olga", "PID-OLD", "ACC-OLD"),
    ]
    WorklistStore.in_data_dir(tmp_path / "data").put(
        [item for ds in items for item in items_from_dataset(ds)], "test")
    _, port, _ = appliance(pacs_sections(orthanc))
    print_one_film(port, scu)
    [found] = wait_until(lambda: secondary_captures(orthanc), 30, what="SC in Orthanc")
    sc = fetch(orthanc, found)
    assert str(sc.PatientName) == "Film^Fiona" and sc.PatientID == "PID-WL"
    assert sc.AccessionNumber == "ACC-WL"
    assert sc.StudyInstanceUID == items[0].StudyInstanceUID
    assert sc.PatientBirthDate == "19600102" and sc.PatientSex == "F"
    assert sc.Modality == "CT" and sc.ConversionType == "WSD"
    check_film_pixels(sc)


def test_without_worklist_the_film_joins_the_calling_aes_latest_study(
        appliance, orthanc, scu, tmp_path):  # noqa: F811
    _, port, _ = appliance(pacs_sections(orthanc))
    older = make_study(tmp_path / "older", 1, patient_id="PID-OLDER")
    latest = make_study(tmp_path / "latest", 2, patient_id="PID-LATEST")
    other_ae = make_study(tmp_path / "other", 1, patient_id="PID-OTHER-AE")
    assert storescu(port, older, calling="PRINTSCU").returncode == 0
    time.sleep(0.05)
    assert storescu(port, latest, calling="PRINTSCU").returncode == 0
    time.sleep(0.05)
    assert storescu(port, other_ae, calling="OTHERCT").returncode == 0  # not ours
    print_one_film(port, scu)
    [found] = wait_until(lambda: secondary_captures(orthanc), 30, what="SC in Orthanc")
    sc = fetch(orthanc, found)
    study = dcmread(latest[0], stop_before_pixels=True)
    assert sc.StudyInstanceUID == study.StudyInstanceUID
    assert sc.PatientID == "PID-LATEST" and str(sc.PatientName) == "Test^Patient"
    check_film_pixels(sc)


def test_no_worklist_item_and_no_study_fails_the_job_and_sends_nothing(
        print_server, scu):
    server = print_server(
        printers=[{"name": "film", "driver": "pacs", "dpi": 50}],
        peers=[{"name": "pacs", "ae_title": "PACS", "host": "127.0.0.1", "port": 9}],
        sections={"destinations": [{"peer": "pacs"}]})
    client = scu(server.port)
    client.session()
    status, reply = client.film_box("STANDARD\\1,1")
    client.set_image(boxes_of(reply)[0], 1, GRADIENT)
    status, action = client.action()
    assert status.Status == 0x0000
    job_uid = str(action.ReferencedPrintJobSequence[0].ReferencedSOPInstanceUID)
    job = server.spool.wait_job(job_uid)
    assert job["status"] == "FAILURE"
    assert "no worklist item for station PRINTSCU" in job["status_info"]
    assert "refusing to file the film under an unknown patient" in job["status_info"]
    client.wait_event(PrintJob, 4)   # FAILURE reaches the SCU
    status, info = client.job(job_uid)
    assert info.ExecutionStatus == "FAILURE"
    # nothing was stored or queued for the PACS
    db = server.spool.db.connection()
    assert db.execute("SELECT COUNT(*) FROM instances").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM forward_queue").fetchone()[0] == 0
