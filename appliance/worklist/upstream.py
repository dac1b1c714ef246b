"""The upstream worklist proxy: every `[worklist.upstream] interval` seconds a C-FIND to the RIS
(an MWL SCP from [[peers]]) refreshes the local cache, which the MWL SCP answers from.

When the RIS is unreachable the cache stays as it was and keeps answering; the status line says
how old it is. The cache of a peer is replaced as a whole by each successful poll, so orders
removed at the RIS disappear here too.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time

from pydicom import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom.sop_class import ModalityWorklistInformationFind

from appliance.config.schema import ApplianceConfig
from appliance.core.component import Component
from appliance.core.errors import ApplianceError
from appliance.dicom.config import DicomTlsConfig
from appliance.dicom.dimse_status import is_pending
from appliance.dicom.scu import AssociationFailed, Timeouts, associate, scu_ae
from appliance.worklist.item import ItemError, items_from_dataset
from appliance.worklist.keys import SPS_ITEM, TOP_LEVEL
from appliance.worklist.scp import WorklistService

log = logging.getLogger(__name__)


class UpstreamError(ApplianceError, ConnectionError):
    """The RIS could not be queried; the message says why."""


def upstream_query(days_ahead: int, modality: str, today: datetime.date | None = None
                   ) -> Dataset:
    """The identifier sent to the RIS: every attribute we keep, as return keys."""
    today = today or datetime.date.today()
    ds = Dataset()
    for keyword in TOP_LEVEL:
        if keyword != "SpecificCharacterSet":
            setattr(ds, keyword, None)
    ds.SpecificCharacterSet = "ISO_IR 192"
    sps = Dataset()
    for keyword in SPS_ITEM:
        setattr(sps, keyword, None)
    end = today + datetime.timedelta(days=days_ahead)
    sps.ScheduledProcedureStepStartDate = f"{today:%Y%m%d}-{end:%Y%m%d}"
    sps.Modality = modality or None
    ds.ScheduledProcedureStepSequence = [sps]
    return ds


def fetch(host: str, port: int, called: str, calling: str, query: Dataset,
          timeout: float, tls: DicomTlsConfig | None = None) -> list[Dataset]:
    """All matches of one C-FIND (over TLS with `tls`, `[dicom.tls]`), or UpstreamError."""
    ae = scu_ae(calling, Timeouts.all(timeout))
    ae.add_requested_context(ModalityWorklistInformationFind,
                             [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    try:
        assoc = associate(ae, host, port, called, tls=tls)
    except AssociationFailed as exc:
        raise UpstreamError(f"cannot associate with {called}@{host}:{port}: "
                            f"{exc.reason}") from exc
    found = []
    try:
        for status, identifier in assoc.send_c_find(query, ModalityWorklistInformationFind):
            if "Status" not in status:
                raise UpstreamError("no C-FIND response (timeout or abort)")
            code = status.Status
            if is_pending(code):
                found.append(identifier)
            elif code != 0x0000:
                raise UpstreamError(f"C-FIND returned status 0x{code:04X}")
    finally:
        if assoc.is_established:
            assoc.release()
    return found


class UpstreamProxy(Component):
    """Polls the RIS worklist into the cache (idle when not enabled)."""

    name = "worklist-upstream"

    def __init__(self, config: ApplianceConfig, service: WorklistService):
        self.service = service
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error = ""
        self.last_count = 0
        self.last_success: float | None = None
        self.polls = 0
        self.configure(config)

    def configure(self, config: ApplianceConfig) -> None:
        self.config = config
        self.settings = config.worklist.upstream

    def reconfigure(self, config: ApplianceConfig) -> None:
        old, old_peer = self.settings, self.config.peer(self.settings.peer)
        self.configure(config)
        if self.settings != old or config.peer(self.settings.peer) != old_peer:
            self.stop(timeout=5.0)
            self.start()

    @property
    def source(self) -> str:
        return f"upstream:{self.settings.peer}"

    def start(self) -> None:
        if not self.settings.enabled:
            return
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(self._stop,),
                                        name="worklist-upstream", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.poll()
            stop.wait(self.settings.interval)

    def poll(self) -> bool:
        """One refresh of the cache; False (and the reason in the status) if it failed."""
        s = self.settings
        peer = self.config.peer(s.peer)
        self.polls += 1
        try:
            if peer is None:
                raise UpstreamError(f"no peer named {s.peer!r}")
            found = fetch(peer.host, peer.port, peer.ae_title, self.config.dicom.ae_title,
                          upstream_query(s.days_ahead, s.modality), s.timeout,
                          self.config.tls_for(peer))
        except Exception as exc:
            reason = str(exc) or type(exc).__name__
            if reason != self.last_error:
                log.warning("worklist upstream %s unreachable: %s; serving the cache (%s)",
                            s.peer, reason, self._age_text())
            self.last_error = reason
            return False
        items = []
        for number, identifier in enumerate(found):
            try:
                items.extend(items_from_dataset(identifier, f"upstream answer {number + 1}"))
            except ItemError as exc:
                log.warning("worklist upstream %s: %s; skipped", s.peer, exc)
        created, updated, removed = self.service.store.replace_source(items, self.source)
        if self.last_error:
            log.info("worklist upstream %s reachable again", s.peer)
        self.last_error = ""
        self.last_success = time.time()
        self.last_count = len(items)
        log.info("worklist upstream %s: %d items (%d new, %d removed)", s.peer, len(items),
                 created, removed)
        return True

    def cache_age(self) -> float | None:
        """Seconds since the cache was last refreshed, or None if it never was."""
        stamps = [t for t in (self.service.store.last_update(self.source), self.last_success)
                  if t is not None]
        return max(0.0, time.time() - max(stamps)) if stamps else None

    def _age_text(self) -> str:
        age = self.cache_age()
        if age is None:
            return "cache empty, never refreshed"
        return f"cache {age:.0f} s old" if age < 120 else f"cache {age / 60:.0f} min old"

    def status(self) -> str:
        if not self.settings.enabled:
            return "disabled"
        if self.last_error:
            return (f"upstream {self.settings.peer} unreachable ({self.last_error}); "
                    f"serving {self._age_text()}")
        return f"upstream {self.settings.peer}: {self.last_count} items, {self._age_text()}"
