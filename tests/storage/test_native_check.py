"""The engine's native structural check (appliance.dicom.native_check, src/dataset_check.cpp)
gives the Python check's verdicts: the same refusals with the same messages, the same raw index
values, over sound files, the malformed files of test_malformed.py, hand-encoded files reaching
every branch of the walk, and thousands of seeded mutations of them all. What it leaves to the
Python check ("deferred") is run by the Python check. And `appliance run`'s storage takes the
native verdict: the Python check is not run for the files the engine decided."""

from __future__ import annotations

import logging
import random
import re

import pytest
from pydicom.datadict import DicomDictionary, masks

from appliance.dicom import dataset_check, native_check
from appliance.dicom.dataset_check import MalformedDataSet, check_received_file
from appliance.dicom.storage import _INDEX_TAGS
from tests.storage.check_corpus import crafted, mutations
from tests.storage.test_malformed import BAD
from tests.storage.test_storage_scp import send

#: Sound or malformed files the native check leaves to the Python check.
LEFT_TO_PYTHON = ("deflated garbage", "image_dfl.dcm", "unknown syntax", "not a syntax",
                  "nested 70", "frames 25 digits", "File Meta header cut")
#: What the native check cannot read is left to Python, which refuses it (these answers).
PYTHON_ONLY = re.compile(r"unknown transfer syntax|deflated data set|error$")


#: Every verdict of the Python check's walk (as `kind_of` writes it): the corpus reaches them
#: all, and each is compared with the native one.
KINDS = {
    "parsed", "empty file", "no DICOM file preamble", "File Meta Information runs past the end",
    "no Transfer Syntax UID in the File Meta Information",
    "(tag) outside a sequence at offset N", "(tag) where an item was expected at offset N",
    "Item Delimitation Item with length N", "Item Delimitation Item out of place at offset N",
    "Sequence Delimitation Item with length N",
    "Sequence Delimitation Item in a sequence of defined length at offset N",
    "N stray bytes after the last element (offset N)",
    "command or File Meta element (tag) inside the data set at offset N",
    "element (tag) at offset N has length N, N bytes past the end of its data set",
    "element (tag) at offset N has length N, N bytes past the end of its item or sequence",
    "element (tag) at offset N has no valid VR (vr): not encoded in the transfer syntax's VR "
    "encoding",
    "element (tag) (vr) has undefined length, allowed only for SQ, UN and pixel data",
    "element header cut at offset N", "item at offset N has length N, N bytes past the end "
    "of its sequence", "item header cut at offset N",
    "item of undefined length has no Item Delimitation Item before the end",
    "sequence of undefined length has no Sequence Delimitation Item before the end",
    "pixel data fragment of undefined length at offset N",
    "pixel data is N bytes, N short of the N that Rows, Columns, Samples, Bits Allocated and "
    "Frames call for"}


def kind_of(reason: str) -> str:
    """A refusal's message without its numbers, tags and VRs."""
    reason = re.sub(r"\([0-9A-F]{4},[0-9A-F]{4}\)", "(tag)", reason)
    reason = re.sub(r"\(b.*\)", "(vr)", re.sub(r"\d+", "N", reason))
    return re.sub(r"\((vr|[A-Z]{2})\) has", "(vr) has", reason)


def python_verdict(path) -> tuple:
    try:
        checked = check_received_file(path, _INDEX_TAGS)
    except MalformedDataSet as exc:
        return ("malformed", str(exc))
    except Exception as exc:  # noqa: BLE001  (storage answers these 0xC000 as well)
        return ("error", type(exc).__name__)
    return ("parsed", checked.transfer_syntax, checked.values)


@pytest.fixture(scope="module")
def corpus(unique_bundled, good_module) -> dict[str, bytes]:
    bases = {path.name: path.read_bytes() for path in [good_module, *unique_bundled]}
    bases.update({f"bad: {case}": craft(good_module) for case, (craft, _) in BAD.items()})
    bases.update(crafted())
    files = dict(bases)
    for seed, (name, raw) in enumerate(bases.items()):
        if name not in LEFT_TO_PYTHON:
            files.update(mutations(name, raw, 120 if len(raw) < 4000 else 60, seed))
    return files


