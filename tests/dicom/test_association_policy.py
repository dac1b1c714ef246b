"""Association policy, checked with DCMTK's echoscu against the DICOM server component
(EngineServer on the native engine) in this process, built from the `[dicom]` settings as
`appliance run` builds it; the association log read from the log records."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification

from appliance.config.schema import ApplianceConfig
from appliance.dicom.engine_server import EngineServer
from appliance.dicom.verification import VerificationService
from tests.conftest import echoscu, free_port


@pytest.fixture
def server(tmp_path, caplog):
    """Factory: an EngineServer with the Verification service, the given `[dicom]` settings
    on a free port of 127.0.0.1; returns its port. Stopped after the test."""
    caplog.set_level(logging.INFO)
    servers: list[EngineServer] = []

    def start(**dicom) -> int:
        dicom.setdefault("port", free_port())
        dicom.setdefault("bind", "127.0.0.1")
        config = ApplianceConfig.model_validate(
            {"dicom": dicom, "device": {"data_dir": str(tmp_path / "data")}})
        srv = EngineServer(config, [VerificationService()])
        srv.start()
        servers.append(srv)
        return srv.port

    yield start
    for srv in servers:
        srv.stop(timeout=1)


def wait_logged(caplog, text: str, timeout: float = 20.0) -> str:
    """The log so far once a record contains `text` (the engine reports an association's end
    from its own thread, maybe after the peer has its answer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = [record.getMessage() for record in caplog.records]
        if any(text in line for line in lines):
            return "\n".join(lines)
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in the log within {timeout}s:\n{caplog.text}")


def test_echoscu_with_our_ae_title_succeeds(server):
    port = server()
    result = echoscu(port, "EDGEBOX")
    assert result.returncode == 0, result.stderr


def test_wrong_called_ae_title_is_rejected_with_reason(server, caplog):
    port = server()
    result = echoscu(port, "NOTEDGEBOX")
    assert result.returncode != 0
    assert "Rejected Permanent" in result.stderr
    assert "Called AE Title Not Recognized" in result.stderr
    log = wait_logged(caplog, "called AE title not recognised")
    assert "called='NOTEDGEBOX'" in log


def test_called_ae_title_is_not_checked_when_not_strict(server):
    port = server(strict_called_aet=False)
    assert echoscu(port, "ANYTHING").returncode == 0


def test_unknown_calling_ae_title_is_rejected_when_allowlist_set(server):
    port = server(allowed_calling_aets=["CT1", "MR1"])
    rejected = echoscu(port, "EDGEBOX", "INTRUDER")
    assert rejected.returncode != 0
    assert "Calling AE Title Not Recognized" in rejected.stderr
    assert echoscu(port, "EDGEBOX", "MR1").returncode == 0


def test_association_limit_rejects_with_local_limit_exceeded(server, caplog):
    port = server(max_associations=1)
    holder = AE(ae_title="HOLDER")
    holder.add_requested_context(Verification)
    assoc = holder.associate("127.0.0.1", port, ae_title="EDGEBOX")
    try:
        assert assoc.is_established
        result = echoscu(port, "EDGEBOX")
        assert result.returncode != 0
        assert "Rejected Transient" in result.stderr
        assert "Local Limit Exceeded" in result.stderr
    finally:
        assoc.release()
    wait_logged(caplog, "local limit exceeded")


def test_each_association_is_logged_with_peer_titles_contexts_duration_outcome(server, caplog):
    port = server()
    assert echoscu(port, "EDGEBOX", "LOGGED").returncode == 0
    log = wait_logged(caplog, "calling='LOGGED'")
    line = next(x for x in log.splitlines() if "calling='LOGGED'" in x)
    assert "association from 127.0.0.1:" in line
    assert "called='EDGEBOX'" in line
    assert "Verification SOP Class" in line
    assert "1 C-ECHO" in line
    assert "duration=" in line
    assert "outcome=released" in line


def test_concurrent_echoes_all_succeed(server):
    port = server(max_associations=8)
    results = []

    def one():
        results.append(echoscu(port).returncode)

    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [0] * 6
