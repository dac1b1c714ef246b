"""Fixtures for the native engine: a `DicomEngine` in this process on a free port of
127.0.0.1, declaring the presentation contexts of the Verification and Storage services, with a
store callback that keeps a copy of each received file and answers the status a test chooses."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from appliance.dicom.declared_context import declare
from appliance.dicom.engine import DicomEngine, EngineSettings, contexts_of
from appliance.dicom.storage import STORAGE_SOP_CLASSES, STORAGE_TRANSFER_SYNTAXES
from appliance.dicom.verification import VerificationService
from tests.conftest import REPO, free_port
from tests.storage.conftest import tmpfs, unique_bundled  # noqa: F401  (fixtures for the tests)
from tests.storage.test_storage_scp import reference_scp  # noqa: F401


class StorageContexts:
    """The Storage service's declared contexts, without the service itself."""

    def contexts(self):
        return [declare(sop_class, STORAGE_TRANSFER_SYNTAXES)
                for sop_class in STORAGE_SOP_CLASSES]


@dataclass
class StoredImage:
    """What the callback was given, and a copy of the file as it was then."""

    path: str
    calling_ae: str
    called_ae: str
    sop_class: str
    sop_instance: str
    transfer_syntax: str
    copy: Path
    content_hash: tuple[int, str] | None = None  #: given with `hash_content` only


@dataclass
class Receiver:
    """The store callback: copies each file into `keep`, answers `status` (or raises `error`)."""

    keep: Path
    status: int = 0x0000
    error: Exception | None = None
    delay: float = 0.0
    images: list[StoredImage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, path, calling_ae, called_ae, sop_class, sop_instance, transfer_syntax,
                 **hashed):
        copy = self.keep / f"{sop_instance}.dcm"
        shutil.copyfile(path, copy)
        if self.delay:
            threading.Event().wait(self.delay)
        with self.lock:
            self.images.append(StoredImage(path, calling_ae, called_ae, sop_class, sop_instance,
                                           transfer_syntax, copy, **hashed))
        if self.error is not None:
            raise self.error
        return self.status


@pytest.fixture
def engine(tmp_path):
    """Factory: engine(**settings) -> (DicomEngine, Receiver), started; stopped after the test.
    `incoming=` names the temp directory (default: tmp_path/incoming), `on_request=` the
    handler of the requests the engine dispatches, `on_association=` the events' callback."""
    started: list[DicomEngine] = []

    def start(incoming: Path | None = None, on_request=None, on_association=None,
              **overrides):
        keep = tmp_path / "received"
        keep.mkdir(exist_ok=True)
        receiver = Receiver(keep)
        values = {"bind": "127.0.0.1", "port": free_port(),
                  "contexts": contexts_of([VerificationService(), StorageContexts()]),
                  **overrides}
        dicom_engine = DicomEngine(EngineSettings(**values), incoming or tmp_path / "incoming",
                                   receiver, on_request, on_association)
        dicom_engine.start()
        started.append(dicom_engine)
        return dicom_engine, receiver

    yield start
    for dicom_engine in started:
        dicom_engine.stop(grace=2)


@pytest.fixture
def engine_process(tmp_path):
    """The engine in its own process (tests/dicom/engine/engine_process.py, ARTIM 2 s):
    (Popen, port, log file), stopped after the test."""
    port = free_port()
    log = tmp_path / "engine.log"
    with open(log, "w") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "tests.dicom.engine.engine_process",
                                 str(port), str(tmp_path / "incoming"), "2"],
                                cwd=REPO, stdout=subprocess.PIPE, stderr=sink, text=True)
    assert proc.stdout.readline().strip() == "listening"
    yield proc, port, log
    proc.terminate()
    proc.wait(30)
