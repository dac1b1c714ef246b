"""Transfer syntax negotiation when forwarding, against DCMTK storescp, which by default accepts
only uncompressed syntaxes: a stored syntax the peer refuses is sent uncompressed when the
installed decoders can decompress it (RLE), and otherwise the item fails with a clear reason."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.uid import UID, generate_uid

from appliance.forward.sender import decodable
from tests.forward.conftest import wait_until
from tests.forward.test_forward_orthanc import queue_json
from tests.storage.dicom_files import TEST_FILES
from tests.storage.test_storage_scp import send_grouped


def renamed(path, directory):
    ds = dcmread(path)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.save_as(directory / path.name, enforce_file_format=True)
    return directory / path.name


def test_refused_syntax_is_decompressed_when_possible_else_fails_with_reason(
        appliance, storescp, tmp_path):
    peer_port = storescp("PLAINSCP")
    sections = {"peers": [{"name": "plain", "ae_title": "PLAINSCP", "host": "127.0.0.1",
                           "port": peer_port}],
                "destinations": [{"peer": "plain", "retry_initial": 0.2, "retry_max": 1.0}]}
    _, port, config = appliance(sections)
    rle, plain = TEST_FILES / "MR_small_RLE.dcm", TEST_FILES / "CT_small.dcm"
    assert decodable(str(dcmread(rle).file_meta.TransferSyntaxUID))
    # A compressed file no installed decoder can read (JPEG-LS needs pylibjpeg or GDCM).
    candidates = ["MR_small_jpeg_ls_lossless.dcm", "JPGExtended.dcm", "SC_rgb_jpeg_dcmtk.dcm"]
    undecodable = [TEST_FILES / name for name in candidates if not decodable(
        str(dcmread(TEST_FILES / name, stop_before_pixels=True).file_meta.TransferSyntaxUID))]
    if not undecodable:  # pragma: no cover - depends on installed plugins
        pytest.skip("every candidate syntax is decodable here")
    jpeg = undecodable[0]
    jpeg_syntax = UID(dcmread(jpeg, stop_before_pixels=True).file_meta.TransferSyntaxUID)
    # Fresh SOP Instance UIDs: several bundled files share one.
    rle, jpeg, plain = (renamed(path, tmp_path) for path in (rle, jpeg, plain))
    send_grouped(port, [rle, jpeg, plain])

    status = wait_until(lambda: (s := queue_json(config)["plain"])["done"] == 2
                        and s["failed"] == 1 and s, 20, what="2 done, 1 failed")
    assert f"does not accept {jpeg_syntax.name}" in status["last_error"]
    assert "no installed decoder" in status["last_error"]

    out = tmp_path / "storescp0"
    [received] = out.glob(f"*{dcmread(rle).SOPInstanceUID}*")
    got = dcmread(received)
    assert not UID(got.file_meta.TransferSyntaxUID).is_compressed
    assert np.array_equal(got.pixel_array, dcmread(rle).pixel_array)
    [received] = out.glob(f"*{dcmread(plain).SOPInstanceUID}*")
    assert dcmread(received).PixelData == dcmread(plain).PixelData
    assert not list(out.glob(f"*{dcmread(jpeg).SOPInstanceUID}*"))
