"""The N-EVENT-REPORT that answers a Storage Commitment request (PS3.4 J.3.3): Event Type ID
1 when every instance is committed (Referenced SOP Sequence), 2 otherwise (Failed SOP Sequence
with a Failure Reason per instance, and the committed ones in Referenced SOP Sequence).

It goes on the requester's association while that is open (the engine queues it and sends it
between commands); otherwise on a new association to the `[[peers]]` entry with the
requester's AE title, as the Storage Commitment SCU of that association: the appliance
proposes the Push Model SOP class with SCP/SCU role selection asking the SCP role only
(PS3.7 D.3.3.4), and the requester, the SCU of the service, must accept it.
"""

from __future__ import annotations

from pydicom import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import build_role

from appliance.commitment.checker import COMMITTED
from appliance.commitment.request import SOP_CLASS, WELL_KNOWN_INSTANCE
from appliance.commitment.store import Item
from appliance.config.schema import ApplianceConfig
from appliance.core.errors import ApplianceError
from appliance.dicom.peer_association import associate_peer, peer_target
from appliance.dicom.peer_config import PeerConfig
from appliance.dicom.scu import Timeouts, scu_ae

TRANSFER_SYNTAXES = [ImplicitVRLittleEndian, ExplicitVRLittleEndian]
ALL_COMMITTED, SOME_FAILED = 1, 2


class ReportNotSent(ApplianceError):
    """The report could not be delivered; the message says why."""


def event_information(transaction_uid: str, items: list[Item]) -> tuple[int, Dataset]:
    """(Event Type ID, Event Information) for a decided transaction."""
    ds = Dataset()
    ds.TransactionUID = transaction_uid
    committed, failed = [], []
    for item in items:
        entry = Dataset()
        entry.ReferencedSOPClassUID = item.sop_class_uid
        entry.ReferencedSOPInstanceUID = item.sop_instance_uid
        if item.result == COMMITTED:
            committed.append(entry)
        else:
            entry.FailureReason = item.failure_reason or 0x0110
            failed.append(entry)
    if committed:
        ds.ReferencedSOPSequence = committed
    if failed:
        ds.FailedSOPSequence = failed
    return (SOME_FAILED if failed else ALL_COMMITTED), ds


def requester_peer(config: ApplianceConfig, calling_aet: str) -> PeerConfig | None:
    """The `[[peers]]` entry whose AE title is the requester's."""
    wanted = calling_aet.strip()
    return next((p for p in config.peers if p.ae_title.strip() == wanted), None)


def send_on_new_association(config: ApplianceConfig, peer: PeerConfig, event_type: int,
                            information: Dataset) -> str:
    """Send the report to `peer` as the Storage Commitment SCP role of a new association;
    returns a description of the answer, or ReportNotSent."""
    ae = scu_ae(config.dicom.ae_title, Timeouts.of_dicom(config.dicom))
    ae.add_requested_context(SOP_CLASS, TRANSFER_SYNTAXES)
    role = build_role(SOP_CLASS, scu_role=False, scp_role=True)
    try:
        assoc = associate_peer(ae, peer, config.tls_for(peer), ext_neg=[role])
    except ApplianceError as exc:
        raise ReportNotSent(str(exc)) from exc
    try:
        try:
            status, _ = assoc.send_n_event_report(information, event_type, SOP_CLASS,
                                                  WELL_KNOWN_INSTANCE)
        except ValueError as exc:  # no accepted context with our SCP role
            raise ReportNotSent(f"{peer_target(peer)} did not accept Storage Commitment with "
                                f"the appliance as SCP (role selection): {exc}") from exc
        code = getattr(status, "Status", None)
        if code is None:
            raise ReportNotSent(f"no N-EVENT-REPORT response from {peer_target(peer)}")
        if code != 0x0000:
            raise ReportNotSent(f"{peer_target(peer)} answered the N-EVENT-REPORT "
                                f"0x{code:04X}")
        return f"new association to {peer.name}"
    finally:
        if assoc.is_established:
            assoc.release()
