"""The Modality Worklist C-FIND SCP (PS3.4 Annex K) on the DICOM server's one AE.

Each request is matched over the store's indexed columns, then checked exactly by
`WorklistQuery`; answers are streamed as Pending responses one by one (so the first arrives
before the last is built), C-CANCEL is honoured between answers, and at most
`[worklist] max_answers` are sent. Answers are encoded in the query's Specific Character Set
when it can carry every value (ISO_IR 100), otherwise in ISO_IR 192 (UTF-8).
"""

from __future__ import annotations

import json
import logging
import threading

from pydicom import Dataset, config
from pydicom.dataelem import DataElement
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import evt
from pynetdicom.presentation import PresentationContext, build_context
from pynetdicom.sop_class import ModalityWorklistInformationFind

from appliance.config.schema import ApplianceConfig, WorklistConfig
from appliance.events import EventBus
from appliance.worklist.matcher import WorklistQuery
from appliance.worklist.store import WorklistStore

log = logging.getLogger(__name__)

TRANSFER_SYNTAXES = [ImplicitVRLittleEndian, ExplicitVRLittleEndian]
PENDING, PENDING_WARNING = 0xFF00, 0xFF01
CANCELLED, SUCCESS = 0xFE00, 0x0000
IDENTIFIER_DOES_NOT_MATCH, UNABLE_TO_PROCESS = 0xA900, 0xC000
#: Character sets we answer in, by the name used in (0008,0005) and the Python codec.
CHARSETS = {"ISO_IR 100": "latin-1", "ISO_IR 192": "utf-8", "": "ascii", "ISO_IR 6": "ascii"}


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

    def contexts(self) -> list[PresentationContext]:
        return [build_context(ModalityWorklistInformationFind, TRANSFER_SYNTAXES)]

    def handlers(self) -> list[tuple]:
        return [(evt.EVT_C_FIND, self.handle_find)]

    # -- C-FIND -----------------------------------------------------------------------------

    def handle_find(self, event: evt.Event):
        settings = self.settings
        calling = event.assoc.requestor.ae_title.strip()
        if not settings.enabled:
            yield _failure(UNABLE_TO_PROCESS, "the worklist is disabled on this appliance")
            return
        try:
            identifier = event.identifier
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
            for item in self.store.scan_json(where, params):
                if not query.matches(item):
                    continue
                if event.is_cancelled:
                    log.info("worklist C-FIND from %s cancelled after %d answers", calling, sent)
                    yield CANCELLED, None
                    return
                if sent >= settings.max_answers:
                    log.warning("worklist C-FIND from %s: more than %d matches; the rest are "
                                "left out ([worklist] max_answers)", calling, settings.max_answers)
                    break
                yield PENDING, _dataset(query.answer(item), query_charset)
                sent += 1
        except Exception as exc:
            log.exception("worklist C-FIND from %s failed", calling)
            yield _failure(UNABLE_TO_PROCESS, f"worklist store error: {exc}")
            return
        if event.is_cancelled:
            yield CANCELLED, None
            return
        log.info("worklist C-FIND from %s: %d answers", calling, sent)
        if self.bus is not None:
            self.bus.publish("worklist.query", calling_aet=calling, answers=sent)
        yield SUCCESS, None


def _charset(identifier: Dataset) -> str:
    value = identifier.get("SpecificCharacterSet", "")
    if not isinstance(value, str):  # multi-valued (code extensions)
        value = "\\".join(value)
    return value.strip()


def _dataset(answer: dict, query_charset: str) -> Dataset:
    """The answer as a data set in a character set that can carry all its text."""
    text = json.dumps(answer, ensure_ascii=False)
    charset = ""
    if not text.isascii():
        charset = "ISO_IR 192"
        if query_charset == "ISO_IR 100":
            try:
                text.encode("latin-1")
                charset = "ISO_IR 100"
            except UnicodeEncodeError:
                pass
    elif query_charset in CHARSETS and query_charset:
        charset = query_charset
    ds = json_to_dataset(answer)
    if charset:
        ds.SpecificCharacterSet = charset
    return ds


def json_to_dataset(data: dict) -> Dataset:
    """A data set from (our own, already checked) DICOM JSON: several times faster than
    Dataset.from_json, which matters when thousands of answers are sent."""
    ds = Dataset()
    for tag, element in data.items():
        vr = element["vr"]
        values = element.get("Value") or []
        if vr == "SQ":
            value = [json_to_dataset(item) for item in values]
        else:
            if vr == "PN":
                values = [v.get("Alphabetic", "") if isinstance(v, dict) else v for v in values]
            value = None if not values else values[0] if len(values) == 1 else values
        # the values were checked when the item was stored
        ds.add(DataElement(int(tag, 16), vr, value, validation_mode=config.IGNORE))
    return ds


def _failure(status: int, comment: str) -> tuple[Dataset, None]:
    ds = Dataset()
    ds.Status = status
    ds.ErrorComment = comment[:64]
    return ds, None
