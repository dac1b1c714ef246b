"""The engine's association events (`on_association`): "opened" when a connection is accepted,
"established" after the A-ASSOCIATE-AC, and exactly one "ended" per connection with the
association log's outcome words (association_log.py; the words of the pynetdicom server's
pre-negotiation gate and PDU limit, since deleted), for associations and for connections that
never became one. Real DCMTK and pynetdicom peers on
127.0.0.1."""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading

from pynetdicom import AE
from pynetdicom.sop_class import Verification

from tests.conftest import connect_loopback, echoscu
from tests.dicom import port_probe

ENGINE_LOGGER = "appliance.dicom.engine"
VERIFICATION = "1.2.840.10008.1.1"
IMPLICIT_VR = "1.2.840.10008.1.2"


class Events:
    """The on_association callback: keeps every event, with the thread it came on."""

    def __init__(self, error: Exception | None = None):
        self.error = error
        self.events: list[dict] = []
        self.threads: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, event: dict) -> None:
        with self.lock:
            self.events.append(event)
            self.threads.append(threading.get_ident())
        if self.error is not None:
            raise self.error

    def ended(self, count: int = 1, timeout: float = 10.0) -> list[dict]:
        """The first `count` "ended" events, waited for."""
        def found():
            with self.lock:
                return [e for e in self.events if e["event"] == "ended"]
        assert port_probe.wait_until(lambda: len(found()) >= count, timeout), self.events
        return found()[:count]

    def of_kind(self, kind: str) -> list[dict]:
        with self.lock:
            return [e for e in self.events if e["event"] == kind]


def start(engine, events: Events, **settings):
    return engine(on_association=events, **settings)[0]


def test_an_echo_association_opens_is_established_and_ends_released(engine, caplog):
    caplog.set_level(logging.INFO, logger=ENGINE_LOGGER)
    events = Events()
    dicom_engine = start(engine, events)
    assert echoscu(dicom_engine.port, "EDGEBOX", "MODALITY").returncode == 0
    ended = events.ended()[0]
    opened, established = events.of_kind("opened")[0], events.of_kind("established")[0]
    assert [e["event"] for e in events.events] == ["opened", "established", "ended"]
    assert set(opened) == {"event", "peer"} and opened["peer"].startswith("127.0.0.1:")
    assert established["association_id"] > 0
    assert established["calling_ae"] == "MODALITY" and established["called_ae"] == "EDGEBOX"
    assert {"context_id": 1, "abstract_syntax": VERIFICATION,
            "transfer_syntax": IMPLICIT_VR} in established["contexts"]
    assert ended["association_id"] == established["association_id"]
    assert ended["peer"] == opened["peer"] == established["peer"]
    assert ended["contexts"] == established["contexts"]
    assert ended["operations"] == {"C-ECHO": 1}
    assert ended["outcome"] == "released"
    assert 0 < ended["duration"] < 10
    assert len(set(events.threads)) == 1 and events.threads[0] != threading.get_ident()
    # The Python side writes the association log: no line of the engine's own.
    assert not any("MODALITY -> EDGEBOX" in r.message for r in caplog.records)


def test_operations_count_each_request(engine):
    events = Events()
    dicom_engine = start(engine, events)
    ae = AE(ae_title="PYSCU")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", dicom_engine.port, ae_title="EDGEBOX")
    assert assoc.is_established
    for _ in range(3):
        assert assoc.send_c_echo().Status == 0
    assoc.release()
    ended = events.ended()[0]
    assert ended["operations"] == {"C-ECHO": 3}
    assert ended["outcome"] == "released"
    assert ended["calling_ae"] == "PYSCU"


