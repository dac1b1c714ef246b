"""The MPPS SCP on the DICOM server's one AE (served by the native engine through
appliance.dicom.engine_dispatch): the Modality Performed Procedure Step SOP class, N-CREATE
and N-SET (PS3.4 F.7).

N-CREATE keeps a new instance IN PROGRESS and starts the worklist items its Scheduled Step
Attributes Sequence names; N-SET updates it until a COMPLETED or DISCONTINUED makes it final
and finishes those items. What is checked, and the statuses of a refusal: attributes.py;
what is kept: store.py. `[mpps] enabled = false` leaves the context out of negotiation (read
when the DICOM server starts). With `[mpps] forward_to`, an accepted request's data set, as
received, is queued for those peers in the transaction that keeps it (queue.py; sent by
forwarder.py).
"""

from __future__ import annotations

import logging
import threading

from pydicom import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pynetdicom import evt
from pynetdicom.sop_class import ModalityPerformedProcedureStep

from appliance.config.schema import ApplianceConfig
from appliance.dicom.declared_context import DeclaredContext, declare
from appliance.mpps.attributes import PROCESSING_FAILURE, MppsRefusal
from appliance.mpps.queue import Received
from appliance.mpps.store import MppsStore
from appliance.worklist.scp import WorklistService

log = logging.getLogger(__name__)

TRANSFER_SYNTAXES = [ImplicitVRLittleEndian, ExplicitVRLittleEndian]
SOP_CLASS = str(ModalityPerformedProcedureStep)
UNRECOGNISED_OPERATION = 0x0211


class MppsService:
    """MPPS SCP: its presentation context and the N-CREATE/N-SET handlers over an
    `MppsStore` kept beside the worklist's store (shared with `worklist`)."""

    name = "mpps"

    def __init__(self, config: ApplianceConfig | None, worklist: WorklistService):
        self.configure(config or ApplianceConfig())
        self.worklist = worklist
        self._lock = threading.Lock()
        self._store: MppsStore | None = None

    def configure(self, config: ApplianceConfig) -> None:
        """A new configuration: `forward_to` applies to the next request."""
        self.config = config

    def _received(self, event, data) -> Received | None:
        """What to queue for `[mpps] forward_to`: the data set's bytes as received."""
        peers = tuple(self.config.mpps.forward_to)
        if not peers:
            return None
        raw = data.getvalue() if hasattr(data, "getvalue") else bytes(data or b"")
        return Received(peers, str(event.context.transfer_syntax), raw)

    @property
    def store(self) -> MppsStore:
        """Opened on first use (the worklist store's database), so building the service never
        touches the disk."""
        worklist_store = self.worklist.store
        with self._lock:
            if self._store is None or self._store.worklist is not worklist_store:
                self._store = MppsStore(worklist_store)
            return self._store

    def contexts(self) -> list[DeclaredContext]:
        if not self.config.mpps.enabled:
            return []
        return [declare(SOP_CLASS, TRANSFER_SYNTAXES)]

    def handlers(self) -> list[tuple]:
        return [(evt.EVT_N_CREATE, self.handle_create), (evt.EVT_N_SET, self.handle_set)]

    # -- handlers ---------------------------------------------------------------------------

    def handle_create(self, event):
        req = event.request
        calling = event.assoc.requestor.ae_title.strip()
        uid = str(req.AffectedSOPInstanceUID) if req.AffectedSOPInstanceUID else None
        def create():
            _own_class(str(req.AffectedSOPClassUID), "N-CREATE")
            ds = event.attribute_list if req.AttributeList is not None else Dataset()
            return self.store.create(uid or generate_uid(), ds, calling,
                                     self._received(event, req.AttributeList))

        step, refusal = _attempt(create, "N-CREATE", uid, calling, "cannot keep the MPPS")
        if refusal is not None:
            return refusal, None
        status = Dataset()
        status.Status = 0x0000
        reply = step.data
        if uid is None:  # the dispatcher moves it into the response's command
            reply.AffectedSOPInstanceUID = step.sop_instance_uid
        return status, reply

    def handle_set(self, event):
        req = event.request
        calling = event.assoc.requestor.ae_title.strip()
        uid = str(req.RequestedSOPInstanceUID)
        def update():
            _own_class(str(req.RequestedSOPClassUID), "N-SET")
            ds = event.modification_list if req.ModificationList is not None else Dataset()
            self.store.update(uid, ds, self._received(event, req.ModificationList))

        _, refusal = _attempt(update, "N-SET", uid, calling, "cannot update the MPPS")
        return (0x0000, None) if refusal is None else (refusal, None)


def _attempt(action, operation: str, uid: str | None, calling: str, failing: str):
    """(what `action` returned, None), or (None, the refusal's status data set): its own
    MppsRefusal, or any other failure as a processing failure."""
    try:
        return action(), None
    except MppsRefusal as exc:
        return None, _refuse(exc, operation, uid, calling)
    except Exception as exc:
        log.exception("MPPS %s from %s failed", operation, calling)
        return None, _refuse(MppsRefusal(PROCESSING_FAILURE, f"{failing}: {exc}"), operation,
                             uid, calling)


def _own_class(sop_class: str, operation: str) -> None:
    if sop_class != SOP_CLASS:
        raise MppsRefusal(UNRECOGNISED_OPERATION, f"{operation} is not supported for "
                          f"SOP class {sop_class}")


def _refuse(exc: MppsRefusal, operation: str, uid: str | None, calling: str) -> Dataset:
    log.warning("MPPS %s %s from %s refused: 0x%04X %s", operation, uid or "(new)",
                calling or "-", exc.code, exc.comment)
    return exc.response()
