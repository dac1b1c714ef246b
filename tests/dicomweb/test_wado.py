"""WADO-RS on the box, retrieved with dicomweb-client: instances as stored, series and studies
as multipart/related, metadata without bulk data, rendered PNG frames, 404 and 406."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from pydicom import dcmread

from tests.dicomweb.conftest import COLUMNS, ROWS, S4, STUDIES
from tests.storage.dicom_files import data_set_bytes

S1 = STUDIES["S1"]["uid"]


def _held(box, sop_uid):
    """The file the box stored for an instance."""
    data = box.config_path.parent / "data" / "instances"
    [path] = [p for p in data.rglob("*.dcm") if p.stem == sop_uid or sop_uid in p.name]
    return path


def test_retrieve_instance_is_the_stored_data_set(box):
    sent = box.files["S1"][0]
    sop = dcmread(sent).SOPInstanceUID
    got = box.client().retrieve_instance(S1, f"{S1}.1", sop)
    raw = io.BytesIO()
    got.save_as(raw, enforce_file_format=True)
    path = box.config_path.parent / "received.dcm"
    path.write_bytes(raw.getvalue())
    assert data_set_bytes(path) == data_set_bytes(sent)
    # and the raw multipart part is the stored file byte for byte
    answer = box.logged_in().get(f"{box.dicomweb}/studies/{S1}/series/{S1}.1/instances/{sop}",
                                 headers={"Accept": 'multipart/related; type="application/dicom"'})
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith('multipart/related; type="application/dicom"')
    assert _held(box, sop).read_bytes() in answer.content


def test_retrieve_series_and_study(box):
    client = box.client()
    series = client.retrieve_series(S1, f"{S1}.1")
    assert sorted(ds.SOPInstanceUID for ds in series) == [f"{S1}.1.{n}" for n in (1, 2, 3)]
    study = client.retrieve_study(S1)
    assert sorted(ds.SOPInstanceUID for ds in study) == sorted(
        str(dcmread(p).SOPInstanceUID) for p in box.files["S1"])
    assert all(ds.PixelData == bytes(128) for ds in study)


def test_metadata_without_bulk_data(box):
    client = box.client()
    study = client.retrieve_study_metadata(S1)
    assert len(study) == 4
    assert all("7FE00010" not in item for item in study)
    assert {item["00080018"]["Value"][0] for item in study} == {
        str(dcmread(p).SOPInstanceUID) for p in box.files["S1"]}
    instance = client.retrieve_instance_metadata(S1, f"{S1}.2", f"{S1}.2.1")
    assert instance["00080060"]["Value"] == ["MR"]
    assert instance["00100010"]["Value"] == [{"Alphabetic": "Doe^Jane"}]
    assert len(client.retrieve_series_metadata(S1, f"{S1}.1")) == 3


def _png(box, path, accept="image/png"):
    answer = box.logged_in().get(f"{box.dicomweb}{path}", headers={"Accept": accept})
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(answer.content)))


def test_rendered_frames_windowed_and_inverted(box):
    ct = f"/studies/{S4}/series/{S4}.1/instances/{S4}.1.1"
    frame = box.client().retrieve_instance_frames_rendered(S4, f"{S4}.1", f"{S4}.1.1", [1],
                                                           media_types=("image/png",))
    image = Image.open(io.BytesIO(frame))
    assert image.size == (COLUMNS, ROWS) and image.mode == "L"
    first = np.asarray(image)
    # window 100/101 over the ramp 0..191: values up to 49 black, from 150 white
    assert first[0, 0] == 0 and first.flat[49] == 0
    assert first.flat[150] == 255 and first[-1, -1] == 255
    assert 0 < first.flat[100] < 255
    assert np.array_equal(_png(box, f"{ct}/rendered"), first)
    second = _png(box, f"{ct}/frames/2/rendered", accept="*/*")
    assert (second == 255).all()  # 1000 is above the window
    mono1 = _png(box, f"/studies/{S4}/series/{S4}.2/instances/{S4}.2.1/rendered")
    assert mono1[0, 0] == 255 and mono1[-1, -1] == 0  # min..max, inverted
    rgb = _png(box, f"/studies/{S4}/series/{S4}.3/instances/{S4}.3.1/rendered")
    assert rgb.shape == (ROWS, COLUMNS, 3) and tuple(rgb[5, 5]) == (200, 10, 60)


def test_unknown_uids_404_and_unsupported_accept_406(box):
    session = box.logged_in()

    def get(path, accept=None):
        return session.get(f"{box.dicomweb}{path}",
                           headers={"Accept": accept} if accept else {})

    assert get("/studies/1.2.3.4").status_code == 404
    assert get(f"/studies/{S1}/series/1.2.3").status_code == 404
    answer = get(f"/studies/{S1}/series/{S1}.1/instances/1.2.3/metadata")
    assert answer.status_code == 404 and "1.2.3" in answer.json()["detail"]
    assert get(f"/studies/{S4}/series/{S4}.1/instances/{S4}.1.1/frames/3/rendered"
               ).status_code == 404
    assert get(f"/studies/{S1}", accept="application/zip").status_code == 406
    assert get(f"/studies/{S1}", accept='multipart/related; type="application/dicom"; '
               "transfer-syntax=1.2.840.10008.1.2.4.50").status_code == 406
    assert get(f"/studies/{S4}/series/{S4}.1/instances/{S4}.1.1/rendered",
               accept="image/jpeg").status_code == 406
    assert get(f"/studies/{S1}/metadata", accept="text/html").status_code == 406
