"""The content hash the engine takes while it writes a C-STORE file (`hash_content`, on when
Storage Commitment is): the store callback's `content_hash` is the size and SHA-256 of exactly
the bytes of the file it is given, for every transfer syntax and for objects spanning many
PDUs; without `hash_content` the callback gets no such argument."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import replace

import pytest
from pydicom import dcmread

from tests.dicom.engine.test_engine_store import responses
from tests.storage.dicom_files import make_study, storescu
from tests.storage.test_storage_scp import PROPOSE


def sha256_of(path) -> tuple[int, str]:
    data = path.read_bytes()
    return len(data), hashlib.sha256(data).hexdigest()


def test_the_callback_gets_the_hash_of_the_file_as_written(engine, tmp_path, unique_bundled):
    dicom_engine, receiver = engine(hash_content=True, max_pdu=16384)
    # 64x64 images fit in one PDU; 512x512 ones (512 KB) take 32 P-DATA-TFs of 16 KiB
    files = (make_study(tmp_path / "small", 2) + make_study(tmp_path / "large", 2, 512, 512)
             + unique_bundled)
    by_syntax = defaultdict(list)
    for path in files:
        by_syntax[str(dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)].append(
            path)
    for syntax, group in by_syntax.items():  # storescu proposing just that transfer syntax
        sent = storescu(dicom_engine.port, group, "EDGEBOX", "MODALITY", "-v", PROPOSE[syntax])
        assert responses(sent.stderr) == ["Success"] * len(group), sent.stderr
    assert len(receiver.images) == len(files)
    for image in receiver.images:
        assert image.content_hash == sha256_of(image.copy), image.sop_instance
    assert {image.content_hash[0] > 500_000 for image in receiver.images} == {True, False}


@pytest.mark.parametrize("settings", [{}, {"hash_content": False}])
def test_no_hash_without_hash_content(engine, tmp_path, settings):
    dicom_engine, receiver = engine(**settings)
    files = make_study(tmp_path / "study", 2)
    assert storescu(dicom_engine.port, files, "EDGEBOX", "MODALITY").returncode == 0
    assert [image.content_hash for image in receiver.images] == [None, None]


def test_hash_content_changes_for_new_associations(engine, tmp_path):
    dicom_engine, receiver = engine()
    files = make_study(tmp_path / "study", 2)
    assert storescu(dicom_engine.port, files[:1], "EDGEBOX", "MODALITY").returncode == 0
    dicom_engine.update_policy(replace(dicom_engine.settings, hash_content=True))
    assert storescu(dicom_engine.port, files[1:], "EDGEBOX", "MODALITY").returncode == 0
    first, second = receiver.images
    assert first.content_hash is None
    assert second.content_hash == sha256_of(second.copy)
