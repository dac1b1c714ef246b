"""Data sets no archive would take are refused before the ack: each received data set is
walked to its end (lengths, VRs, sequences, items, delimiters) and what does not parse gets
0xC000 with the reason in the log, and nothing of it is kept. The files are sent byte for
byte with pynetdicom (DCMTK storescu re-encodes, or refuses to read, a broken file)."""

from __future__ import annotations

import logging
import struct
import time
from io import BytesIO
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import ExplicitVRLittleEndian

from appliance.dicom.dataset_check import MalformedDataSet, check_received_file
from tests.storage.dicom_files import data_set_bytes, make_study, storescu
from tests.storage.test_storage_scp import send


def split(path: Path) -> tuple[bytes, bytes]:
    """(preamble + File Meta, data set) of a DICOM file."""
    raw = path.read_bytes()
    body = data_set_bytes(path)
    return raw[:len(raw) - len(body)], body


def element_offset(body: bytes, tag: int) -> int:
    """Where an explicit VR little endian element starts in a data set (found by its tag)."""
    offset = body.find(struct.pack("<HH", tag >> 16, tag & 0xFFFF))
    assert offset >= 0
    return offset


def length_past_the_end(good: Path) -> bytes:
    head, body = split(good)
    at = element_offset(body, 0x00100020) + 6  # Patient ID: its 16-bit length
    return head + body[:at] + struct.pack("<H", 0xFFF0) + body[at + 2:]


def pixel_data_cut(good: Path) -> bytes:
    return good.read_bytes()[:-1000]  # the length still says the whole 8192 bytes


def pixel_data_short_of_its_size(good: Path) -> bytes:
    head, body = split(good)
    at = element_offset(body, 0x7FE00010)  # OW: tag, VR, 2 reserved, 32-bit length
    pixels = body[at + 12:at + 12 + 4096]  # half the 64 x 64 x 16 bits, length agrees
    return head + body[:at + 8] + struct.pack("<L", len(pixels)) + pixels


def trailing_bytes(good: Path) -> bytes:
    return good.read_bytes() + b"\x13\x37ab"  # too short to be an element


def trailing_garbage(good: Path) -> bytes:
    return good.read_bytes() + b"\x13\x37 leftover bytes from a buggy writer!"


def implicit_data_set_in_explicit_syntax(good: Path) -> bytes:
    """The data set encoded implicit VR while the transfer syntax says explicit VR."""
    ds = dcmread(good)
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, True
    write_dataset(body, ds)
    head = BytesIO()
    head.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(head, ds.file_meta)
    return head.getvalue() + body.getvalue()


BAD = {"element length past the end": (length_past_the_end, "past the end"),
       "truncated pixel data": (pixel_data_cut, "(7FE0,0010)"),
       "pixel data shorter than its size": (pixel_data_short_of_its_size, "short of"),
       "trailing bytes": (trailing_bytes, "4 stray bytes after the last element"),
       "trailing garbage": (trailing_garbage, "(3713,6C20) at offset"),
       "wrong VR encoding": (implicit_data_set_in_explicit_syntax, "no valid VR")}


@pytest.fixture
def good(tmp_path) -> Path:
    return make_study(tmp_path / "good", 1)[0]


@pytest.mark.parametrize("case", list(BAD))
def test_malformed_data_set_is_refused_with_C000_and_not_kept(
        case, storage_server, good, tmp_path, caplog):
    server = storage_server()
    craft, reason = BAD[case]
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(craft(good))
    [status] = send(server.port, bad)
    assert 0xC000 <= status <= 0xCFFF, hex(status)
    assert server.rows() == [] and server.queue_rows() == []
    assert list(server.store.incoming.iterdir()) == []
    assert list(server.store.root.glob("*/*.dcm")) == []
    refusal = [r.getMessage() for r in caplog.records if "does not parse" in r.getMessage()]
    assert len(refusal) == 1 and reason in refusal[0], refusal
    assert send(server.port, good) == [0x0000]  # the association and the store are fine
    assert len(server.rows()) == 1


def test_good_files_of_every_kind_still_pass_the_check(unique_bundled, good):
    for path in [good, *unique_bundled]:
        check_received_file(path)  # raises MalformedDataSet when it would be refused


def test_storescu_is_told_C000_for_pixel_data_short_of_its_size(storage_server, good, tmp_path):
    """DCMTK reads this file (its structure is sound) and sends it; no viewer could show it."""
    server = storage_server()
    bad = tmp_path / "short.dcm"
    bad.write_bytes(pixel_data_short_of_its_size(good))
    result = storescu(server.port, [bad], "EDGEBOX", "STORESCU", "-v")
    assert "Received Store Response (Error: CannotUnderstand)" in result.stderr, result.stderr
    assert server.rows() == []
    assert storescu(server.port, [good]).returncode == 0
    assert len(server.rows()) == 1


def test_sequences_items_and_delimiters_are_checked(tmp_path, good):
    """Undefined-length sequences and items must be closed by their delimiters."""
    ds = dcmread(good)
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence
    item = Dataset()
    item.CodeValue = "T-D1100"
    ds.AnatomicRegionSequence = Sequence([item])
    ds["AnatomicRegionSequence"].is_undefined_length = True
    item.is_undefined_length_sequence_item = True
    path = tmp_path / "sq.dcm"
    ds.save_as(path, enforce_file_format=True)
    check_received_file(path)
    raw = path.read_bytes()
    for delimiter in (b"\xfe\xff\xdd\xe0\0\0\0\0", b"\xfe\xff\x0d\xe0\0\0\0\0"):
        assert raw.count(delimiter) == 1
        path.write_bytes(raw.replace(delimiter, b""))
        with pytest.raises(MalformedDataSet):
            check_received_file(path)


def test_a_data_set_of_odd_length_aborts_the_association_and_nothing_is_kept(
        storage_server, good, tmp_path, caplog):
    """No DICOM data set has an odd length (every element is even): the engine refuses such a
    fragment as DCMTK does (PS3.5 7.1: even value lengths), with an A-ABORT; nothing of it is
    kept, the line of the association says why, and the next association is served."""
    caplog.set_level(logging.INFO, logger="appliance.dicom")
    server = storage_server()
    bad = tmp_path / "odd.dcm"
    bad.write_bytes(good.read_bytes() + b"\x13\x37abc")
    with pytest.raises(AttributeError):  # pynetdicom's empty response: no Status
        send(server.port, bad)

    def lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if "Odd Fragment Length" in r.getMessage()]

    # the engine ends the association (its line, the partial file removed) after the abort the
    # sender has already seen
    deadline = time.monotonic() + 10
    while not lines() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lines(), [r.getMessage() for r in caplog.records]
    assert server.rows() == [] and list(server.store.incoming.iterdir()) == []
    assert send(server.port, good) == [0x0000]
