"""The Storage SCP (C-STORE, PS3.4 Annex B): accept every storage SOP class in every transfer
syntax as received, store it durably, index it, queue it for forwarding, and only then answer
Success.

It is both a supervised component (it opens the instance store, clears partial receptions
left by a crash, and watches the free-space reserve) and a DICOM service served by the one
DICOM server (its presentation contexts; `store_received`, the native engine's store callback:
the engine writes each object to a file and sends the status this returns).

Statuses: 0x0000 stored (or a duplicate kept per policy); 0x0124 refused, the calling AE title
is not in `[storage] allowed_calling_aets`; 0xA700 out of resources (free space under
`[storage] reserve_mb`, the disk filled up while the object was being received or stored, or the
store not running); 0xA900 the data set does not match the command's SOP class / instance;
0xC000 the data set does not parse to its end (appliance.dicom.dataset_check) or names no valid
SOP class / instance; 0x0110 processing failure (other write or index error). Nothing of a
refused object is kept.
"""

from __future__ import annotations

import errno
import logging
import re
import threading
import time
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.tag import Tag
from pydicom.uid import AllTransferSyntaxes
from pynetdicom.presentation import AllStoragePresentationContexts

from appliance.config.schema import ApplianceConfig
from appliance.core.component import Component
from appliance.core.errors import ComponentFailure
from appliance.core.event_topics import Topic
from appliance.core.events import EventBus
from appliance.dicom.caller_policy import NOT_AUTHORIZED, caller_allowed, refusal_comment
from appliance.dicom.dataset_check import CheckedFile, MalformedDataSet
from appliance.dicom.declared_context import DeclaredContext, declare
from appliance.dicom.native_check import NativeVerdict, checked_file, rules
from appliance.dicom.routing import Router
from appliance.store.instances import (
    INCOMING_DIR,
    INSTANCES_DIR,
    InstanceMeta,
    InstanceStore,
    StoreError,
)

log = logging.getLogger(__name__)

#: Every storage SOP class pynetdicom knows (PS3.4 Annex B and its siblings), as SCP.
STORAGE_SOP_CLASSES = [str(cx.abstract_syntax) for cx in AllStoragePresentationContexts]
#: Every public transfer syntax pydicom knows: uncompressed and compressed, stored as-is.
STORAGE_TRANSFER_SYNTAXES = [str(ts) for ts in AllTransferSyntaxes]

SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
DATA_SET_MISMATCH = 0xA900
CANNOT_UNDERSTAND = 0xC000
PROCESSING_FAILURE = 0x0110

# Looked up by tag, not keyword: a third of the cost of the header parse per image.
_TAG = {keyword: int(Tag(keyword)) for keyword in (
    "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "PatientID",
    "PatientName", "Modality", "AccessionNumber")}
_INDEX_TAGS = frozenset(_TAG.values())
_UI_TAGS = frozenset(_TAG[k] for k in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID",
                                       "SeriesInstanceUID"))
#: Printable ASCII but the value separator: read as it is, in every character set.
_PLAIN = re.compile(rb"[\x20-\x5b\x5d-\x7e]*")
_SPACE_CHECK_INTERVAL = 2.0
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
_SQLITE_FULL = 13  # sqlite3 error code: "database or disk is full"


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether an error (or one it was raised from) says there is no space left."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
            return True
        if getattr(exc, "sqlite_errorcode", None) == _SQLITE_FULL:
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def discard(path: Path) -> None:
    """Remove a refused object's file at once."""
    try:
        path.unlink()
    except OSError:
        pass


def status(code: int, comment: str = "") -> Dataset | int:
    """A C-STORE response status, with an Error Comment when there is something to say."""
    if not comment:
        return code
    ds = Dataset()
    ds.Status = code
    ds.ErrorComment = comment[:64]
    return ds


def _plain_text(tag: int, raw: bytes) -> str | None:
    """A value's text when no decoding can change it (one value of printable ASCII, UIDs'
    trailing NUL pad aside); None when it needs pydicom (character sets, several values)."""
    if tag in _UI_TAGS and raw.endswith(b"\0"):
        raw = raw[:-1]
    return raw.decode("ascii").strip() if _PLAIN.fullmatch(raw) else None


