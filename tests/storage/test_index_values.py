"""The index values of a received object come from the structural check's own walk of the file
(no second parse with pydicom) when they are plain ASCII, and from pydicom when decoding could
change them (character sets, several values): either way the same text as pydicom reads."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
)

from appliance.dicom import storage
from appliance.dicom.dataset_check import check_received_file
from appliance.dicom.storage import _INDEX_TAGS, read_meta
from tests.storage.dicom_files import bundled_files, make_study

#: Values that pydicom must decode (and the index must show as pydicom does).
DECODED = {
    "latin-1 name": ("ISO_IR 100", "PatientName", "Müller^Jürgen"),
    "utf-8 name": ("ISO_IR 192", "PatientName", "Ødegård^Åse"),
    "iso 2022 japanese name": ("\\ISO 2022 IR 87", "PatientName",
                               "Yamada^Tarou=山田^太郎=やまだ^たろう"),
    "two modalities": (None, "Modality", ["CT", "PT"]),
}


def pydicom_meta(path: Path):
    """What the index held before: everything read by pydicom."""
    return read_meta(path, "CT1")


def walked_meta(path: Path):
    return read_meta(path, "CT1", check_received_file(path, _INDEX_TAGS))


@pytest.mark.parametrize("syntax", [None, ImplicitVRLittleEndian, ExplicitVRBigEndian,
                                    DeflatedExplicitVRLittleEndian])
def test_plain_values_are_read_from_the_walk_without_pydicom(tmp_path, monkeypatch, syntax):
    kwargs = {"transfer_syntax": syntax} if syntax else {}
    path = make_study(tmp_path, 1, patient_id="PID 42 ", **kwargs)[0]
    ds = dcmread(path)
    ds.AccessionNumber = "ACC-7"
    ds.save_as(path)
    expected = pydicom_meta(path)

    def no_pydicom(*args, **kwargs):
        raise AssertionError("plain values were parsed again with pydicom")

    monkeypatch.setattr(storage, "dcmread", no_pydicom)
    meta = walked_meta(path)
    assert meta == expected
    assert (meta.patient_id, meta.accession_number, meta.patient_name) == \
        ("PID 42", "ACC-7", "Test^Patient")
    assert meta.transfer_syntax == str(syntax or ds.file_meta.TransferSyntaxUID)


@pytest.mark.parametrize("case", DECODED)
def test_values_that_need_decoding_read_as_pydicom_reads_them(tmp_path, monkeypatch, case):
    charset, keyword, value = DECODED[case]
    path = make_study(tmp_path, 1)[0]
    ds = dcmread(path)
    if charset:
        ds.SpecificCharacterSet = charset
    setattr(ds, keyword, value)
    ds.save_as(path)
    calls = []
    real = storage.dcmread
    monkeypatch.setattr(storage, "dcmread", lambda *a, **k: calls.append(a) or real(*a, **k))
    meta = walked_meta(path)
    assert calls, "a value that needs decoding must be read by pydicom"
    assert meta == pydicom_meta(path)
    if isinstance(value, str):
        assert getattr(meta, {"PatientName": "patient_name"}[keyword]) == value


@pytest.mark.parametrize("path", bundled_files(), ids=lambda p: p.name)
def test_pydicom_test_files_index_the_same_either_way(path):
    try:
        expected = pydicom_meta(path)
    except ValueError:
        pytest.skip("names no valid SOP instance")
    assert walked_meta(path) == expected
