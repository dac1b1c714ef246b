"""Worklist item lifecycle: an item is COMPLETED when a study with its Study Instance UID or
Accession Number arrives through storage, and EXPIRED `[worklist] expire_after_hours` after its
scheduled start.

Storage announces each stored instance on the event bus as topic `instance.stored` with
`study_instance_uid` and `accession_number`; `complete_study()` is the same hook as a plain call.
This component also owns the worklist's configuration reloads and its status line.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from appliance.config.schema import ApplianceConfig
from appliance.core.component import Component
from appliance.core.errors import ComponentFailure
from appliance.core.event_topics import Topic
from appliance.core.events import Event, EventBus
from appliance.worklist.scp import WorklistService
from appliance.worklist.store import COMPLETED, EXPIRED, SCHEDULED, WorklistStore

log = logging.getLogger(__name__)

#: How often the expiry pass runs, and how long finished rows are kept for the record.
EXPIRY_INTERVAL = 60.0
KEEP_FINISHED_DAYS = 30
STATUS_MAX_AGE = 5.0  # seconds a status line's item counts may be old (see store.counts)


def complete_study(store: WorklistStore, study_instance_uid: str = "",
                   accession_number: str = "") -> int:
    """Mark the SCHEDULED items of a study COMPLETED; the number changed."""
    clauses, params = [], []
    if study_instance_uid:
        clauses.append("study_instance_uid = ?")
        params.append(study_instance_uid.strip())
    if accession_number:
        clauses.append("accession_number = ?")
        params.append(accession_number.strip())
    if not clauses:
        return 0
    where = " OR ".join(clauses)
    # Called for every stored instance: a read first, so an instance whose study has no
    # SCHEDULED item (every one after the first of a study) takes no write transaction.
    if not store.count(f"({where}) AND status='SCHEDULED'", tuple(params)):
        return 0
    count = store.set_status(where, tuple(params), COMPLETED)
    if count:
        log.info("worklist: %d item(s) completed by study %s / accession %s", count,
                 study_instance_uid or "-", accession_number or "-")
    return count


def expire(store: WorklistStore, hours: float, now: datetime | None = None) -> int:
    """Mark EXPIRED the SCHEDULED items whose start is more than `hours` ago; purge finished
    rows older than KEEP_FINISHED_DAYS. The number expired."""
    if hours <= 0:
        return 0
    now = now or datetime.now()
    cutoff = now - timedelta(hours=hours)
    # sps_date||sps_time sorts like the start time; an item with no time starts at midnight.
    stamp = cutoff.strftime("%Y%m%d%H%M%S")
    count = store.set_status(
        "sps_date || substr(replace(sps_time, ':', '') || '000000', 1, 6) < ?", (stamp,),
        EXPIRED)
    if count:
        log.info("worklist: %d item(s) expired (scheduled before %s)", count, cutoff)
    old = time.time() - KEEP_FINISHED_DAYS * 86400
    store.delete("status != 'SCHEDULED' AND updated_at < ?", (old,))
    return count


class WorklistLifecycle(Component):
    """Completes items on study arrival, expires old ones, reports the worklist's state."""

    name = "worklist"

    def __init__(self, config: ApplianceConfig, bus: EventBus, service: WorklistService,
                 clock=time.monotonic):
        self.bus = bus
        self.service = service
        self.clock = clock
        self._next_expiry = 0.0
        self._subscribed = False
        # one bound-method object, so that unsubscribe (an identity check) finds it
        self._on_stored = self.on_instance_stored
        self.configure(config)

    def configure(self, config: ApplianceConfig) -> None:
        self.settings = config.worklist
        self.service.configure(config)

    def reconfigure(self, config: ApplianceConfig) -> None:
        self.configure(config)
        self._next_expiry = 0.0

    def start(self) -> None:
        try:
            self.service.store.count()
        except Exception as exc:
            raise ComponentFailure(f"worklist store unavailable: {exc}") from exc
        if not self._subscribed:
            self.bus.subscribe(self._on_stored, Topic.INSTANCE_STORED)
            self._subscribed = True
        self._next_expiry = 0.0
        self.check()

    def stop(self, timeout: float) -> None:
        if self._subscribed:
            self.bus.unsubscribe(self._on_stored)
            self._subscribed = False

    def on_instance_stored(self, event: Event) -> None:
        complete_study(self.service.store, str(event.data.get("study_instance_uid") or ""),
                       str(event.data.get("accession_number") or ""))

    def check(self) -> None:
        now = self.clock()
        if now < self._next_expiry:
            return
        self._next_expiry = now + EXPIRY_INTERVAL
        try:
            expire(self.service.store, self.settings.expire_after_hours)
        except Exception as exc:
            raise ComponentFailure(f"worklist expiry failed: {exc}") from exc

    def status(self) -> str:
        if not self.settings.enabled:
            return "disabled"
        try:
            counts = self.service.store.counts(max_age=STATUS_MAX_AGE)
        except Exception as exc:
            return f"store unavailable: {exc}"
        return (f"{counts.get(SCHEDULED, 0)} scheduled, {counts.get(COMPLETED, 0)} completed, "
                f"{counts.get(EXPIRED, 0)} expired")
