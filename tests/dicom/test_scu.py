"""The SCU helper every association we request goes through (appliance.dicom.scu): the
timeouts and the largest PDU reach the association, TCP_NODELAY is set on its socket, and
each way of not getting one is told in words — against DCMTK's storescp and a pynetdicom SCP
on 127.0.0.1."""

from __future__ import annotations

import socket

import pytest
from pydicom.uid import ImplicitVRLittleEndian
from pynetdicom import AE, evt
from pynetdicom.sop_class import Verification

from appliance.dicom.scu import (
    AssociationFailed,
    Timeouts,
    associate,
    rejection_reason,
    scu_ae,
)
from tests.conftest import free_port


@pytest.mark.parametrize(("fields", "words"), [
    ((1, 1, 7), "called AE title not recognised (rejected permanent, service user)"),
    ((1, 1, 3), "calling AE title not recognised (rejected permanent, service user)"),
    ((2, 3, 2), "local limit exceeded (rejected transient, service provider (presentation))"),
    ((2, 3, 1), "temporary congestion (rejected transient, service provider (presentation))"),
    ((1, 2, 2), "protocol version not supported (rejected permanent, service provider "
                "(acse))"),
    ((1, 1, 1), "no reason given (rejected permanent, service user)"),
    ((0, 1, 7), "rejected"),
    ((None, None, None), "rejected"),
])
def test_rejection_reason_in_words(fields, words):
    assert rejection_reason(*fields) == words


def echo_ae(timeouts: Timeouts | None = None, max_pdu: int | None = None) -> AE:
    ae = scu_ae("EDGEBOX", timeouts or Timeouts.all(5), max_pdu)
    ae.add_requested_context(Verification, [ImplicitVRLittleEndian])
    return ae


def test_the_ae_has_every_timeout_and_the_largest_pdu():
    ae = scu_ae("EDGEBOX", Timeouts(1.5, 2.5, 3.5, 4.5), max_pdu=65536)
    assert (ae.connection_timeout, ae.acse_timeout, ae.dimse_timeout, ae.network_timeout) == \
        (1.5, 2.5, 3.5, 4.5)
    assert ae.maximum_pdu_size == 65536
    assert scu_ae("EDGEBOX", Timeouts.all(1)).maximum_pdu_size == AE().maximum_pdu_size


def test_established_association_has_tcp_nodelay(storescp):
    port = storescp("DCMTKSCP")
    assoc = associate(echo_ae(), "127.0.0.1", port, "DCMTKSCP")
    try:
        assert assoc.is_established
        sock = assoc.dul.socket.socket
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        assert assoc.send_c_echo().Status == 0x0000
    finally:
        assoc.release()


@pytest.fixture
def pynetdicom_scp():
    """A Verification SCP that insists on its called AE title, recording the largest PDU
    each requestor announced."""
    scp = AE(ae_title="STRICT")
    scp.require_called_aet = True
    scp.add_supported_context(Verification)
    announced: list[int] = []
    port = free_port()
    server = scp.start_server(("127.0.0.1", port), block=False, evt_handlers=[
        (evt.EVT_ACCEPTED, lambda event: announced.append(event.assoc.requestor.maximum_length))])
    yield port, announced
    server.shutdown()


def test_the_largest_pdu_is_announced(pynetdicom_scp):
    port, announced = pynetdicom_scp
    assoc = associate(echo_ae(max_pdu=32768), "127.0.0.1", port, "STRICT")
    assoc.release()
    assert announced == [32768]


def test_a_rejection_is_told_with_the_standards_reason(pynetdicom_scp):
    port, _ = pynetdicom_scp
    with pytest.raises(AssociationFailed) as failed:
        associate(echo_ae(), "127.0.0.1", port, "WRONG")
    assert failed.value.rejected
    assert str(failed.value) == ("association rejected: called AE title not recognised "
                                 "(rejected permanent, service user)")


def test_nothing_listening_is_connection_refused():
    with pytest.raises(AssociationFailed) as failed:
        associate(echo_ae(), "127.0.0.1", free_port(), "ANY")
    assert not failed.value.rejected
    assert failed.value.reason == "connection refused (nothing listening on that port)"


def test_a_silent_peer_is_an_acse_timeout():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        with pytest.raises(AssociationFailed) as failed:
            associate(echo_ae(Timeouts(5, 0.5, 5, 5)), "127.0.0.1", port, "ANY")
    assert failed.value.reason == ("connected, but no association response within 0.5 s "
                                   "(ACSE timeout)")


def test_unusable_tls_files_are_named(tmp_path):
    from appliance.config.schema import DicomTlsConfig

    tls = DicomTlsConfig(certificate=str(tmp_path / "none.pem"),
                         private_key=str(tmp_path / "none.key"),
                         ca_certificates=str(tmp_path / "ca.pem"))
    with pytest.raises(AssociationFailed) as failed:
        associate(echo_ae(), "127.0.0.1", free_port(), "ANY", tls=tls)
    assert failed.value.reason.startswith("TLS: ")
    assert "none.pem" in failed.value.reason or "ca.pem" in failed.value.reason