def read_meta(path: Path, calling_aet: str, checked: CheckedFile | None = None) -> InstanceMeta:
    """Index values of a received file: from the values the structural check copied out
    (`checked`, asked for `_INDEX_TAGS`) when they are plain ASCII, else from pydicom's parse
    of the header (pixel data is never read). Both give the same text."""
    values: dict[int, str | None] = {}
    if checked is not None:
        values = {tag: _plain_text(tag, raw) for tag, raw in checked.values.items()}
        tsyntax = checked.transfer_syntax
    if checked is None or None in values.values():
        ds = dcmread(path, stop_before_pixels=True,
                     specific_tags=[Tag(0x00080005), *map(Tag, _INDEX_TAGS)])
        tsyntax = str(ds.file_meta.TransferSyntaxUID)
        values = {}
        for tag in _INDEX_TAGS:
            element = ds.get(tag)
            value = None if element is None else element.value
            values[tag] = "" if value is None else str(value).strip()

    def text(keyword: str) -> str:
        return values.get(_TAG[keyword]) or ""

    sop_class, sop_instance = text("SOPClassUID"), text("SOPInstanceUID")
    # pydicom reads almost anything; a data set is understood when it names itself properly.
    for keyword, value in (("SOP Class UID", sop_class), ("SOP Instance UID", sop_instance)):
        if not _UID.fullmatch(value) or len(value) > 64:
            raise ValueError(f"no valid {keyword} in the data set")
    return InstanceMeta(
        sop_instance_uid=sop_instance, sop_class_uid=sop_class,
        study_uid=text("StudyInstanceUID"), series_uid=text("SeriesInstanceUID"),
        patient_id=text("PatientID"), patient_name=text("PatientName"),
        modality=text("Modality"), calling_aet=calling_aet.strip(), transfer_syntax=tsyntax,
        accession_number=text("AccessionNumber"))