def test_an_a_abort_from_the_peer_ends_aborted(engine):
    events = Events()
    dicom_engine = start(engine, events)
    request = port_probe.echo_pdus(dicom_engine.port)[0]
    with port_probe.associate(dicom_engine.port, request) as sock:
        sock.sendall(bytes([7, 0, 0, 0, 0, 4, 0, 0, 0, 0]))  # A-ABORT, service user
        assert port_probe.closed_or_aborted(sock, 5) == "closed"
    ended = events.ended(2)[1]  # after echo_pdus' own association
    assert ended["outcome"] == "aborted" and ended["association_id"] > 0


def test_refused_associations_end_with_the_association_logs_reject_words(engine):
    events = Events()
    dicom_engine = start(engine, events, allowed_calling_aets=("MODALITY",))
    assert echoscu(dicom_engine.port, "WRONG", "MODALITY").returncode != 0
    assert echoscu(dicom_engine.port, "EDGEBOX", "STRANGER").returncode != 0
    called, calling = events.ended(2)
    assert called["outcome"] == ("rejected: called AE title not recognised "
                                 "(rejected permanent, service user)")
    assert called["association_id"] == 0 and called["contexts"] == []
    assert called["calling_ae"] == "MODALITY" and called["called_ae"] == "WRONG"
    assert called["operations"] == {}
    assert calling["outcome"] == ("rejected: calling AE title not recognised "
                                  "(rejected permanent, service user)")
    assert not events.of_kind("established")
    assert len(events.of_kind("opened")) == 2


def test_the_association_limit_ends_rejected_transient(engine):
    events = Events()
    dicom_engine = start(engine, events, max_associations=1)
    ae = AE(ae_title="PYSCU")
    ae.add_requested_context(Verification)
    held = ae.associate("127.0.0.1", dicom_engine.port, ae_title="EDGEBOX")
    try:
        assert held.is_established
        assert echoscu(dicom_engine.port).returncode != 0
        refused = events.ended()[0]
        assert refused["outcome"] == ("rejected: local limit exceeded (rejected transient, "
                                      "service provider (presentation))")
    finally:
        held.release()
    assert events.ended(2)[1]["outcome"] == "released"


def test_connections_that_never_negotiate_end_with_the_gates_words(engine):
    events = Events()
    dicom_engine = start(engine, events, artim_timeout=1)
    for first in [b"\x04\x00\x00\x00\x00\x10" + bytes(16), b"\x01\x00\xff\xff\xff\xff" + bytes(64),
                  b"\x07\x00\x00\x00\x00\x04" + bytes(4), b""]:
        with socket.create_connection(("127.0.0.1", dicom_engine.port), timeout=5) as sock:
            sock.sendall(first)
            with contextlib.suppress(OSError):
                sock.recv(10)  # an A-ABORT, the close, or (b"") the ARTIM timeout
    with socket.create_connection(("127.0.0.1", dicom_engine.port), timeout=5) as silent:
        assert silent.recv(10) == b""  # the ARTIM timeout (1 s)
    outcomes = sorted(e["outcome"] for e in events.ended(5))
    assert outcomes == sorted([
        "aborted: PDU type 0x04 before A-ASSOCIATE-RQ",
        "aborted: A-ASSOCIATE-RQ length 4294967295 over the limit 65536",
        "closed before A-ASSOCIATE-RQ: A-ABORT from peer",
        "closed before A-ASSOCIATE-RQ: ARTIM timeout (1 s)",
        "closed before A-ASSOCIATE-RQ: ARTIM timeout (1 s)",
    ]), outcomes
    assert all(e["association_id"] == 0 and e["calling_ae"] == "" and e["contexts"] == []
               for e in events.ended(5))
    assert len(events.of_kind("opened")) == 5


def test_a_request_dcmtk_cannot_decode_ends_aborted_like_the_gates(engine):
    events = Events()
    dicom_engine = start(engine, events)
    with socket.create_connection(("127.0.0.1", dicom_engine.port), timeout=5) as sock:
        sock.sendall(b"\x01\x00\x00\x00\x00\x10" + bytes(16))  # too short to be an RQ
        assert sock.recv(10) == bytes([7, 0, 0, 0, 0, 4, 0, 0, 2, 6])
    assert events.ended()[0]["outcome"] == ("aborted: A-ASSOCIATE-RQ of 16 bytes cannot be "
                                            "decoded")


