"""The forwarder component: one worker per configured destination, woken by every stored
instance (bus topic 'storage'), plus the retention pass. Supervised: a dead worker makes
`check()` fail and the supervisor restarts the whole forwarder; the queue is in the database,
so nothing is lost or repeated beyond the one batch in flight."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from appliance.config.schema import ApplianceConfig
from appliance.core.component import Component
from appliance.core.errors import ComponentFailure
from appliance.core.event_topics import Topic
from appliance.core.events import Event, EventBus
from appliance.forward.retention import apply_retention
from appliance.forward.route_rules import RouteRules
from appliance.forward.worker import DestinationWorker
from appliance.store.instances import INSTANCES_DIR, InstanceStore, open_database
from appliance.store.queue import ForwardQueue

log = logging.getLogger(__name__)

RETENTION_INTERVAL = 60.0
BACKLOG_AGE = 600.0  # seconds an instance may wait before its destination counts as behind


class Forwarder(Component):
    name = "forwarder"

    def __init__(self, config: ApplianceConfig, bus: EventBus | None = None,
                 retention_interval: float = RETENTION_INTERVAL):
        self.bus = bus or EventBus()
        self.retention_interval = retention_interval
        self.workers: list[DestinationWorker] = []
        self._retention: threading.Thread | None = None
        self._stop = threading.Event()
        self._store: InstanceStore | None = None
        self._last_queue: dict[str, tuple[int, bool]] = {}
        self.configure(config)
        self.bus.subscribe(self._on_storage, topic=Topic.STORAGE)

    def configure(self, config: ApplianceConfig) -> None:
        self.config = config
        self.data_dir = Path(config.device.data_dir).absolute()

    def start(self) -> None:
        try:
            self.db = open_database(self.data_dir)
            self._store = InstanceStore(self.data_dir, db=open_database(self.data_dir))
        except Exception as exc:
            raise ComponentFailure(f"cannot open the forward queue: {exc}") from exc
        root = self.data_dir / INSTANCES_DIR
        self._stop.clear()
        self.workers = []
        rules = RouteRules(self.config, self.db)
        for dest in self.config.destinations:
            peer = self.config.peer(dest.peer)
            worker = DestinationWorker(
                self.db, dest, peer, self.config.dicom.ae_title, root,
                on_change=lambda name=peer.name: self._publish_queue(name),
                on_sent=lambda sent, failed, name=peer.name: self.bus.publish(
                    Topic.FORWARD, destination=name, sent=sent, failed=failed),
                tls=self.config.tls_for(peer), prepare=rules.prepare_for(peer.name))
            worker.start()
            self.workers.append(worker)
        self._retention = threading.Thread(target=self._retention_loop, name="retention",
                                           daemon=True)
        self._retention.start()

    def stop(self, timeout: float) -> None:
        self._stop.set()
        for worker in self.workers:
            worker.stop(timeout)
        if self._retention is not None:
            self._retention.join(timeout)
        self.workers = []
        if self._store is not None:
            self._store.close()
            self._store = None
            self.db.close()

    def check(self) -> None:
        for worker in self.workers:
            if not worker.is_alive():
                raise ComponentFailure(f"forward worker for {worker.name} stopped")
        if self._retention is not None and not self._retention.is_alive():
            raise ComponentFailure("retention thread stopped")

    def status(self) -> str:
        if not self.workers:
            return "no destinations"
        sent = sum(w.sent for w in self.workers)
        return f"{len(self.workers)} destinations, {sent} sent since start"

    def _on_storage(self, event: Event) -> None:
        if event.data.get("kind") in ("stored", "replaced"):
            for worker in self.workers:
                worker.wake.set()
                self._publish_queue(worker.name)

    def _publish_queue(self, destination: str) -> None:
        """Tell the LEDs, panel and console how this destination's queue stands. A destination
        is 'falling behind' (backlog) while it is backing off after a failure, or when its
        oldest waiting instance has waited longer than BACKLOG_AGE seconds."""
        try:
            counts = ForwardQueue(self.db).backlog(destination)
        except Exception:  # the database closed under us while stopping: nothing to tell
            log.debug("queue counts for %s unavailable", destination, exc_info=True)
            return
        now = time.time()
        waiting_long = (counts.oldest_pending_at is not None
                        and now - counts.oldest_pending_at > BACKLOG_AGE)
        backing_off = counts.pending > 0 and counts.next_attempt > now
        behind = waiting_long or backing_off or (counts.held and counts.pending > 0)
        state = (counts.pending, bool(behind))
        if self._last_queue.get(destination) == state:
            return
        self._last_queue[destination] = state
        self.bus.publish(Topic.QUEUE, destination=destination, pending=state[0], backlog=state[1])

    def _retention_loop(self) -> None:
        queue = ForwardQueue(self._store.db)
        while not self._stop.is_set():
            try:
                apply_retention(self._store, queue, self.config.storage)
            except Exception:
                log.exception("retention pass failed")
            self._stop.wait(self.retention_interval)