class StorageService(Component):
    """Storage SCP: component (store, reserve watch) and DICOM service (contexts, the
    engine's store callback)."""

    name = "storage"

    def __init__(self, config: ApplianceConfig, bus: EventBus | None = None):
        self.bus = bus or EventBus()
        self.store: InstanceStore | None = None
        self.low_space = False
        self.stored = 0
        self._lock = threading.Lock()
        self._next_space_check = 0.0
        self._free = 0
        self.configure(config)

    # -- DICOM service --------------------------------------------------------------------

    def contexts(self) -> list[DeclaredContext]:
        return [declare(sop_class, STORAGE_TRANSFER_SYNTAXES)
                for sop_class in STORAGE_SOP_CLASSES]

    def handlers(self) -> list[tuple]:
        """None: the engine hands C-STOREs to `store_received`, not to a handler."""
        return []

    @property
    def incoming_dir(self) -> Path:
        """Where a receiver writes objects before `accept` keeps them (the store's
        `.incoming`: same file system, so keeping one is a rename)."""
        return self.data_dir / INSTANCES_DIR / INCOMING_DIR

    # -- component ------------------------------------------------------------------------

    def configure(self, config: ApplianceConfig) -> None:
        self.config = config
        self.settings = config.storage
        self.router = Router(config)
        self.data_dir = Path(config.device.data_dir).absolute()

    def reconfigure(self, config: ApplianceConfig) -> None:
        old_dir = self.data_dir
        self.configure(config)
        if self.data_dir != old_dir:
            log.info("storage moving to %s", self.data_dir)
            self.stop(timeout=10.0)
            self.start()
        self._next_space_check = 0.0

    def start(self) -> None:
        try:
            store = InstanceStore(self.data_dir)
            store.clear_incoming()
        except (OSError, StoreError) as exc:
            raise ComponentFailure(f"cannot open the instance store in {self.data_dir}: "
                                   f"{exc}") from exc
        except Exception as exc:  # e.g. DatabaseError
            raise ComponentFailure(str(exc)) from exc
        self.store = store
        self._next_space_check = 0.0
        self.check()

    def stop(self, timeout: float) -> None:
        store, self.store = self.store, None
        if store is not None:
            store.close()

    def check(self) -> None:
        store = self.store
        if store is None:
            raise ComponentFailure("instance store is not open")
        if not store.writer.is_alive():
            raise ComponentFailure("index writer thread stopped")
        now = time.monotonic()
        if now >= self._next_space_check:
            self._next_space_check = now + _SPACE_CHECK_INTERVAL
            self._update_space(store.free_bytes())

    def status(self) -> str:
        reserve = self.settings.reserve_mb
        if self.low_space:
            return (f"warning: {self._free / 2**20:.0f} MB free, under the {reserve} MB reserve;"
                    " refusing images (0xA700)")
        return f"{self.stored} stored since start, {self._free / 2**30:.1f} GiB free"

    def _update_space(self, free: int) -> bool:
        """Record free space; returns True when it is under the reserve."""
        self._free = free
        low = free < self.settings.reserve_mb * 2**20
        if low != self.low_space:
            self.low_space = low
            if low:
                log.warning("free space %.0f MB is under the reserve of %d MB: refusing images "
                            "with 0xA700 until space returns", free / 2**20,
                            self.settings.reserve_mb)
            else:
                log.info("free space %.0f MB is above the reserve again: accepting images",
                         free / 2**20)
            self.bus.publish(Topic.STORAGE, kind="space", low=low, free_bytes=free,
                             reserve_mb=self.settings.reserve_mb)
        return low

    # -- C-STORE --------------------------------------------------------------------------

    def store_check(self):
        """The engine's native structural check, copying out the index's values (the engine
        then hands `store_received` its verdict as `check`)."""
        return rules(_INDEX_TAGS)

    def store_received(self, path: str, calling_ae: str, called_ae: str, sop_class_uid: str,
                       sop_instance_uid: str, transfer_syntax_uid: str,
                       content_hash: tuple[int, str] | None = None,
                       check: NativeVerdict | None = None) -> int | tuple[int, str]:
        """The native engine's store callback: `path` is the complete file it wrote (File
        Meta and the data set as received), `content_hash` its (size, SHA-256 hex) when the
        engine hashed it, `check` the native structural check's verdict (None: the Python
        check runs); the status returned is the one it sends."""
        answer = self.accept(Path(path), calling_ae, sop_class_uid, sop_instance_uid,
                             content_hash, check)
        if isinstance(answer, Dataset):
            return int(answer.Status), str(answer.get("ErrorComment", ""))
        return answer

    def accept(self, path: Path, calling: str, sop_class_uid: str, sop_instance_uid: str,
               content_hash: tuple[int, str] | None = None,
               check: NativeVerdict | None = None) -> Dataset | int:
        """Check (with the engine's native verdict `check` when given), store durably, index
        and queue one received file (with its content hash, when given, for Storage
        Commitment); the C-STORE status. Nothing of a refused object is kept."""
        if not caller_allowed(self.settings.allowed_calling_aets, calling):
            log.warning("C-STORE %s from %s refused: calling AE title not in [storage] "
                        "allowed_calling_aets; answered 0x0124", sop_instance_uid, calling)
            discard(path)
            return status(NOT_AUTHORIZED, refusal_comment("storage"))
        store = self.store
        if store is None:
            log.error("C-STORE %s from %s refused: the instance store is not running",
                      sop_instance_uid, calling)
            discard(path)
            return status(OUT_OF_RESOURCES, "storage not available")
        try:
            if self._update_space(store.free_bytes()):
                discard(path)
                return status(OUT_OF_RESOURCES, "free space under reserve")
        except OSError as exc:
            discard(path)
            return status(OUT_OF_RESOURCES, f"data directory: {exc.strerror}")
        try:
            meta = read_meta(path, calling, checked_file(path, check, _INDEX_TAGS))
        except MalformedDataSet as exc:
            discard(path)
            log.warning("C-STORE %s from %s refused with 0xC000: the data set does not parse: "
                        "%s", sop_instance_uid, calling, exc)
            return status(CANNOT_UNDERSTAND, f"malformed: {exc}")
        except Exception as exc:
            discard(path)
            log.warning("C-STORE %s from %s: cannot parse the data set (%s); answered 0xC000",
                        sop_instance_uid, calling, exc)
            return status(CANNOT_UNDERSTAND, "data set cannot be parsed")
        if meta.sop_class_uid != sop_class_uid:
            log.warning("C-STORE from %s: data set SOP class %s differs from the command's %s",
                        calling, meta.sop_class_uid, sop_class_uid)
            discard(path)
            return status(DATA_SET_MISMATCH, "SOP Class UID differs from the command")
        if meta.sop_instance_uid != sop_instance_uid:
            log.warning("C-STORE from %s: data set SOP instance %s differs from the command's %s",
                        calling, meta.sop_instance_uid, sop_instance_uid)
            discard(path)
            return status(DATA_SET_MISMATCH, "SOP Instance UID differs from the command")
        try:
            # The file is complete; commit moves it into place and returns once it and its
            # index row are durable (one flush for the files of a group, one for the index).
            outcome = store.commit(path, meta, self.router.route(meta),
                                   self.settings.duplicates, content_hash=content_hash)
        except (OSError, StoreError) as exc:
            full = is_disk_full(exc)
            log.error("C-STORE %s from %s: cannot store: %s", meta.sop_instance_uid, calling, exc)
            if full:
                return status(OUT_OF_RESOURCES, "disk full")
            return status(PROCESSING_FAILURE, "write error")
        except Exception as exc:
            log.exception("C-STORE %s from %s: cannot store", meta.sop_instance_uid, calling)
            return status(PROCESSING_FAILURE, f"cannot store: {type(exc).__name__}")
        with self._lock:
            self.stored += 1
        if outcome.action == "duplicate":
            log.warning("duplicate SOP Instance UID %s from %s: kept the copy stored first "
                        "([storage] duplicates = keep_first)", meta.sop_instance_uid, calling)
        elif outcome.action == "replaced":
            log.warning("duplicate SOP Instance UID %s from %s: replaced the stored copy and "
                        "queued it again ([storage] duplicates = replace)",
                        meta.sop_instance_uid, calling)
        else:
            log.debug("stored %s from %s", meta.sop_instance_uid, calling)
        self.bus.publish(Topic.STORAGE, kind=outcome.action, instance_id=outcome.instance_id,
                         sop_instance_uid=meta.sop_instance_uid, calling_aet=meta.calling_aet,
                         content_hashed=outcome.content_hashed)
        if outcome.action != "duplicate":
            # The worklist completes the scheduled item of a study that has arrived.
            self.bus.publish(Topic.INSTANCE_STORED, study_instance_uid=meta.study_uid,
                             accession_number=meta.accession_number)
        return SUCCESS
