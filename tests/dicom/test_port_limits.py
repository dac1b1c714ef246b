"""No stranger exhausts the DICOM port: a PDU length claimed in a header is never allocated,
connections that never complete association negotiation neither hold association slots nor
threads and are closed by the ARTIM timer, one source address cannot lock out the modality, and
each service refuses calling AE titles not on its own allowlist. Black-box: real sockets and
DCMTK against a running `appliance run`, only on 127.0.0.0/8."""

from __future__ import annotations

import subprocess
import time

from appliance.config.schema import ApplianceConfig
from appliance.worklist.scp import WorklistService
from tests.conftest import DCMTK_ENV, echoscu
from tests.dicom.port_probe import (
    associate,
    closed_or_aborted,
    connect,
    echo_pdus,
    read_pdu,
    stats,
    wait_until,
)
from tests.storage.dicom_files import make_study, storescu
from tests.worklist.conftest import ITEMS, findscu, load

HUGE = b"\xff\xff\xff\xff"


def timed_echo(port: int) -> tuple[subprocess.CompletedProcess, float]:
    """echoscu from 127.0.0.1 with a 5 s limit on each step; returns the result and seconds."""
    started = time.monotonic()
    result = subprocess.run(
        ["echoscu", "-to", "5", "-ta", "5", "-td", "5", "-aet", "MODALITY", "-aec", "EDGEBOX",
         "127.0.0.1", str(port)], capture_output=True, text=True, env=DCMTK_ENV, timeout=30)
    return result, time.monotonic() - started


def test_huge_pdu_length_as_first_pdu_is_not_allocated(appliance):
    proc, port, _ = appliance()
    assert echoscu(port).returncode == 0  # warm up: the first association loads modules
    before = stats(proc.pid)
    holders = []
    for pdu_type in (b"\x01", b"\x04"):  # a huge A-ASSOCIATE-RQ, and a P-DATA before one
        sock = connect(port)
        sock.sendall(pdu_type + b"\x00" + HUGE + b"\x00" * 64)
        holders.append(sock)
    time.sleep(1.0)
    result, seconds = timed_echo(port)
    during = stats(proc.pid)
    assert result.returncode == 0, result.stderr
    assert during.rss_mb - before.rss_mb < 20, (before, during)
    for sock in holders:
        assert closed_or_aborted(sock, 5.0) in ("abort", "closed")
        sock.close()
    log = proc.wait_log("A-ASSOCIATE-RQ length 4294967295 over the limit")
    assert "aborted: PDU type 0x04 before A-ASSOCIATE-RQ" in log
    print(f"RSS {before.rss_mb:.1f} -> {during.rss_mb:.1f} MB, echo {seconds:.2f} s")


def test_huge_pdu_length_after_association_is_aborted(appliance):
    proc, port, _ = appliance()
    request = echo_pdus(port)[0]
    before = stats(proc.pid)
    sock = associate(port, request)
    sock.sendall(b"\x04\x00" + HUGE + b"\x00" * 64)  # P-DATA-TF claiming 4 GiB
    answer = read_pdu(sock)
    result, seconds = timed_echo(port)
    during = stats(proc.pid)
    # A-ABORT, source 2 (service provider), reason 6 (invalid PDU parameter value)
    assert answer == b"\x07\x00\x00\x00\x00\x04\x00\x00\x02\x06", answer.hex()
    assert closed_or_aborted(sock, 5.0) == "closed"
    sock.close()
    assert result.returncode == 0, result.stderr
    assert during.rss_mb - before.rss_mb < 20, (before, during)
    log = proc.wait_log("aborted: P-DATA-TF length 4294967295 over announced max")
    line = next(x for x in log.splitlines() if "P-DATA-TF length 4294967295" in x
                and "association from" in x and "calling='CAPTURE'" in x)
    assert "over announced max 131072" in line  # DCMTK 3.6.7 announces at most 128 KiB
    print(f"RSS {before.rss_mb:.1f} -> {during.rss_mb:.1f} MB, echo {seconds:.2f} s")


