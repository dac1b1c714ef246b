"""The engine in a process of its own, for tests that measure it from outside (RSS, threads,
descriptors) or must survive its crash: `python -m tests.dicom.engine.engine_process PORT DIR`
serves Verification and Storage on 127.0.0.1:PORT as EDGEBOX, answers every C-STORE Success
(the file is left to be removed), logs at INFO to stderr, and stops on SIGTERM."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path

from appliance.dicom.engine import DicomEngine, EngineSettings, contexts_of
from appliance.dicom.verification import VerificationService
from tests.dicom.engine.conftest import StorageContexts


def main(port: int, directory: Path, artim_timeout: int) -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = EngineSettings(bind="127.0.0.1", port=port, max_associations=16,
                              artim_timeout=artim_timeout,
                              contexts=contexts_of([VerificationService(), StorageContexts()]))
    engine = DicomEngine(settings, directory, lambda *request: 0x0000)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    engine.start()
    print("listening", flush=True)
    stop.wait()
    engine.stop(grace=2)


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 10)
