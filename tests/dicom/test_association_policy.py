"""Association policy, checked with DCMTK's echoscu against a running `appliance run`."""

from __future__ import annotations

import threading

from pynetdicom import AE
from pynetdicom.sop_class import Verification

from tests.conftest import echoscu


def test_echoscu_with_our_ae_title_succeeds(appliance):
    proc, port, _ = appliance()
    result = echoscu(port, "EDGEBOX")
    assert result.returncode == 0, result.stderr


def test_wrong_called_ae_title_is_rejected_with_reason(appliance):
    proc, port, _ = appliance()
    result = echoscu(port, "NOTEDGEBOX")
    assert result.returncode != 0
    assert "Rejected Permanent" in result.stderr
    assert "Called AE Title Not Recognized" in result.stderr
    log = proc.wait_log("called AE title not recognised")
    assert "called='NOTEDGEBOX'" in log


def test_called_ae_title_is_not_checked_when_not_strict(appliance):
    proc, port, _ = appliance({"dicom": {"strict_called_aet": False}})
    assert echoscu(port, "ANYTHING").returncode == 0


def test_unknown_calling_ae_title_is_rejected_when_allowlist_set(appliance):
    proc, port, _ = appliance({"dicom": {"allowed_calling_aets": ["CT1", "MR1"]}})
    rejected = echoscu(port, "EDGEBOX", "INTRUDER")
    assert rejected.returncode != 0
    assert "Calling AE Title Not Recognized" in rejected.stderr
    assert echoscu(port, "EDGEBOX", "MR1").returncode == 0


def test_association_limit_rejects_with_local_limit_exceeded(appliance):
    proc, port, _ = appliance({"dicom": {"max_associations": 1}})
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
    proc.wait_log("local limit exceeded")


def test_each_association_is_logged_with_peer_titles_contexts_duration_outcome(appliance):
    proc, port, _ = appliance()
    assert echoscu(port, "EDGEBOX", "LOGGED").returncode == 0
    log = proc.wait_log("calling='LOGGED'")
    line = next(x for x in log.splitlines() if "calling='LOGGED'" in x)
    assert "association from 127.0.0.1:" in line
    assert "called='EDGEBOX'" in line
    assert "Verification SOP Class" in line
    assert "1 C-ECHO" in line
    assert "duration=" in line
    assert "outcome=released" in line


def test_concurrent_echoes_all_succeed(appliance):
    proc, port, _ = appliance({"dicom": {"max_associations": 8}})
    results = []

    def one():
        results.append(echoscu(port).returncode)

    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [0] * 6
