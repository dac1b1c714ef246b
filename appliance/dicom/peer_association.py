"""An association to a configured `[[peers]]` entry as an SCU, for the senders that queue
work for a peer (the image forwarder, the MPPS forwarder, the Storage Commitment reporter):
opened with the SCU helper (scu.py), plain or over TLS (`tls = true`), or for C-STORE alone on
the native engine (store_association.py), and every way it can fail told in one sentence naming
the peer."""

from __future__ import annotations

from pynetdicom import AE
from pynetdicom.association import Association

from appliance.core.errors import ApplianceError
from appliance.dicom.config import DicomTlsConfig
from appliance.dicom.peer_config import PeerConfig
from appliance.dicom.scu import AssociationFailed, Timeouts, associate
from appliance.dicom.store_association import StoreAssociation, open_store_association


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
        raise _unreachable(peer, exc) from exc


def store_association_with(peer: PeerConfig, calling_aet: str,
                           contexts: list[tuple[str, str]],
                           timeouts: Timeouts) -> StoreAssociation:
    """A native C-STORE SCU association with a plain (non-TLS) `peer` proposing `contexts`
    ((SOP class, transfer syntax) each), or PeerUnreachable in the same words."""
    try:
        return open_store_association(peer.host, peer.port, calling_aet, peer.ae_title,
                                      contexts, timeouts, peer_target(peer))
    except AssociationFailed as exc:
        raise _unreachable(peer, exc) from exc


def _unreachable(peer: PeerConfig, exc: AssociationFailed) -> PeerUnreachable:
    what = exc.reason if exc.rejected else f"no association: {exc.reason}"
    return PeerUnreachable(f"{peer_target(peer)}: {what}")
