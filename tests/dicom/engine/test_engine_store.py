"""Native C-STORE: each data set written as received (File Meta added, data set bit-identical)
to a temp file in the directory Python names, one Python callback per image, and the status the
callback returns sent to the peer only after it returns; a full disk answers 0xA700 and leaves
no partial file. DCMTK storescu and pynetdicom as peers on 127.0.0.1."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import threading
import time
from collections import defaultdict

import pytest
from pydicom import dcmread
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage

from appliance.dicom.engine import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from tests.conftest import DCMTK_ENV
from tests.storage.dicom_files import data_set_bytes, make_study, storescu
from tests.storage.test_storage_scp import PROPOSE


def responses(stderr: str) -> list[str]:
    """storescu -v: the status of each C-STORE response, in order."""
    return re.findall(r"Received Store Response \(([^)]*)\)", stderr)


@pytest.mark.parametrize("hash_content", [False, True])
def test_files_in_every_transfer_syntax_arrive_bit_identical_one_callback_each(
        engine, tmp_path, unique_bundled, reference_scp, hash_content):
    """Bit-identical to what DCMTK storescp in bit-preserving mode writes from the same
    storescu (storescu itself may re-encode a file it sends, e.g. a deflated one), with and
    without the content hash taken while writing."""
    dicom_engine, receiver = engine(hash_content=hash_content)
    files = make_study(tmp_path / "study", 3) + unique_bundled
    by_syntax = defaultdict(list)
    for path in files:
        by_syntax[str(dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)].append(
            path)
    ref_port, ref_dir = reference_scp
    for syntax, group in by_syntax.items():  # storescu proposing just that transfer syntax
        sent = storescu(dicom_engine.port, group, "EDGEBOX", "MODALITY", "-v", PROPOSE[syntax])
        assert responses(sent.stderr) == ["Success"] * len(group), sent.stderr
        assert storescu(ref_port, group, "EDGEBOX", "MODALITY", PROPOSE[syntax]).returncode == 0
    assert len(receiver.images) == len(files)
    received = {image.sop_instance: image for image in receiver.images}
    for original in files:
        source = dcmread(original, stop_before_pixels=True)
        image = received[source.SOPInstanceUID]
        assert image.sop_class == source.SOPClassUID
        assert image.transfer_syntax == source.file_meta.TransferSyntaxUID
        assert (image.calling_ae, image.called_ae) == ("MODALITY", "EDGEBOX")
        assert os.path.dirname(image.path) == str(tmp_path / "incoming")
        [reference] = ref_dir.glob(f"*{source.SOPInstanceUID}*")
        assert data_set_bytes(image.copy) == data_set_bytes(reference), original.name
        meta = dcmread(image.copy, stop_before_pixels=True).file_meta
        assert meta.MediaStorageSOPInstanceUID == source.SOPInstanceUID
        assert meta.MediaStorageSOPClassUID == source.SOPClassUID
        assert meta.TransferSyntaxUID == source.file_meta.TransferSyntaxUID
    assert os.listdir(tmp_path / "incoming") == []  # what the callback left is removed


@pytest.mark.parametrize("status, shown", [
    (0xA700, "Refused: OutOfResources"),
    (0xC000, "Error: CannotUnderstand"),
    (0xB000, "Warning: CoercionOfDataElements"),
])
def test_the_callback_status_is_the_one_answered(engine, tmp_path, status, shown):
    dicom_engine, receiver = engine()
    receiver.status = status
    [image] = make_study(tmp_path / "study", 1)
    sent = storescu(dicom_engine.port, [image], "EDGEBOX", "STORESCU", "-v")
    assert responses(sent.stderr) == [shown], sent.stderr
    assert os.listdir(tmp_path / "incoming") == []


def test_a_failing_callback_answers_processing_failure(engine, tmp_path, caplog):
    dicom_engine, receiver = engine()
    receiver.error = RuntimeError("index is down")
    [image] = make_study(tmp_path / "study", 1)
    sent = storescu(dicom_engine.port, [image], "EDGEBOX", "STORESCU", "-v")
    assert responses(sent.stderr) == ["Unknown Status: 0x110"], sent.stderr  # 0x0110
    assert any("index is down" in record.message for record in caplog.records)


def test_the_ack_waits_for_the_callback(engine, tmp_path):
    dicom_engine, receiver = engine()
    receiver.delay = 0.5
    [image] = make_study(tmp_path / "study", 1)
    ae = AE(ae_title="PYSCU")
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", dicom_engine.port, ae_title="EDGEBOX")
    try:
        started = time.monotonic()
        status = assoc.send_c_store(dcmread(image))
        assert status.Status == 0
        assert time.monotonic() - started >= 0.5
        assert len(receiver.images) == 1  # the callback had finished when the answer came
    finally:
        assoc.release()


def test_concurrent_associations_store_everything(engine, tmp_path):
    dicom_engine, receiver = engine(max_associations=4)
    studies = [make_study(tmp_path / f"study{n}", 10, seed=n) for n in range(4)]
    results = [None] * 4

    def send(n):
        results[n] = storescu(dicom_engine.port, studies[n], "EDGEBOX", f"SCU{n}", "-v")

    threads = [threading.Thread(target=send, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for result in results:
        assert responses(result.stderr) == ["Success"] * 10, result.stderr
    assert len(receiver.images) == 40
    sent = {dcmread(p, stop_before_pixels=True).SOPInstanceUID: p
            for study in studies for p in study}
    for image in receiver.images:
        assert data_set_bytes(image.copy) == data_set_bytes(sent[image.sop_instance])


def test_file_meta_names_our_implementation(engine, tmp_path):
    dicom_engine, receiver = engine()
    [image] = make_study(tmp_path / "study", 1)
    assert storescu(dicom_engine.port, [image]).returncode == 0
    meta = dcmread(receiver.images[0].copy, stop_before_pixels=True).file_meta
    assert meta.SourceApplicationEntityTitle == "STORESCU"
    assert meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert meta.ImplementationVersionName == IMPLEMENTATION_VERSION_NAME
    assert meta.FileMetaInformationVersion == b"\x00\x01"
    assert meta.FileMetaInformationGroupLength > 0
    dump = subprocess.run(["dcmdump", "-M", str(receiver.images[0].copy)], capture_output=True,
                          text=True, timeout=30)  # DCMTK reads it as a valid file too
    assert dump.returncode == 0 and IMPLEMENTATION_VERSION_NAME in dump.stdout, dump.stderr


def test_disk_full_while_receiving_answers_A700_and_leaves_nothing(engine, tmpfs, tmp_path):
    disk = tmpfs(20)
    incoming = disk / "incoming"
    dicom_engine, receiver = engine(incoming=incoming)
    small = make_study(tmp_path / "small", 2)
    big = make_study(tmp_path / "big", 1, rows=2048, columns=2048, seed=1)  # 8 MB
    ballast = disk / "ballast"
    with open(ballast, "wb") as f:  # leave about 3 MB: less than `big`
        fs = os.statvfs(disk)
        f.write(b"\0" * (fs.f_bavail * fs.f_frsize - 3 * 2**20))
    sent = storescu(dicom_engine.port, [big[0], *small], "EDGEBOX", "STORESCU", "-v", "-nh")
    assert responses(sent.stderr) == ["Refused: OutOfResources", "Success", "Success"], \
        sent.stderr
    assert os.listdir(incoming) == []  # the partial file is gone
    assert [image.sop_instance for image in receiver.images] == [
        dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in small]
    ballast.unlink()
    again = storescu(dicom_engine.port, big, "EDGEBOX", "STORESCU", "-v")
    assert responses(again.stderr) == ["Success"], again.stderr
    assert data_set_bytes(receiver.images[-1].copy) == data_set_bytes(big[0])


def test_titles_that_are_not_utf8_reach_python_escaped(engine, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="appliance.dicom.engine")
    dicom_engine, receiver = engine()
    [image] = make_study(tmp_path / "study", 1)
    sent = subprocess.run([b"storescu", b"-v", b"-aet", b"BAD\xffSCU", b"-aec", b"EDGEBOX",
                           b"127.0.0.1", str(dicom_engine.port).encode(), bytes(image)],
                          capture_output=True, env=DCMTK_ENV, timeout=30)
    assert responses(sent.stderr.decode(errors="replace")) == ["Success"]
    assert receiver.images[0].calling_ae == "BAD\\xffSCU"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any(
            "BAD\\xffSCU -> EDGEBOX" in r.getMessage() for r in caplog.records):
        time.sleep(0.05)
    assert any("BAD\\xffSCU -> EDGEBOX" in r.getMessage() for r in caplog.records)
