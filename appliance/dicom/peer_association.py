"""An association to a configured `[[peers]]` entry as an SCU, for the senders that queue
work for a peer (the image forwarder, the MPPS forwarder): plain or over TLS (`tls = true`),
and every way it can fail told in one sentence naming the peer."""

from __future__ import annotations

from pynetdicom import AE
from pynetdicom.association import Association

from appliance.core.errors import ApplianceError
from appliance.dicom.association_log import reject_reason
from appliance.dicom.config import DicomTlsConfig
from appliance.dicom.peer_config import PeerConfig
from appliance.dicom.sockets import SCU_HANDLERS
from appliance.dicom.tls_client import tls_args
from appliance.dicom.tls_files import TlsFileError


class PeerUnreachable(ApplianceError):
    """No association with the peer; the message names it and says why."""


def peer_target(peer: PeerConfig) -> str:
    return f"{peer.name} ({peer.ae_title}@{peer.host}:{peer.port})"


def associate_peer(ae: AE, peer: PeerConfig, tls: DicomTlsConfig | None,
                   ext_neg: list | None = None) -> Association:
    """`ae`'s association with `peer` (over TLS with `tls`, `[dicom.tls]`; `ext_neg`:
    extended negotiation items such as SCP/SCU role selection), established, or
    PeerUnreachable."""
    target = peer_target(peer)
    try:
        assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title,
                             evt_handlers=SCU_HANDLERS, tls_args=tls_args(tls, peer.host),
                             ext_neg=ext_neg)
    except TlsFileError as exc:
        raise PeerUnreachable(f"{target}: TLS: {exc}") from exc
    except (OSError, ValueError) as exc:
        raise PeerUnreachable(f"{target}: cannot connect: {exc}") from exc
    if not assoc.is_established:
        if assoc.is_rejected:
            raise PeerUnreachable(f"{target}: association rejected: "
                                  f"{reject_reason(assoc.acceptor.primitive)}")
        raise PeerUnreachable(f"{target}: no association (connection refused, timed out or "
                              "aborted)")
    return assoc
