"""The native engine's listener: C-ECHO answered natively, each refusal an A-ASSOCIATE-RJ with
the standard's result, source and reason (docs/conformance.md 2.1), our own implementation
identity and maximum PDU, concurrent associations, the stop order (listener first, a grace
period, then A-ABORT), and DCMTK's log in Python's logging. Real DCMTK and pynetdicom peers on
127.0.0.1."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import struct
import threading
import time

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification

from appliance.dicom.engine import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from tests.conftest import connect_loopback, echoscu, wait_not_listening
from tests.dicom import port_probe
from tests.dicom.engine.engine_threads import engine_threads

ENGINE_LOGGER = "appliance.dicom.engine"


def associate(port: int, called: str = "EDGEBOX", calling: str = "PYSCU"):
    ae = AE(ae_title=calling)
    ae.add_requested_context(Verification)
    return ae.associate("127.0.0.1", port, ae_title=called)


def test_echo_is_answered_and_logged_once_per_association(engine, caplog):
    caplog.set_level(logging.INFO, logger=ENGINE_LOGGER)
    dicom_engine, _ = engine()
    result = echoscu(dicom_engine.port, "EDGEBOX", "MODALITY", "-v")
    assert result.returncode == 0, result.stderr
    assert "Received Echo Response (Success)" in result.stderr
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any(
            "MODALITY -> EDGEBOX" in r.message for r in caplog.records):
        time.sleep(0.05)
    lines = [r.message for r in caplog.records if "MODALITY -> EDGEBOX" in r.message]
    assert len(lines) == 1 and "1 C-ECHO" in lines[0] and lines[0].endswith("released"), lines


@pytest.mark.parametrize("called, calling, settings, result, source, reason", [
    ("WRONG", "ECHOSCU", {}, "Rejected Permanent", "Service User",
     "Called AE Title Not Recognized"),
    ("EDGEBOX", "STRANGER", {"allowed_calling_aets": ("MODALITY",)}, "Rejected Permanent",
     "Service User", "Calling AE Title Not Recognized"),
])
def test_refusals_carry_the_standard_result_source_and_reason(
        engine, called, calling, settings, result, source, reason):
    dicom_engine, _ = engine(**settings)
    refused = echoscu(dicom_engine.port, called, calling)
    assert refused.returncode != 0
    assert f"Result: {result}, Source: {source}" in refused.stderr, refused.stderr
    assert f"Reason: {reason}" in refused.stderr, refused.stderr


def test_allowed_caller_and_any_called_title_without_strict_checking(engine):
    dicom_engine, _ = engine(allowed_calling_aets=(" MODALITY ",), strict_called_aet=False)
    assert echoscu(dicom_engine.port, "ANYTHING", "MODALITY").returncode == 0


def test_a_printer_profile_title_is_accepted_and_answered_as_called(engine):
    dicom_engine, _ = engine(extra_called_aets=("PRINTER1",))
    assoc = associate(dicom_engine.port, called="PRINTER1")
    try:
        assert assoc.is_established
        assert assoc.acceptor.ae_title == "PRINTER1"
    finally:
        assoc.release()


def test_association_limit_refuses_with_local_limit_exceeded(engine):
    dicom_engine, _ = engine(max_associations=1)
    held = associate(dicom_engine.port)
    try:
        assert held.is_established
        refused = echoscu(dicom_engine.port)
        assert refused.returncode != 0
        assert "Result: Rejected Transient" in refused.stderr, refused.stderr
        assert "Local Limit Exceeded" in refused.stderr, refused.stderr
    finally:
        held.release()
    deadline = time.monotonic() + 5
    while dicom_engine.active_associations and time.monotonic() < deadline:
        time.sleep(0.05)
    assert echoscu(dicom_engine.port).returncode == 0  # the slot is free again


def test_our_implementation_identity_and_maximum_pdu(engine):
    dicom_engine, _ = engine(max_pdu=65536)
    assoc = associate(dicom_engine.port)
    try:
        assert assoc.acceptor.implementation_class_uid == IMPLEMENTATION_CLASS_UID
        assert assoc.acceptor.implementation_version_name == IMPLEMENTATION_VERSION_NAME
        assert assoc.acceptor.maximum_length == 65536
    finally:
        assoc.release()
    assert IMPLEMENTATION_CLASS_UID.startswith("2.25.")
    assert len(IMPLEMENTATION_CLASS_UID) <= 64 and len(IMPLEMENTATION_VERSION_NAME) <= 16


def test_maximum_pdu_beyond_dcmtk_limit_is_announced_as_128_KiB(engine):
    dicom_engine, _ = engine(max_pdu=262144)
    assoc = associate(dicom_engine.port)
    try:
        assert assoc.acceptor.maximum_length == 131072
    finally:
        assoc.release()


def test_concurrent_associations_are_served_on_their_own_threads(engine):
    dicom_engine, _ = engine(max_associations=4)
    held = [associate(dicom_engine.port, calling=f"SCU{n}") for n in range(4)]
    try:
        assert all(assoc.is_established for assoc in held)
        assert dicom_engine.active_associations == 4
        answers = []
        threads = [threading.Thread(target=lambda a=a: answers.append(a.send_c_echo().Status))
                   for a in held]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert answers == [0, 0, 0, 0]
    finally:
        for assoc in held:
            assoc.release()


def test_stop_closes_the_listener_first_then_aborts_what_is_still_open(engine):
    dicom_engine, _ = engine()
    port = dicom_engine.port
    held = associate(port)
    assert held.is_established
    stopper = threading.Thread(target=dicom_engine.stop, kwargs={"grace": 1.5})
    started = time.monotonic()
    stopper.start()
    wait_not_listening(port)
    with pytest.raises(OSError):  # no longer listening, while the association is still open
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert held.is_established
    stopper.join(15)
    assert not stopper.is_alive()
    deadline = time.monotonic() + 5
    while held.is_established and time.monotonic() < deadline:
        time.sleep(0.05)
    assert held.is_aborted
    assert time.monotonic() - started >= 1.5  # the grace period was given


def test_an_association_released_within_the_grace_period_is_not_aborted(engine):
    dicom_engine, _ = engine()
    held = associate(dicom_engine.port)
    stopper = threading.Thread(target=dicom_engine.stop, kwargs={"grace": 10})
    started = time.monotonic()
    stopper.start()
    wait_not_listening(dicom_engine.port)  # draining: the listener is closed
    assert held.send_c_echo().Status == 0  # still served while draining
    held.release()
    stopper.join(15)
    assert held.is_released and not held.is_aborted
    assert time.monotonic() - started < 5  # stop returned once it was gone


def test_dcmtk_log_goes_to_python_logging_not_stderr(engine, caplog, capfd):
    caplog.set_level(logging.DEBUG, logger=ENGINE_LOGGER)  # DCMTK logs each PDU at DEBUG
    dicom_engine, _ = engine()
    assert echoscu(dicom_engine.port).returncode == 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any(
            "dcmtk.dcmnet" in r.message for r in caplog.records):
        time.sleep(0.05)
    dcmtk_lines = [r.message for r in caplog.records
                   if r.name == ENGINE_LOGGER and r.message.startswith("dcmtk.dcmnet")]
    assert dcmtk_lines
    assert "dcmtk.dcmnet" not in capfd.readouterr().err
    assert not any(line.startswith("D:") or line.startswith("I:")
                   for line in capfd.readouterr().err.splitlines())


def test_before_negotiation_other_pdus_and_oversized_requests_get_an_a_abort(engine):
    dicom_engine, _ = engine()
    for first, reason in [(b"\x04\x00\x00\x00\x00\x10" + bytes(16), 2),
                          (b"\x01\x00\xff\xff\xff\xff" + bytes(64), 6)]:
        with socket.create_connection(("127.0.0.1", dicom_engine.port), timeout=5) as sock:
            sock.sendall(first)
            assert sock.recv(10) == bytes([7, 0, 0, 0, 0, 4, 0, 0, 2, reason])
    assert echoscu(dicom_engine.port).returncode == 0


def test_a_slow_requester_does_not_hold_up_the_others(engine):
    dicom_engine, _ = engine(artim_timeout=30)
    with socket.create_connection(("127.0.0.1", dicom_engine.port), timeout=5) as slow:
        slow.sendall(b"\x01\x00\x00\x00\x01\x00" + bytes(20))  # a third of an RQ, then nothing
        started = time.monotonic()
        assert echoscu(dicom_engine.port).returncode == 0
        assert time.monotonic() - started < 5


def test_a_silent_connection_is_closed_after_the_artim_timeout(engine):
    dicom_engine, _ = engine(artim_timeout=1)
    with socket.create_connection(("127.0.0.1", dicom_engine.port), timeout=5) as silent:
        assert silent.recv(10) == b""  # closed by the engine, well before our 5 s


def test_a_p_data_pdu_longer_than_announced_is_aborted(engine):
    dicom_engine, _ = engine(max_pdu=16384)
    request = port_probe.echo_pdus(dicom_engine.port)[0]
    sock = port_probe.associate(dicom_engine.port, request)
    with sock:
        sock.sendall(struct.pack(">BBL", 0x04, 0, 1 << 30) + bytes(64))  # claims 1 GiB
        assert port_probe.closed_or_aborted(sock, 5) in ("abort", "closed")
    assert echoscu(dicom_engine.port).returncode == 0


def test_bad_connections_leave_no_thread_or_descriptor(engine):
    dicom_engine, _ = engine(artim_timeout=1)
    assert echoscu(dicom_engine.port).returncode == 0
    # The engine's threads (by name: Python's threading keeps a _DummyThread per native thread
    # id that ever called into Python, and ids are reused) and its open connections (the
    # sockets accepted on its port: other tests' leftovers may close meanwhile); and no more
    # descriptors of any kind than before.
    def now():
        return engine_threads(), port_probe.connected_on(dicom_engine.port)

    assert port_probe.wait_until(lambda: now()[1] == 0, 15), now()  # echoscu's has closed
    before, fds = now(), len(os.listdir("/proc/self/fd"))
    for first in [b"", b"\x04\x00\x00\x00\x00\x10" + bytes(16), b"\x01\x00\x00\x00\x00\x10"
                  + bytes(16), b"\x01\x00\x00\x00\x01\x00" + bytes(20), os.urandom(200)]:
        for _ in range(4):
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", dicom_engine.port), timeout=5) as sock:
                sock.sendall(first)
    assert port_probe.wait_until(lambda: now() == before, 15), (before, now())
    assert len(os.listdir("/proc/self/fd")) <= fds
    assert echoscu(dicom_engine.port).returncode == 0


def test_a_malformed_request_is_closed_promptly_and_frees_its_thread(engine):
    dicom_engine, _ = engine()
    before = engine_threads()
    with socket.create_connection(("127.0.0.1", dicom_engine.port), timeout=10) as sock:
        sock.sendall(b"\x01\x00\x00\x00\x00\x10" + bytes(16))  # an RQ too short to be one
        started = time.monotonic()
        # A-ABORT (invalid PDU parameter), then closed (DCMTK would wait 180 s for us to
        # close first)
        assert sock.recv(10) == bytes([7, 0, 0, 0, 0, 4, 0, 0, 2, 6])
        assert sock.recv(10) == b""
        assert time.monotonic() - started < 5
        assert port_probe.wait_until(lambda: engine_threads() == before, 5)


def test_one_host_cannot_hold_more_than_its_share_of_pending_connections(engine):
    dicom_engine, _ = engine(max_pending_per_host=3, artim_timeout=20)
    held = [connect_loopback(dicom_engine.port, "127.0.0.5") for _ in range(3)]
    try:
        time.sleep(0.5)
        with connect_loopback(dicom_engine.port, "127.0.0.5", timeout=5) as extra:
            assert extra.recv(10) == b""  # a fourth from that host is closed at once
        other = connect_loopback(dicom_engine.port, "127.0.0.6", timeout=1)
        with other, pytest.raises(TimeoutError):
            other.recv(10)  # another host is still let in (waited for, not closed)
        assert echoscu(dicom_engine.port).returncode == 0
    finally:
        for sock in held:
            sock.close()
