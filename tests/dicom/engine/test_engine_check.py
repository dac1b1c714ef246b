"""The engine's native structural check on received files: with `store_check` the association's
thread checks each file before the store callback and passes its verdict as the keyword
`check`; without it the callback gets the six arguments it always had and no `check`. A
malformed object answered 0xC000 by the callback carries the reason as Error Comment."""

from __future__ import annotations

import threading

from appliance.dicom import native_check
from appliance.dicom.engine import DicomEngine, EngineSettings, contexts_of
from appliance.dicom.storage import _INDEX_TAGS, CANNOT_UNDERSTAND
from appliance.dicom.verification import VerificationService
from tests.conftest import free_port
from tests.dicom.engine.conftest import StorageContexts
from tests.storage.dicom_files import make_study, storescu
from tests.storage.test_malformed import BAD
from tests.storage.test_storage_scp import send


class Recorder:
    """A store callback that answers 0xC000 with the reason for a malformed verdict."""

    def __init__(self):
        self.calls: list[tuple] = []
        self.lock = threading.Lock()

    def __call__(self, path, *args, **keywords):
        with self.lock:
            self.calls.append((args, keywords))
        check = keywords.get("check")
        if check is not None and check[0] == "malformed":
            return CANNOT_UNDERSTAND, f"malformed: {check[1]}"
        return 0


def start(tmp_path, recorder, store_check):
    engine = DicomEngine(
        EngineSettings(bind="127.0.0.1", port=free_port(),
                       contexts=contexts_of([VerificationService(), StorageContexts()])),
        tmp_path / "incoming", recorder, store_check=store_check)
    engine.start()
    return engine


def test_the_callback_gets_the_native_verdict(tmp_path):
    (tmp_path / "incoming").mkdir()
    recorder = Recorder()
    engine = start(tmp_path, recorder, native_check.rules(_INDEX_TAGS))
    try:
        [good] = make_study(tmp_path / "study", 1, patient_id="PID 9")
        craft, reason = BAD["element length past the end"]
        bad = tmp_path / "bad.dcm"
        bad.write_bytes(craft(good))
        assert send(engine.port, good, bad) == [0x0000, 0xC000]
        result = storescu(engine.port, [bad], "EDGEBOX", "STORESCU", "-v")
    finally:
        engine.stop(grace=2)
    [good_call, bad_call] = recorder.calls[:2]
    assert [len(args) for args, _ in recorder.calls] == [5] * len(recorder.calls)
    kind, syntax, values = good_call[1]["check"]
    assert (kind, syntax) == ("parsed", "1.2.840.10008.1.2.1")
    assert set(values) <= _INDEX_TAGS and values[0x00100020] == b"PID 9 "
    assert values[0x00080060] == b"CT" and values[0x00100010] == b"Test^Patient"
    assert bad_call[1]["check"][0] == "malformed" and reason in bad_call[1]["check"][1]
    # what DCMTK's storescu is told (it may not send this file at all: then no call)
    if len(recorder.calls) == 3:
        assert "CannotUnderstand" in result.stderr, result.stderr


def test_without_store_check_the_callback_gets_six_arguments(tmp_path):
    (tmp_path / "incoming").mkdir()
    recorder = Recorder()
    engine = start(tmp_path, recorder, None)
    try:
        [good] = make_study(tmp_path / "study", 1)
        assert send(engine.port, good) == [0x0000]
    finally:
        engine.stop(grace=2)
    assert [(len(args), "check" in keywords)
            for args, keywords in recorder.calls] == [(5, False)]  # the path aside
