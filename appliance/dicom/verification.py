"""Verification (C-ECHO): the SCP's presentation contexts (the native engine answers "are you
there?" itself), and the SCU behind `appliance echo`, the web page's "Test" button and the
front panel's peer check.

The SCU turns every way an echo can fail into one sentence a technician can act on:
connection refused, no answer in time, association rejected (with the standard's reason),
aborted, or a non-success status.
"""

from __future__ import annotations

import logging
import socket
import threading
import time

from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pynetdicom import AE, evt
from pynetdicom.presentation import PresentationContext, build_context
from pynetdicom.sop_class import Verification

from appliance.config.schema import ApplianceConfig
from appliance.dicom.association_log import reject_reason
from appliance.dicom.config import DicomTlsConfig
from appliance.dicom.dicomweb_peer import qido_echo
from appliance.dicom.echo_result import EchoResult
from appliance.dicom.peer_config import PeerConfig
from appliance.dicom.sockets import SCU_HANDLERS
from appliance.dicom.tls_client import tls_args
from appliance.dicom.tls_files import TlsFileError

log = logging.getLogger(__name__)

#: Transfer syntaxes we accept for Verification (no data set travels, so any uncompressed one).
TRANSFER_SYNTAXES = [
    ImplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
]


class VerificationService:
    """The Verification SCP: its presentation contexts (the engine answers C-ECHO itself)."""

    name = "verification"

    def contexts(self) -> list[PresentationContext]:
        return [build_context(Verification, TRANSFER_SYNTAXES)]

    def handlers(self) -> list[tuple]:
        """None: C-ECHO never reaches Python."""
        return []


class _ConnectErrors(logging.Handler):
    """Catches pynetdicom's 'TCP Initialisation Error' log line, the only place it reports why
    a connection failed, so the reason can be told to the user."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.by_thread: dict[int, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("TCP Initialisation Error: "):
            self.by_thread[record.thread] = message.split(": ", 1)[1]


_transport_lock = threading.Lock()


def echo_peer(config: ApplianceConfig, peer: PeerConfig, timeout: float = 10.0) -> EchoResult:
    """`echo` to a configured `[[peers]]` entry as ourselves (`[dicom] ae_title`), over TLS
    when the peer has `tls = true`; a DICOMweb peer gets a QIDO-RS query instead."""
    if peer.protocol == "dicomweb":
        return qido_echo(peer, timeout)
    return echo(peer.host, peer.port, peer.ae_title, config.dicom.ae_title, timeout=timeout,
                tls=config.tls_for(peer))


def echo(host: str, port: int, called_aet: str, calling_aet: str,
         timeout: float = 10.0, tls: DicomTlsConfig | None = None) -> EchoResult:
    """Send one C-ECHO to host:port (over TLS with `tls`, `[dicom.tls]`) and report the
    outcome; never raises for network trouble or unusable TLS files."""
    target = f"{called_aet}@{host}:{port}" + (" (TLS)" if tls is not None else "")
    try:
        secure = tls_args(tls, host)
    except TlsFileError as exc:
        return EchoResult(False, target, reason=f"TLS: {exc}")
    ae = AE(ae_title=calling_aet)
    ae.add_requested_context(Verification, [ImplicitVRLittleEndian, ExplicitVRLittleEndian])
    ae.connection_timeout = timeout
    ae.acse_timeout = timeout
    ae.dimse_timeout = timeout
    ae.network_timeout = timeout
    connected = threading.Event()
    handlers = SCU_HANDLERS + [(evt.EVT_CONN_OPEN, lambda event: connected.set())]

    catcher = _ConnectErrors()
    transport_log = logging.getLogger("pynetdicom.transport")
    with _transport_lock:
        transport_log.addHandler(catcher)
    started = time.monotonic()
    try:
        assoc = ae.associate(host, port, ae_title=called_aet, evt_handlers=handlers,
                             tls_args=secure)
    except socket.gaierror:
        return EchoResult(False, target, reason=f"unknown host name {host!r}")
    except (OSError, ValueError) as exc:
        return EchoResult(False, target, reason=f"cannot connect: {exc}")
    finally:
        with _transport_lock:
            transport_log.removeHandler(catcher)
    elapsed = time.monotonic() - started

    if assoc.is_established:
        try:
            sent = time.monotonic()
            status = assoc.send_c_echo()
            rtt = (time.monotonic() - sent) * 1000
        finally:
            if assoc.is_established:
                assoc.release()
        if "Status" not in status:
            return EchoResult(False, target, reason=f"no C-ECHO response within {timeout:g} s "
                              "(association aborted or timed out)")
        if status.Status != 0x0000:
            return EchoResult(False, target, reason=f"C-ECHO returned status 0x{status.Status:04X}")
        return EchoResult(True, target, round_trip_ms=rtt)
    if assoc.is_rejected:
        return EchoResult(False, target,
                          reason="association rejected: " + reject_reason(assoc.acceptor.primitive))
    if not connected.is_set():
        error = catcher.by_thread.get(assoc.dul.ident) or next(iter(catcher.by_thread.values()), "")
        return EchoResult(False, target, reason=_connect_reason(error, timeout, tls is not None))
    if elapsed >= timeout * 0.95:
        return EchoResult(False, target, reason=f"connected, but no association response within "
                          f"{timeout:g} s (ACSE timeout)")
    hint = " (over TLS: does it accept our certificate's CA?)" if tls is not None else ""
    return EchoResult(False, target, reason="connected, but the peer aborted or closed the "
                      f"connection without answering the association request{hint}")


def _connect_reason(error: str, timeout: float, tls: bool = False) -> str:
    lowered = error.lower()
    if "certificate verify failed" in lowered:
        return ("TLS: the peer's certificate was not accepted (is its CA in [dicom.tls] "
                f"ca_certificates?): {error}")
    if tls and any(sign in lowered for sign in ("wrong version number", "unexpected eof",
                                                "reset by peer", "eof occurred")):
        return f"TLS handshake failed (does the peer speak TLS on that port?): {error}"
    if "[ssl" in lowered:
        return f"TLS handshake failed: {error}"
    if "refused" in lowered:
        return "connection refused (nothing listening on that port)"
    if "timed out" in lowered:
        return f"no answer to the connection within {timeout:g} s (host down or filtered?)"
    if "name or service not known" in lowered or "nodename nor servname" in lowered:
        return "unknown host name"
    if "unreachable" in lowered:
        return "network unreachable"
    return f"cannot connect: {error}" if error else "cannot connect"