def test_idle_and_half_open_connections_do_not_lock_out_the_modality(appliance):
    proc, port, _ = appliance({"dicom": {"artim_timeout": 3.0, "max_associations": 4}})
    request = echo_pdus(port)[0]
    before = stats(proc.pid)
    idle = [connect(port, "127.0.0.2") for _ in range(200)]  # connect, send nothing
    half_open = [connect(port, "127.0.0.3") for _ in range(12)]
    for sock in half_open:
        sock.sendall(request[:16])  # 16 bytes of a real A-ASSOCIATE-RQ, then silence
    for _ in range(44):  # connect and close at once
        connect(port, "127.0.0.4").close()
    time.sleep(0.5)
    during = stats(proc.pid)
    result, seconds = timed_echo(port)
    assert result.returncode == 0, result.stderr
    assert seconds < 5
    # The engine gives each pending connection its own thread (bounded by the pending
    # limits: 8 per host here, 16 held), and none to what it refused or what closed.
    assert during.threads <= before.threads + 2 * 8 + 4, (before, during)
    # The ARTIM timer closes every silent connection the gate held.
    held = idle + half_open
    assert wait_until(lambda: all(closed_or_aborted(s, 0.01) == "closed" for s in held), 8.0)
    log = proc.log()
    assert log.count("ARTIM timeout (3 s)") >= 16  # 8 per source address were held
    assert "refused: too many pending from 127.0.0.2" in log
    assert "closed before A-ASSOCIATE-RQ: connection closed by peer" in log
    for sock in held:
        sock.close()
    print(f"before {before}, during {during}, echo {seconds:.2f} s")


def test_pending_limit_per_host_leaves_room_for_others(appliance):
    proc, port, _ = appliance({"dicom": {"max_pending_per_host": 2,
                                         "max_pending_connections": 3}})
    request = echo_pdus(port)[0]
    first = [connect(port, "127.0.0.2") for _ in range(3)]
    assert closed_or_aborted(first[2], 5.0) == "closed"  # third from one host: closed at once
    assert closed_or_aborted(first[0], 0.3) == "open"
    other = connect(port, "127.0.0.3")
    assert closed_or_aborted(other, 0.3) == "open"
    over = connect(port, "127.0.0.4")  # four pending in all
    assert closed_or_aborted(over, 5.0) == "closed"
    proc.wait_log("refused: too many pending connections (max_pending_connections 3)")
    # A pending connection that completes its request becomes an association.
    first[0].sendall(request)
    assert read_pdu(first[0])[:1] == b"\x02"
    for sock in [*first, other, over]:
        sock.close()


def test_storage_allowlist_refuses_unknown_calling_ae(appliance, tmp_path):
    proc, port, _ = appliance({"storage": {"allowed_calling_aets": ["CT1"]}})
    study = make_study(tmp_path / "study", 1)
    refused = storescu(port, study, "EDGEBOX", "INTRUDER", "-v")
    assert refused.returncode != 0
    assert "Store Response (Unknown Status: 0x124)" in refused.stderr, refused.stderr  # DCMTK
    # names only the storage-specific statuses; 0x0124 is the general "Refused: Not Authorized"
    proc.wait_log("not in [storage] allowed_calling_aets")
    instances = tmp_path / "data" / "instances"
    assert not [p for p in instances.rglob("*.dcm") if ".incoming" not in p.parts]
    allowed = storescu(port, study, calling="CT1")
    assert allowed.returncode == 0 and "0x0124" not in allowed.stderr, allowed.stderr
    assert wait_until(lambda: any(instances.rglob("*.dcm")), 5.0)
    assert echoscu(port, "EDGEBOX", "INTRUDER").returncode == 0  # only storage is closed


def test_worklist_allowlist_gives_unknown_calling_ae_no_answers(appliance, tmp_path):
    config = ApplianceConfig.model_validate({"device": {"data_dir": str(tmp_path / "data")}})
    load(WorklistService(config), ITEMS)
    proc, port, _ = appliance({"worklist": {"expire_after_hours": 0.0,
                                            "allowed_calling_aets": ["CT2", "MR1"]}})
    refused = findscu(port, "PatientName", "PatientBirthDate", calling="STRANGER",
                      extra=("-v",))
    assert refused.answers == []
    assert "Final Find Response (Unknown Status: 0x124)" in refused.log, refused.log
    proc.wait_log("not in [worklist] allowed_calling_aets")
    allowed = findscu(port, "PatientName", calling="MR1")
    assert len(allowed.answers) == len(ITEMS)


def test_new_limits_are_refused_with_key_and_reason(tmp_path):
    from tests.config.test_config_files import appliance_cli

    path = tmp_path / "bad.toml"
    path.write_text("[dicom]\nartim_timeout = 0\nmax_pending_per_host = 0\n"
                    "[storage]\nallowed_calling_aets = [\"A\\\\B\"]\n")
    result = appliance_cli("config", "check", "--config", str(path), cwd=tmp_path)
    assert result.returncode == 2
    assert "dicom.artim_timeout: must be more than 0" in result.stderr
    assert "dicom.max_pending_per_host: must be between 1 and 1024" in result.stderr
    assert "storage.allowed_calling_aets[0]" in result.stderr
