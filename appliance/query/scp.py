"""The Query/Retrieve SCP over the local store (PS3.4 Annex C) on the DICOM server's one AE
(served by the native engine through appliance.dicom.engine_dispatch): Patient Root and Study
Root, FIND, MOVE and GET.

C-FIND answers are streamed as Pending responses, one per match (find.py); C-MOVE sends the
selected instances over our own association to the `[[peers]]` entry whose AE title is the Move
Destination (unknown: 0xA801), with the peer's TLS setting; C-GET sends them on the requester's
association (C-STORE sub-operations, the requester as SCP of the storage classes it proposed
with SCP/SCU Role Selection). Pending responses carry the sub-operation counts; the final status
is Success, 0xB000 (some failed or warned, with the Failed SOP Instance UID List) or 0xA702
(all failed). A C-CANCEL closes the handler's generator (engine_retrieve.py): the engine
answers 0xFE00 after at most the sub-operation in flight. `[query_retrieve] enabled = false`
leaves the contexts out of negotiation (read when the DICOM server starts).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pydicom import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import evt
from pynetdicom.presentation import PresentationContext, build_context

from appliance.config.schema import ApplianceConfig
from appliance.dicom.declared_context import DeclaredContext, declare
from appliance.dicom.find_answers import answer_dataset
from appliance.dicom.scu import Timeouts
from appliance.dicom.storage import STORAGE_SOP_CLASSES, STORAGE_TRANSFER_SYNTAXES
from appliance.dicom.tls_client import client_context
from appliance.query.find import find
from appliance.query.models import SOP_CLASSES, UNIQUE_COLUMN
from appliance.query.records import Row, held, rows
from appliance.query.request import IdentifierError, QueryRequest, parse

log = logging.getLogger(__name__)

TRANSFER_SYNTAXES = [ImplicitVRLittleEndian, ExplicitVRLittleEndian]
PENDING, SUCCESS = 0xFF00, 0x0000
IDENTIFIER_DOES_NOT_MATCH = 0xA900
UNABLE_TO_PROCESS = 0xC001          # the 0xCxxx range: "unable to process"


class QueryRetrieveService:
    """Q/R SCP: the six SOP classes' contexts, storage classes for C-GET, and the handlers
    over the instance store that `store_source()` gives (None while storage is stopped)."""

    name = "query_retrieve"
    configured_by_server = True  # the DICOM server passes each new configuration on

    def __init__(self, config: ApplianceConfig | None, store_source: Callable):
        self.configure(config or ApplianceConfig())
        self.store_source = store_source

    def configure(self, config: ApplianceConfig) -> None:
        """Peers, TLS and AE title apply to the next request; `enabled` at the next start."""
        self.config = config

    def contexts(self) -> list[DeclaredContext]:
        if not self.config.query_retrieve.enabled:
            return []
        out = [declare(uid, TRANSFER_SYNTAXES) for uid in SOP_CLASSES]
        # C-GET: the requester is the storage SCP
        out.extend(declare(sop_class, STORAGE_TRANSFER_SYNTAXES, scp_role=True, scu_role=False)
                   for sop_class in STORAGE_SOP_CLASSES)
        return out

    def handlers(self) -> list[tuple]:
        return [(evt.EVT_C_FIND, self.handle_find), (evt.EVT_C_MOVE, self.handle_move),
                (evt.EVT_C_GET, self.handle_get)]

    def _request(self, event) -> QueryRequest:
        return parse(str(event.request.AffectedSOPClassUID), event.identifier.to_json_dict())

    def _store(self):
        store = self.store_source()
        if store is None:
            raise StoreDown("the instance store is not running")
        return store

    # -- C-FIND -----------------------------------------------------------------------------

    def handle_find(self, event):
        calling = event.assoc.requestor.ae_title.strip()
        try:
            request = self._request(event)
            store = self._store()
        except IdentifierError as exc:
            log.warning("Q/R C-FIND from %s refused: %s", calling, exc)
            yield failure(IDENTIFIER_DOES_NOT_MATCH, str(exc)), None
            return
        except Exception as exc:
            log.warning("Q/R C-FIND from %s refused: %s", calling, exc)
            yield failure(UNABLE_TO_PROCESS, f"cannot use the identifier: {exc}"), None
            return
        implicit_vr = UID(event.context.transfer_syntax).is_implicit_VR
        charset = _charset(event.identifier)
        sent = 0
        try:
            for found in find(store.db, store.root, request, self.config.dicom.ae_title):
                yield PENDING, answer_dataset(found, charset, implicit_vr)
                sent += 1
        except GeneratorExit:
            log.info("Q/R C-FIND from %s stopped after %d answers (cancelled or the "
                     "association ended)", calling, sent)
            raise
        except Exception as exc:
            log.exception("Q/R C-FIND from %s failed", calling)
            yield failure(UNABLE_TO_PROCESS, f"store error: {exc}"), None
            return
        log.info("Q/R C-FIND from %s at %s level: %d answers", calling, request.level, sent)
        yield SUCCESS, None

    # -- C-MOVE and C-GET -------------------------------------------------------------------

    def _selected(self, event, operation: str) -> list[Row] | Dataset:
        """The instances a retrieve names, or the failure status to refuse it with."""
        calling = event.assoc.requestor.ae_title.strip()
        try:
            request = self._request(event)
            wanted = request.level_values()
            if not wanted:
                raise IdentifierError(f"a {request.level} level retrieve needs its unique key")
            store = self._store()
            where = {**request.above, UNIQUE_COLUMN[request.level]: wanted}
            return held(rows(store.db, store.root, where))
        except IdentifierError as exc:
            log.warning("Q/R %s from %s refused: %s", operation, calling, exc)
            return failure(IDENTIFIER_DOES_NOT_MATCH, str(exc))
        except Exception as exc:
            log.warning("Q/R %s from %s failed: %s", operation, calling, exc)
            return failure(UNABLE_TO_PROCESS, f"cannot select the instances: {exc}")

    def handle_move(self, event):
        calling = event.assoc.requestor.ae_title.strip()
        destination = (event.move_destination or "").strip()
        peer = next((p for p in self.config.peers if p.ae_title.strip() == destination), None)
        if peer is None:
            log.warning("Q/R C-MOVE from %s: destination %r is not in [[peers]]; answered "
                        "0xA801", calling, destination)
            yield None, None
            return
        selected = self._selected(event, "C-MOVE")
        if isinstance(selected, Dataset):
            yield selected
            return
        options = {"contexts": storage_contexts(selected),
                   "timeouts": Timeouts.of_dicom(self.config.dicom)}
        if peer.tls:
            options["tls"] = client_context(self.config.dicom.tls)
        yield peer.host, peer.port, options
        yield len(selected)
        log.info("Q/R C-MOVE from %s: %d instances to %s (%s:%d)", calling, len(selected),
                 peer.name, peer.host, peer.port)
        yield from _pending(selected)

    def handle_get(self, event):
        calling = event.assoc.requestor.ae_title.strip()
        selected = self._selected(event, "C-GET")
        if isinstance(selected, Dataset):
            yield selected
            return
        yield len(selected)
        log.info("Q/R C-GET from %s: %d instances", calling, len(selected))
        yield from _pending(selected)


class StoreDown(RuntimeError):
    """The instance store is not open (storage stopped)."""


def _pending(selected: list[Row]):
    """One C-STORE sub-operation per instance, sent from its file as stored; the dispatcher
    counts the outcomes and derives the final status."""
    for row in selected:
        yield PENDING, str(row.path)


def storage_contexts(selected: list[Row]) -> list[PresentationContext]:
    """The contexts our C-MOVE association proposes: each SOP class with the transfer syntaxes
    its instances are stored in (sent as stored, never transcoded), at most 128."""
    syntaxes: dict[str, list[str]] = {}
    for row in selected:
        stored = syntaxes.setdefault(row.sop_class_uid, [])
        if row.transfer_syntax not in stored:
            stored.append(row.transfer_syntax)
    return [build_context(sop_class, values) for sop_class, values in syntaxes.items()][:128]


def failure(status: int, comment: str) -> Dataset:
    ds = Dataset()
    ds.Status = status
    ds.ErrorComment = comment[:64]
    return ds


def _charset(identifier: Dataset) -> str:
    value = identifier.get("SpecificCharacterSet", "")
    if not isinstance(value, str):
        value = "\\".join(value)
    return value.strip()
