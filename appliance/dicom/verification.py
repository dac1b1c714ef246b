"""Verification (C-ECHO): the SCP's presentation contexts (the native engine answers "are you
there?" itself), and the SCU behind `appliance echo`, the web page's "Test" button and the
front panel's peer check.

The SCU turns every way an echo can fail into one sentence a technician can act on: the SCU
helper's (scu.py: connection refused, no answer in time, association rejected with the
standard's reason, aborted), or no C-ECHO response, or a non-success status.
"""

from __future__ import annotations

import logging
import time

from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pynetdicom.sop_class import Verification

from appliance.config.schema import ApplianceConfig
from appliance.dicom.config import DicomTlsConfig
from appliance.dicom.declared_context import DeclaredContext, declare
from appliance.dicom.dicomweb_peer import qido_echo
from appliance.dicom.echo_result import EchoResult
from appliance.dicom.peer_config import PeerConfig
from appliance.dicom.scu import AssociationFailed, Timeouts, associate, scu_ae

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

    def contexts(self) -> list[DeclaredContext]:
        return [declare(Verification, TRANSFER_SYNTAXES)]

    def handlers(self) -> list[tuple]:
        """None: C-ECHO never reaches Python."""
        return []


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
    ae = scu_ae(calling_aet, Timeouts.all(timeout))
    ae.add_requested_context(Verification, [ImplicitVRLittleEndian, ExplicitVRLittleEndian])
    try:
        assoc = associate(ae, host, port, called_aet, tls=tls)
    except AssociationFailed as exc:
        return EchoResult(False, target, reason=exc.reason)
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