@pytest.fixture(scope="module")
def good_module(tmp_path_factory):
    from tests.storage.dicom_files import make_study
    return make_study(tmp_path_factory.mktemp("good"), 1)[0]


def test_native_and_python_checks_agree_on_every_file_of_the_corpus(corpus, tmp_path):
    path = tmp_path / "case.dcm"
    compared, deferred, kinds = 0, {}, set()
    for name, raw in corpus.items():
        path.write_bytes(raw)
        expected = python_verdict(path)
        native = native_check.native_verdict(path, _INDEX_TAGS)
        if native[0] == "deferred":
            deferred[name] = native[1]
            assert expected[0] == "parsed" or PYTHON_ONLY.match(expected[-1]) or \
                "nested" in name or "frames" in name, (name, expected)
            continue
        assert native == expected, name
        compared += 1
        kinds.add(expected[0] if expected[0] != "malformed" else kind_of(expected[1]))
    # The walk is exercised, not skipped: many files, all kinds of verdicts, few deferred.
    assert compared > 3000 and len(deferred) < compared / 20, (compared, deferred)
    assert kinds == KINDS, sorted(kinds)
    for name in LEFT_TO_PYTHON:
        assert name in deferred, name
    for name in ("nested 30", "implicit", "explicit", "big endian", "UN sequence",
                 "encapsulated", "repeater sequence", "frames 0", "subsampled"):
        path.write_bytes(corpus[name])
        assert native_check.native_verdict(path, _INDEX_TAGS)[0] == "parsed", name


def test_a_deferred_verdict_gets_the_python_checks_answer(corpus, tmp_path):
    path = tmp_path / "case.dcm"
    for name in ("deflated garbage", "image_dfl.dcm", "not a syntax", "nested 70"):
        path.write_bytes(corpus[name])
        verdict = native_check.native_verdict(path, _INDEX_TAGS)
        assert verdict[0] == "deferred"
        expected = python_verdict(path)
        try:
            checked = native_check.checked_file(path, verdict, _INDEX_TAGS)
            got = ("parsed", checked.transfer_syntax, checked.values)
        except MalformedDataSet as exc:
            got = ("malformed", str(exc))
        assert got == expected, name


def test_the_native_sequence_table_is_pydicoms_dictionary():
    """In implicit VR a defined-length element is walked as a sequence exactly when pydicom's
    dictionary says SQ (public tags, repeater groups such as 50xx, private groups never)."""
    rules = native_check.rules(_INDEX_TAGS)
    rng = random.Random(14)
    tags = set(DicomDictionary)
    for _, (mask1, mask2) in masks.items():
        for _ in range(4):
            tags.add(mask1 | (rng.getrandbits(32) & ~mask2 & 0xFFFFFFFF))
    tags.update(rng.getrandbits(32) for _ in range(20000))
    wrong = [hex(t) for t in tags if rules.is_sequence(t) != dataset_check._is_sequence(t)]
    assert wrong == []
    assert rules.is_sequence(0x50002600) and not rules.is_sequence(0x50012600)


def test_storage_uses_the_engines_verdict_and_refuses_with_its_reason(
        storage_server, good_module, tmp_path, monkeypatch, caplog):
    """Through `appliance run`'s engine and storage: a malformed object is answered 0xC000
    with the reason, a sound one is stored with its index values, and the Python check never
    runs for either (the engine decided them)."""
    python_runs = []

    def no_python_check(path, wanted=()):
        python_runs.append(path)
        return check_received_file(path, wanted)

    monkeypatch.setattr(native_check, "check_received_file", no_python_check)
    server = storage_server()
    craft, reason = BAD["pixel data shorter than its size"]
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(craft(good_module))
    with caplog.at_level(logging.WARNING):
        assert send(server.port, bad) == [0xC000]
    [line] = [r.getMessage() for r in caplog.records if "does not parse" in r.getMessage()]
    assert reason in line and "short of the 8192" in line
    assert send(server.port, good_module) == [0x0000]
    [row] = server.rows()
    assert (row["patient_id"], row["patient_name"], row["modality"]) == (
        "PID1", "Test^Patient", "CT")
    assert python_runs == []
