"""The Modality Worklist C-FIND SCP (PS3.4 Annex K) on the DICOM server's one AE (served by
the native engine through appliance.dicom.engine_dispatch).

Each request is matched over the store's indexed columns, then checked exactly by
`WorklistQuery`; answers are streamed as Pending responses one by one (so the first arrives
before the last is built; the engine pulls one at a time), C-CANCEL is honoured between
answers (the engine closes the handler's generator and answers Cancel), and at most
`[worklist] max_answers` are sent. A caller not in `[worklist] allowed_calling_aets` (when
set) gets 0x0124 Refused: Not Authorized and no answers. Answers are encoded in the query's
Specific Character Set when it can carry every value (ISO_IR 100), otherwise in ISO_IR 192
(UTF-8).
"""

from __future__ import annotations

import logging
import threading

from pydicom import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import evt
from pynetdicom.sop_class import ModalityWorklistInformationFind

from appliance.config.schema import ApplianceConfig
from appliance.core.event_topics import Topic
from appliance.core.events import EventBus
from appliance.dicom.caller_policy import NOT_AUTHORIZED, caller_allowed, refusal_comment
from appliance.dicom.declared_context import DeclaredContext, declare
from appliance.dicom.find_answers import answer_dataset
from appliance.worklist.config import WorklistConfig
from appliance.worklist.matcher import WorklistQuery
from appliance.worklist.store import WorklistStore

log = logging.getLogger(__name__)

TRANSFER_SYNTAXES = [ImplicitVRLittleEndian, ExplicitVRLittleEndian]
PENDING = 0xFF00
SUCCESS = 0x0000
IDENTIFIER_DOES_NOT_MATCH, UNABLE_TO_PROCESS = 0xA900, 0xC000


class WorklistService:
    """MWL FIND SCP: presentation contexts and the C-FIND handler over a `WorklistStore`."""

    name = "worklist"

    def __init__(self, config: ApplianceConfig | None = None, bus: EventBus | None = None):
        self.bus = bus
        self._lock = threading.Lock()
        self._store: WorklistStore | None = None
        self._data_dir = None
        self.configure(config or ApplianceConfig())

    def configure(self, config: ApplianceConfig) -> None:
        self.settings: WorklistConfig = config.worklist
        if config.device.data_dir != self._data_dir:
            with self._lock:
                self._data_dir, self._store = config.device.data_dir, None

    @property
    def store(self) -> WorklistStore:
        """Opened on first use, so building the service never touches the disk."""
        with self._lock:
            if self._store is None:
                self._store = WorklistStore.in_data_dir(self._data_dir, self.bus)
            return self._store

    def contexts(self) -> list[DeclaredContext]:
        return [declare(ModalityWorklistInformationFind, TRANSFER_SYNTAXES)]

    def handlers(self) -> list[tuple]:
        return [(evt.EVT_C_FIND, self.handle_find)]

    # -- C-FIND -----------------------------------------------------------------------------

    def handle_find(self, event: evt.Event):
        settings = self.settings
        calling = event.assoc.requestor.ae_title.strip()
        if not settings.enabled:
            yield _failure(UNABLE_TO_PROCESS, "the worklist is disabled on this appliance")
            return
        if not caller_allowed(settings.allowed_calling_aets, calling):
            log.warning("worklist C-FIND from %s refused: calling AE title not in [worklist] "
                        "allowed_calling_aets; answered 0x0124", calling)
            yield _failure(NOT_AUTHORIZED, refusal_comment("the worklist"))
            return
        try:
            identifier = event.identifier
            implicit_vr = UID(event.context.transfer_syntax).is_implicit_VR
            query_charset = _charset(identifier)
            query = WorklistQuery(
                identifier.to_json_dict(), settings.case_insensitive_names,
                calling if calling in settings.own_station_only_aets else None)
            where, params = query.sql()
        except Exception as exc:  # malformed identifier or key: the SCU sent something wrong
            log.warning("worklist C-FIND from %s refused: %s", calling, exc)
            yield _failure(IDENTIFIER_DOES_NOT_MATCH, f"cannot use the identifier: {exc}")
            return
        sent = 0
        try:
            for item, ascii_only in self.store.scan_items(where, params):
                if not query.matches(item):
                    continue
                if sent >= settings.max_answers:
                    log.warning("worklist C-FIND from %s: more than %d matches; the rest are "
                                "left out ([worklist] max_answers)", calling, settings.max_answers)
                    break
                yield PENDING, answer_dataset(query.answer(item), query_charset, implicit_vr,
                                              ascii_only)
                sent += 1
        except GeneratorExit:  # the engine closed the search: C-CANCEL or the association ended
            log.info("worklist C-FIND from %s stopped after %d answers (cancelled or the "
                     "association ended)", calling, sent)
            raise
        except Exception as exc:
            log.exception("worklist C-FIND from %s failed", calling)
            yield _failure(UNABLE_TO_PROCESS, f"worklist store error: {exc}")
            return
        log.info("worklist C-FIND from %s: %d answers", calling, sent)
        if self.bus is not None:
            self.bus.publish(Topic.WORKLIST_QUERY, calling_aet=calling, answers=sent)
        yield SUCCESS, None


def _charset(identifier: Dataset) -> str:
    value = identifier.get("SpecificCharacterSet", "")
    if not isinstance(value, str):  # multi-valued (code extensions)
        value = "\\".join(value)
    return value.strip()


def _failure(status: int, comment: str) -> tuple[Dataset, None]:
    ds = Dataset()
    ds.Status = status
    ds.ErrorComment = comment[:64]
    return ds, None