def test_a_peer_closing_before_its_request_ends_closed_by_peer(engine):
    events = Events()
    dicom_engine = start(engine, events)
    socket.create_connection(("127.0.0.1", dicom_engine.port), timeout=5).close()
    half = socket.create_connection(("127.0.0.1", dicom_engine.port), timeout=5)
    half.sendall(b"\x01\x00\x00\x00\x01\x00" + bytes(20))
    half.close()
    outcomes = sorted(e["outcome"] for e in events.ended(2))
    assert outcomes == ["closed before A-ASSOCIATE-RQ: connection closed by peer",
                        "closed before A-ASSOCIATE-RQ: connection closed by peer, "
                        "26 bytes received"], outcomes


def test_over_the_pending_limit_a_connection_is_opened_and_ended_at_once(engine):
    events = Events()
    dicom_engine = start(engine, events, max_pending_per_host=2, artim_timeout=20)
    held = [connect_loopback(dicom_engine.port, "127.0.0.5") for _ in range(2)]
    try:
        assert port_probe.wait_until(lambda: len(events.of_kind("opened")) == 2, 5)
        over = connect_loopback(dicom_engine.port, "127.0.0.5")
        ended = events.ended()[0]
        assert ended["outcome"] == ("refused: too many pending from 127.0.0.5 "
                                    "(max_pending_per_host 2)")
        assert ended["peer"].startswith("127.0.0.5:")
        over.close()
    finally:
        for sock in held:
            sock.close()
    assert len(events.ended(3)) == 3


def test_a_p_data_pdu_over_the_limit_ends_with_the_pdu_limit_words(engine):
    events = Events()
    dicom_engine = start(engine, events, max_pdu=16384)
    request = port_probe.echo_pdus(dicom_engine.port)[0]
    sock = port_probe.associate(dicom_engine.port, request)
    with sock:
        sock.sendall(struct.pack(">BBL", 0x04, 0, 1 << 30) + bytes(64))  # claims 1 GiB
        assert port_probe.closed_or_aborted(sock, 5) in ("abort", "closed")
    ended = events.ended(2)[1]  # after echo_pdus' own association
    assert ended["outcome"] == "aborted: P-DATA-TF length 1073741824 over announced max 16384"
    assert ended["association_id"] > 0


def test_a_connection_dropped_after_negotiation_ends_connection_closed(engine):
    events = Events()
    dicom_engine = start(engine, events)
    request = port_probe.echo_pdus(dicom_engine.port)[0]
    port_probe.associate(dicom_engine.port, request).close()
    assert events.ended(2)[1]["outcome"] == "connection closed"


def test_an_association_still_open_at_stop_ends_aborted(engine):
    events = Events()
    dicom_engine = start(engine, events)
    ae = AE(ae_title="PYSCU")
    ae.add_requested_context(Verification)
    held = ae.associate("127.0.0.1", dicom_engine.port, ae_title="EDGEBOX")
    assert held.is_established
    dicom_engine.stop(grace=0.2)
    ended = events.ended()[0]
    assert ended["outcome"] == "aborted" and ended["calling_ae"] == "PYSCU"
    assert port_probe.wait_until(lambda: held.is_aborted, 5)


def test_a_failing_callback_is_logged_and_changes_nothing(engine, caplog):
    caplog.set_level(logging.ERROR, logger=ENGINE_LOGGER)
    events = Events(error=RuntimeError("LED broken"))
    dicom_engine = start(engine, events)
    assert echoscu(dicom_engine.port).returncode == 0
    assert events.ended()[0]["outcome"] == "released"
    assert port_probe.wait_until(  # logged from the engine's thread
        lambda: any("association callback failed" in r.message and "LED broken" in r.message
                    for r in caplog.records), 5)
