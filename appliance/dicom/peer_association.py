"""An association to a configured `[[peers]]` entry as an SCU, for the senders that queue
work for a peer (the image forwarder, the MPPS forwarder, the Storage Commitment reporter):
opened with the SCU helper (scu.py), plain or over TLS (`tls = true`), and every way it can
fail told in one sentence naming the peer."""

from __future__ import annotations

from pynetdicom import AE
from pynetdicom.association import Association

from appliance.core.errors import ApplianceError
from appliance.dicom.config import DicomTlsConfig
from appliance.dicom.peer_config import PeerConfig
from appliance.dicom.scu import AssociationFailed, associate


class PeerUnreachable(ApplianceError):
    """No association with the peer; the message names it and says why."""


def peer_target(peer: PeerConfig) -> str:
    return f"{peer.name} ({peer.ae_title}@{peer.host}:{peer.port})"


def associate_peer(ae: AE, peer: PeerConfig, tls: DicomTlsConfig | None,
                   ext_neg: list | None = None) -> Association:
    """`ae`'s association with `peer` (an AE from `scu.scu_ae`; over TLS with `tls`,
    `[dicom.tls]`; `ext_neg`: extended negotiation items such as SCP/SCU role selection),
    established, or PeerUnreachable: '<peer>: association rejected: <reason>' or
    '<peer>: no association: <reason>'."""
    try:
        return associate(ae, peer.host, peer.port, peer.ae_title, tls=tls, ext_neg=ext_neg)
    except AssociationFailed as exc:
        what = exc.reason if exc.rejected else f"no association: {exc.reason}"
        raise PeerUnreachable(f"{peer_target(peer)}: {what}") from exc
