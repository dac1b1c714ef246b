"""One thread per destination: take due items from its queue, send them in batches, record the
outcome, back off after failures, and respect hold. All progress is in the database, so a
restart carries on where the last run stopped (an item sent but not yet marked done is sent
once more: receivers treat a repeated SOP Instance UID as the same object)."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from appliance.config.schema import DestinationConfig, PeerConfig
from appliance.forward.sender import AssociationFailed, send_batch, split_by_contexts
from appliance.store.database import Database
from appliance.store.queue import ForwardQueue

log = logging.getLogger(__name__)

IDLE_POLL = 1.0  # seconds between looks at the queue when nothing wakes us (CLI changes)


class DestinationWorker:
    def __init__(self, db: Database, destination: DestinationConfig, peer: PeerConfig,
                 calling_aet: str, root: Path, on_change=None, on_sent=None):
        self.queue = ForwardQueue(db)
        self.db = db
        self.settings = destination
        self.peer = peer
        self.calling_aet = calling_aet
        self.root = root
        self.on_change = on_change or (lambda: None)
        # on_sent(sent, failed): instances delivered / given up in one batch (for metrics)
        self.on_sent = on_sent or (lambda sent, failed: None)
        self.wake = threading.Event()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"forward:{peer.name}",
                                       daemon=True)
        self.sent = 0

    @property
    def name(self) -> str:
        return self.peer.name

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float) -> None:
        self._stop.set()
        self.wake.set()
        self.thread.join(timeout)

    def is_alive(self) -> bool:
        return self.thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                delay = self.step()
            except Exception:  # e.g. the database briefly busy: log, wait, carry on
                log.exception("forward worker for %s", self.name)
                delay = IDLE_POLL
            if delay > 0:
                self.wake.wait(delay)
                self.wake.clear()

    def step(self) -> float:
        """One round; returns how long to wait before the next."""
        s = self.settings
        state = self.queue.destination_state(self.name)
        if state["held"]:
            return IDLE_POLL
        self.queue.expire(self.name, s.max_age_hours * 3600)
        now = time.time()
        if state["next_attempt"] > now:
            return min(state["next_attempt"] - now, IDLE_POLL)
        items = self.queue.due(self.name, s.batch_size, now)
        if not items:
            next_due = self.queue.next_due_at(self.name)
            if next_due is None:
                return IDLE_POLL
            return max(0.05, min(next_due - now, IDLE_POLL))
        for batch in split_by_contexts(items):
            try:
                results = send_batch(self.peer, self.calling_aet, batch, self.root, s.timeout)
            except AssociationFailed as exc:
                delay = self.queue.destination_failed(self.name, str(exc), s.retry_initial,
                                                      s.retry_max)
                log.warning("forward to %s failed: %s; %d waiting, next try in %.0fs",
                            self.name, exc, len(items), delay)
                self.on_change()
                return min(delay, IDLE_POLL)
            retry = [r for r in results if r.outcome == "retry"]
            failed = 0
            for result in results:
                if result.outcome == "done":
                    self.queue.mark_done(self.name, result.item.instance_id, result.syntax)
                    self.sent += 1
                elif result.outcome == "failed":
                    log.error("forward %s to %s failed: %s", result.item.sop_instance_uid,
                              self.name, result.detail)
                    self.queue.mark_failed(self.name, result.item.instance_id, result.detail)
                    failed += 1
            if retry:
                log.warning("forward to %s: %d instances will be retried: %s", self.name,
                            len(retry), retry[0].detail)
                self.queue.mark_retry(self.name, [r.item.instance_id for r in retry],
                                      retry[0].detail, s.retry_initial, s.retry_max)
            self.on_sent(sum(r.outcome == "done" for r in results), failed)
            self.on_change()
        return 0.0
